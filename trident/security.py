"""`Security`: a cluster's credentials, its token and optionally TLS certificates.

Every scheduler, worker, nanny and client of a cluster holds the same `Security`. The
token authenticates peers in the msgpack handshake (an HMAC challenge-response; the
token never travels). TLS (``tls://`` addresses) encrypts the connection and, with
`require_client_cert`, lets only holders of a certificate signed by the cluster's CA
connect at all. Certificates are checked against the CA, not against host names: the CA
is private to the cluster, which is what makes a peer trustworthy.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import attrs

from ._public import publish

TOKEN_ENV = "TRIDENT_TOKEN"

_TLS_FIELDS = ("tls_ca_file", "tls_cert", "tls_key")


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

    Raises `ValueError` when only one of `tls_cert` and `tls_key` is given.
    """

    token: str | None = None
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    require_client_cert: bool = True

    def __attrs_post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")

    @property
    def tls(self) -> bool:
        """Whether any TLS file is configured."""
        return any(getattr(self, name) is not None for name in _TLS_FIELDS)

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
        if self.require_client_cert:
            if self.tls_ca_file is None:
                raise ValueError("require_client_cert needs tls_ca_file to check clients")
            context.load_verify_locations(self.tls_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """The context for connecting to ``tls://`` addresses (reads the files).

        The server's certificate must be signed by `tls_ca_file`; host names are not
        checked (see the module docstring). Raises `ValueError` without a CA.
        """
        if self.tls_ca_file is None:
            raise ValueError(
                "connecting to a tls:// address needs Security(tls_ca_file=...) "
                "to check the server's certificate"
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.load_verify_locations(self.tls_ca_file)
        if self.tls_cert is not None and self.tls_key is not None:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def tls_settings(self) -> dict[str, Any]:
        """The TLS part as plain data (file paths, no secrets), for settings and files."""
        return {
            "tls_ca_file": self.tls_ca_file,
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "require_client_cert": self.require_client_cert,
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
        )

    @classmethod
    def self_signed(
        cls,
        directory: str | os.PathLike[str],
        *,
        token: str | None = None,
        hosts: tuple[str, ...] = (),
    ) -> Security:
        """Create a throwaway CA and one certificate signed by it in `directory`.

        Every process of the cluster uses the same certificate, as server and as
        client, so the result gives encrypted, mutually authenticated connections.
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
        )


def token_from_environment() -> str | None:
    """The token in ``TRIDENT_TOKEN``, or None when it is unset or empty."""
    return os.environ.get(TOKEN_ENV) or None


publish(globals())
