"""What a background daemon knows of the cluster: the rings, and which node serves a device.

A `Cluster` is built by whoever runs the daemons: ``pocketstack up`` from its proxy's rings
and node map, a ``storage-node`` from ``--rings`` and `Peers` (its own LocalNode for the
devices at its address, one pooled RemoteNode per other storage node). The daemons only
ask it three things: the rings (`rings`), this host's devices (`local_devices`) and the
node serving any ring device (`node_for`).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.ring.types import Device
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import DataKind

if TYPE_CHECKING:
    from pocketstack.objectstore.storage.remote_node import RemoteNode

LOG = logging.getLogger(__name__)
NodeLookup = Callable[[Device], StorageNode | None]
_OBJECT_RING: Final = re.compile(r"object(?:-([0-9]+))?\.ring")


@dataclass(frozen=True)
class RingRole:
    """One ring and what it places: accounts, containers, or one policy's objects."""

    kind: DataKind
    policy: int
    ring: Ring

    @property
    def name(self) -> str:
        if self.kind != "objects":
            return self.kind[:-1]
        return "object" if self.policy == 0 else f"object-{self.policy}"


@dataclass
class Cluster:
    """The rings and the nodes serving their devices (see the module docstring)."""

    local: LocalNode
    account_ring: Ring
    container_ring: Ring
    object_rings: Mapping[int, Ring]
    node_for: NodeLookup
    """The node serving a ring device (``local`` for this host's), None if unreachable."""
    timeout: float = 10.0
    """Seconds one storage operation on a peer may take (not a whole object's stream)."""

    def rings(self) -> list[RingRole]:
        roles = [
            RingRole("accounts", 0, self.account_ring),
            RingRole("containers", 0, self.container_ring),
        ]
        roles += [
            RingRole("objects", index, ring) for index, ring in sorted(self.object_rings.items())
        ]
        return roles

    def is_local(self, device: Device) -> bool:
        return self.node_for(device) is self.local

    def local_devices(self) -> list[str]:
        """Names of this host's devices in any ring."""
        names = {d.device for role in self.rings() for d in role.ring.devices if self.is_local(d)}
        return sorted(names)


def load_rings(rings_dir: Path, hasher: PathHasher) -> tuple[Ring, Ring, dict[int, Ring]]:
    """The account, container and object rings (``object[-N].ring``) of a rings dir."""
    objects = {}
    for path in sorted(rings_dir.glob("object*.ring")):
        match = _OBJECT_RING.fullmatch(path.name)
        if match is not None:
            objects[int(match.group(1) or 0)] = Ring(path, hasher)
    account = Ring(rings_dir / "account.ring", hasher)
    return account, Ring(rings_dir / "container.ring", hasher), objects


class Peers:
    """Nodes by address for a storage node bound at ``host:port``: its own LocalNode for
    devices at that address (any of this host's addresses when bound to a wildcard), and
    one pooled RemoteNode per other storage node, made on first use."""

    def __init__(self, local: LocalNode, host: str, port: int, *, timeout: float) -> None:
        self.local = local
        self.host = host
        self.port = port
        self.timeout = timeout
        self._remote: dict[tuple[str, int], RemoteNode] = {}

    def is_local(self, ip: str, port: int) -> bool:
        if port != self.port:
            return False
        if _is_wildcard(self.host):
            return _is_own_address(ip)
        return _same_address(ip, self.host)

    def node_for(self, device: Device) -> StorageNode:
        if self.is_local(device.ip, device.port):
            return self.local
        key = (device.ip, device.port)
        node = self._remote.get(key)
        if node is None:
            # imported here: a single host never makes one, and it brings httpx (see storage)
            from pocketstack.objectstore.storage.remote_node import RemoteNode

            node = self._remote[key] = RemoteNode(f"http://{device.address}", timeout=self.timeout)
        return node

    async def close(self) -> None:
        nodes, self._remote = list(self._remote.values()), {}
        for node in nodes:
            await node.close()


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


@cache
def _is_own_address(ip: str) -> bool:
    """True if ``ip`` is one of this host's addresses (it can be bound to)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((ip, 0))
    except (OSError, ValueError):
        return False
    return True
