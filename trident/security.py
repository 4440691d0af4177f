"""`Security`: a cluster's credentials, its token and optionally TLS certificates.

Every scheduler, worker, nanny and client of a cluster holds the same `Security`. The
token authenticates the two ends in the msgpack handshake (a mutual HMAC
challenge-response; the token never travels). It does not protect the bytes between
them: TLS (``tls://`` addresses) does, encrypting the connection and proving the
server's certificate, and with `require_client_cert` lets only holders of a certificate
signed by the cluster's CA connect at all. Certificates are checked against the CA
and/or a pinned SHA-256 fingerprint, not against host names: the CA (or the pinned
certificate) is private to the cluster, which is what makes a server trustworthy.

A *credential* is the token and the pin in one string, ``TOKEN#tls-sha256=HEX`` (or
just ``TOKEN``), accepted wherever a token is (``security=``, ``TRIDENT_TOKEN``,
``--token``): whoever has the token has what it takes to check the server too.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
from pathlib import Path
from typing import Any

import attrs

from ._public import publish

TOKEN_ENV = "TRIDENT_TOKEN"
#: Between the token and the certificate's fingerprint in a credential.
PIN_SEPARATOR = "#tls-sha256="

_TLS_FIELDS = ("tls_ca_file", "tls_cert", "tls_key", "tls_fingerprint")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@attrs.frozen
class Security:
    """Credentials for a cluster.

    Arguments:
        token: the cluster token; None means no token (a `Client` then falls back to
            ``TRIDENT_TOKEN``).
        tls_ca_file: PEM file of the CA that signed the cluster's certificates. Needed to
            connect to ``tls://`` addresses, and to check client certificates.
        tls_cert, tls_key: PEM certificate and private key this process presents. A
            server (scheduler, worker) needs them; a client needs them when the server
            requires client certificates.
        require_client_cert: servers refuse TLS peers without a certificate signed by the
            CA (mutual TLS). On by default.
        tls_fingerprint: SHA-256 (64 lowercase hex digits) of the certificate the
            cluster's servers present: a client checks it after the TLS handshake, with
            or without `tls_ca_file` (without one, the pin alone proves the server).

    Raises `ValueError` when only one of `tls_cert` and `tls_key` is given, or for a
    malformed fingerprint.
    """

    token: str | None = None
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    require_client_cert: bool = True
    tls_fingerprint: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        if self.tls_fingerprint is not None and not _FINGERPRINT.fullmatch(self.tls_fingerprint):
            raise ValueError("tls_fingerprint must be 64 lowercase hex digits (SHA-256)")

    @property
    def tls(self) -> bool:
        """Whether any TLS file (or a certificate pin) is configured."""
        return any(getattr(self, name) is not None for name in _TLS_FIELDS)

    @property
    def credential(self) -> str | None:
        """The token and the certificate pin in one string (see the module docstring);
        None without a token."""
        if self.token is None:
            return None
        if self.tls_fingerprint is None:
            return self.token
        return f"{self.token}{PIN_SEPARATOR}{self.tls_fingerprint}"

    def with_credential(self, credential: str | None) -> Security:
        """A copy with the token of `credential`, and its pin when it has one."""
        token, fingerprint = split_credential(credential)
        if fingerprint is None:
            return self.with_token(token)
        return attrs.evolve(self, token=token, tls_fingerprint=fingerprint)

    def with_token(self, token: str | None) -> Security:
        """A copy with another token."""
        return attrs.evolve(self, token=token)

    def server_ssl_context(self) -> ssl.SSLContext:
        """The context for accepting ``tls://`` connections (reads the files).

        Raises `ValueError` without a certificate and key, or without a CA when client
        certificates are required; `OSError` or `ssl.SSLError` for unreadable files.
        """
        if self.tls_cert is None or self.tls_key is None:
            raise ValueError("a TLS server needs tls_cert and tls_key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key)
        # What the handshake binds its proofs to for peers that check no certificate.
        context.trident_certificate = certificate_fingerprint(self.tls_cert)  # type: ignore[attr-defined]
        if self.require_client_cert:
            if self.tls_ca_file is None:
                raise ValueError("require_client_cert needs tls_ca_file to check clients")
            context.load_verify_locations(self.tls_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """The context for connecting to ``tls://`` addresses (reads the files).

        The server's certificate must be signed by `tls_ca_file` and/or have the SHA-256
        `tls_fingerprint` (the pin is kept on the context as ``trident_fingerprint`` and
        checked by `comm.tls` right after the TLS handshake); host names are not checked
        (see the module docstring). Raises `ValueError` with neither a CA nor a pin.
        """
        if self.tls_ca_file is None and self.tls_fingerprint is None:
            raise ValueError(
                "connecting to a tls:// address needs Security(tls_ca_file=...) or the "
                "certificate's fingerprint (a TOKEN#tls-sha256=... credential) to check "
                "the server's certificate"
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        if self.tls_ca_file is not None:
            context.load_verify_locations(self.tls_ca_file)
        else:
            # The pin, checked after the handshake, is what proves the server.
            context.verify_mode = ssl.CERT_NONE
        context.trident_fingerprint = self.tls_fingerprint  # type: ignore[attr-defined]
        if self.tls_cert is not None and self.tls_key is not None:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        if self.token is not None:
            context.trident_peer_context = self._peer_ssl_context()  # type: ignore[attr-defined]
        return context

    def _peer_ssl_context(self) -> ssl.SSLContext:
        """The context for reaching workers (``comm.rpc.PeerPool``) when there is a token.

        A worker may serve a certificate of its own that neither the CA nor the pin
        knows (one made for it, see `listener_security`), so this context checks no
        certificate: the handshake binds its token proofs to the certificate the worker
        presented instead (``trident_bind_certificate``), which only the holder of that
        certificate's key and of the token can answer, relay or not.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.trident_bind_certificate = True  # type: ignore[attr-defined]
        if self.tls_cert is not None and self.tls_key is not None:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def listener_security(self) -> Security:
        """The credentials a worker serves its peers with.

        These credentials themselves when they hold a certificate or none of TLS. Given
        only a credential (the token and the scheduler's pin, no files), a throwaway
        self-signed certificate for this process (removed when it exits), so that the
        worker serves TLS as its scheduler does: peers reach it through the token-bound
        handshake (see `_peer_ssl_context`), not through the pin, which is the
        scheduler's.
        """
        if self.tls_cert is not None or self.tls_fingerprint is None or self.token is None:
            return self
        own = Security.temporary(token=self.token)
        return attrs.evolve(own, require_client_cert=False, tls_fingerprint=None)

    def tls_settings(self) -> dict[str, Any]:
        """The TLS part as plain data (file paths, no secrets), for settings and files."""
        return {
            "tls_ca_file": self.tls_ca_file,
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "require_client_cert": self.require_client_cert,
            "tls_fingerprint": self.tls_fingerprint,
        }

    @classmethod
    def from_tls_settings(cls, settings: dict[str, Any] | None, token: str | None) -> Security:
        """The inverse of `tls_settings`, with `token` added."""
        settings = settings or {}
        return cls(
            token=token,
            tls_ca_file=settings.get("tls_ca_file"),
            tls_cert=settings.get("tls_cert"),
            tls_key=settings.get("tls_key"),
            require_client_cert=settings.get("require_client_cert", True),
            tls_fingerprint=settings.get("tls_fingerprint"),
        )

    @classmethod
    def temporary(cls, *, token: str | None = None) -> Security:
        """TLS files made for this process in a fresh private temporary directory (removed
        when the process exits), as dask's ``Security.temporary()``: for a
        ``LocalCluster(security=Security.temporary())`` and its clients. Needs the
        ``cryptography`` package (see `self_signed`)."""
        import atexit
        import shutil
        import tempfile

        directory = tempfile.mkdtemp(prefix="trident-tls-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        return cls.self_signed(directory, token=token)

    @classmethod
    def self_signed(
        cls,
        directory: str | os.PathLike[str],
        *,
        token: str | None = None,
        hosts: tuple[str, ...] = (),
        require_client_cert: bool = True,
    ) -> Security:
        """Create a throwaway CA and one certificate signed by it in `directory`.

        Every process of the cluster uses the same certificate, as server and as
        client, so the result gives encrypted, mutually authenticated connections
        (with `require_client_cert`; without, peers need only the certificate's
        fingerprint, which the result carries, to check the servers).
        `directory` is created with mode 0700 if missing (an existing one should be
        private too); the key file is written with mode 0600. `hosts` are added to the
        certificate's names (informational: peers check the CA, not names). Needs the
        ``cryptography`` package.
        """
        from ._certificates import create_self_signed

        files = create_self_signed(Path(directory), hosts=hosts)
        return cls(
            token=token,
            tls_ca_file=str(files.ca_file),
            tls_cert=str(files.cert_file),
            tls_key=str(files.key_file),
            require_client_cert=require_client_cert,
            tls_fingerprint=certificate_fingerprint(files.cert_file),
        )


def certificate_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the (first) PEM certificate in `path`, as 64 lowercase hex digits.

    Raises `OSError` if unreadable, `ValueError` if it holds no PEM certificate.
    """
    pem = Path(path).read_text()
    start, end = pem.find(ssl.PEM_HEADER), pem.find(ssl.PEM_FOOTER)
    if start < 0 or end < start:
        raise ValueError(f"{path} holds no PEM certificate")
    der = ssl.PEM_cert_to_DER_cert(pem[start : end + len(ssl.PEM_FOOTER)])
    return hashlib.sha256(der).hexdigest()


def split_credential(credential: str | None) -> tuple[str | None, str | None]:
    """``(token, fingerprint)`` of a credential (``TOKEN`` or ``TOKEN#tls-sha256=HEX``)."""
    if credential is None:
        return None, None
    token, separator, fingerprint = credential.rpartition(PIN_SEPARATOR)
    if separator and _FINGERPRINT.fullmatch(fingerprint.lower()):
        return token or None, fingerprint.lower()
    return credential, None


def token_from_environment() -> str | None:
    """The token in ``TRIDENT_TOKEN``, or None when it is unset or empty."""
    return os.environ.get(TOKEN_ENV) or None


publish(globals())
