"""Parsing and formatting of trident addresses (``tcp://host:port``, ``tls://host:port``,
``inproc://name``)."""

from __future__ import annotations

SCHEMES = ("tcp", "tls", "inproc")
#: Schemes whose location is ``host:port``.
NETWORK_SCHEMES = ("tcp", "tls")


class AddressError(ValueError):
    """An address string that trident cannot use."""


def parse_address(address: str) -> tuple[str, str]:
    """Split ``scheme://location``; a bare ``host:port`` means tcp. Raises `AddressError`."""
    if not isinstance(address, str) or not address:
        raise AddressError(f"an address must be a non-empty string, got {address!r}")
    scheme, sep, location = address.partition("://")
    if not sep:
        scheme, location = "tcp", address
    if scheme not in SCHEMES:
        raise AddressError(f"unknown transport {scheme!r} in {address!r}; use one of {SCHEMES}")
    if not location:
        raise AddressError(f"address {address!r} has no location")
    return scheme, location


def parse_host_port(location: str, default_port: int | None = None) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 hosts in brackets). Raises `AddressError`."""
    if location.startswith("["):
        host, _, rest = location[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = location.rpartition(":")
        if not host:
            host, port_text = port_text, ""
    if not port_text:
        if default_port is None:
            raise AddressError(f"address {location!r} has no port")
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise AddressError(f"port {port_text!r} in {location!r} is not a number") from None
    if not 0 <= port < 65536:
        raise AddressError(f"port {port} in {location!r} is out of range")
    return host, port


def format_address(scheme: str, host: str, port: int) -> str:
    """``scheme://host:port``, with IPv6 hosts in brackets."""
    if ":" in host:
        return f"{scheme}://[{host}]:{port}"
    return f"{scheme}://{host}:{port}"
