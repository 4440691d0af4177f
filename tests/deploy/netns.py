"""Separate "hosts" for tests: Linux network namespaces joined by a bridge.

Each host is a network namespace with its own address on one subnet, wired by a veth
pair to a bridge in a switch namespace. Processes run there with ``ip netns exec``.
`open_network` checks that namespaces can be made and removes everything afterwards,
also on failure. Where they cannot be made (not root, no iproute2, not Linux) the
test is skipped and says why, except under CI (``CI`` set), where that is a failure:
CI runs as root, so a skip there would hide a broken setup.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def unavailable(reason: str) -> None:
    """Skip the test for `reason`; fail it under CI, where it must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


class Network:
    """Namespaces ``<prefix>-<host>`` with addresses ``<subnet>.<n>`` for
    ``hosts = {host: n}``, on one bridge; `close` removes them all."""

    def __init__(self, prefix: str, subnet: str, hosts: Mapping[str, int]):
        self.prefix = prefix
        self.subnet = subnet
        self.hosts = dict(hosts)
        self.switch = f"{prefix}-sw"
        self.namespaces: list[str] = []

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{self.hosts[host]}"

    def port(self, host: str) -> str:
        """The switch's end of `host`'s veth pair (down: the host drops off)."""
        return f"v{self.hosts[host]}"

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def create(self) -> None:
        self._add_namespace(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        for host in self.hosts:
            namespace = self.namespace(host)
            self._add_namespace(namespace)
            port = self.port(host)
            ip("-n", self.switch, "link", "add", port, "type", "veth",
               "peer", "name", "eth0", "netns", namespace)  # fmt: skip
            ip("-n", self.switch, "link", "set", port, "master", "br0")
            ip("-n", self.switch, "link", "set", port, "up")
            ip("-n", namespace, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")

    def set_link(self, host: str, state: str) -> None:
        """Bring `host`'s link to the switch ``"up"`` or ``"down"``."""
        ip("-n", self.switch, "link", "set", self.port(host), state)

    def pids(self, host: str) -> list[int]:
        """Processes running in `host`'s namespace."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.namespace(host)],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        return [int(pid) for pid in out.split()]

    def close(self) -> None:
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self.namespaces.clear()

    def command(self, host: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host), *args]


@contextmanager
def open_network(prefix: str, subnet: str, hosts: Mapping[str, int]) -> Iterator[Network]:
    """A created `Network` (see the module); removed on exit."""
    if sys.platform != "linux":
        unavailable("network namespaces need Linux")
    if shutil.which("ip") is None:
        unavailable("iproute2's 'ip' command is not installed (apt-get install iproute2)")
    net = Network(f"{prefix}{os.getpid() % 100000}", subnet, hosts)
    try:
        net._add_namespace(net.switch)
        subprocess.run(net.command("sw", "true"), check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        net.close()
        unavailable(f"cannot create network namespaces here (needs root): {exc.stderr.strip()}")
    net.close()
    try:
        net.create()
        yield net
    finally:
        net.close()
