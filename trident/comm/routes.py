"""Which local address peers can reach: for workers that listen on every interface.

A worker bound to ``0.0.0.0`` must advertise a concrete address. Like dask, trident picks
the local address of the interface that routes to the scheduler, found by "connecting" a
UDP socket (which sends nothing).
"""

from __future__ import annotations

import ipaddress
import socket

import psutil
import trio

from .address import format_address, parse_address, parse_host_port

UNSPECIFIED_HOSTS = ("", "0.0.0.0", "::")


def is_unspecified(host: str) -> bool:
    """Whether `host` means "every interface" rather than one address."""
    return host in UNSPECIFIED_HOSTS


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine's loopback only (``localhost``, ``127.x``, ``::1``):
    what listens there cannot be reached from another machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def local_host_towards(host: str) -> str:
    """The local IP address this machine uses to reach `host`.

    Falls back to ``127.0.0.1`` when `host` cannot be resolved or routed. Checkpoints
    (resolving a name may take a moment).
    """
    try:
        infos = await trio.socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
    except OSError:
        return "127.0.0.1"
    for family, type_, proto, _, sockaddr in infos:
        with socket.socket(family, type_, proto) as probe:
            try:
                probe.connect(sockaddr)
            except OSError:
                continue
            return str(probe.getsockname()[0])
    return "127.0.0.1"


#: A public address to find the interface of the default route (nothing is sent to it).
_PUBLIC_PROBE = "192.0.2.1"


async def default_host() -> str:
    """The local IP address of the interface with the default route, else ``127.0.0.1``.

    What a service bound to every interface advertises. Checkpoints.
    """
    return await local_host_towards(_PUBLIC_PROBE)


async def reachable_address(bound: str, towards: str | None = None) -> str:
    """`bound` with an unspecified host (``0.0.0.0``) replaced by a concrete one.

    The replacement is the local address of the interface that routes to `towards`,
    or of the default route's interface (`default_host`) without it. Other addresses
    come back unchanged. Checkpoints.
    """
    scheme, location = parse_address(bound)
    if scheme == "inproc":
        return bound
    host, port = parse_host_port(location)
    if not is_unspecified(host):
        return bound
    local = await (local_host_towards(towards) if towards is not None else default_host())
    return format_address(scheme, local, port)


def interface_address(name: str) -> str:
    """The IPv4 address (else the IPv6 one) of the network interface `name`.

    Raises `ValueError` naming the interfaces there are when `name` is not one of them
    or has no IP address.
    """
    interfaces = psutil.net_if_addrs()
    if name not in interfaces:
        raise ValueError(
            f"no network interface {name!r} (there are: {', '.join(sorted(interfaces))})"
        )
    for family in (socket.AF_INET, socket.AF_INET6):
        for address in interfaces[name]:
            if address.family == family:
                return address.address.split("%")[0]
    raise ValueError(f"network interface {name!r} has no IP address")
