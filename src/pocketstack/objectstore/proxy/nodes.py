"""From ring devices to storage nodes, primaries first, then handoffs.

``NodeMap`` knows which ``StorageNode`` serves a ring device: this host's devices (its
``storage_ip:storage_port`` in the rings) are served by the ``LocalNode``; every other
host's devices by one ``RemoteNode`` per host (``remote_factory(ip, port)``, made on first
use, kept and pooled, closed by `close`). A proxy-only deployment has no local address:
every device is remote. Without a ``remote_factory`` other hosts count as unavailable.

``node_iter`` yields a partition's primaries and then its handoffs, skipping what failed
recently (error limiting, as Swift's proxy does) unless nothing else is left. A failure
limits the *device* (a 507, a broken disk), except when the *host* is the problem: a
remote node that cannot be reached (NodeUnavailable: refused, reset, cut off) or that does
not answer in time limits every device of that host at once, so a dead host costs one
failed attempt per ``ERROR_SUPPRESSION_SECONDS``, not one per device it holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.ring.types import Device
from pocketstack.objectstore.storage.exceptions import NodeUnavailable
from pocketstack.objectstore.storage.node import StorageNode

ERROR_SUPPRESSION_SECONDS = 10.0

Address = tuple[str, int]
"""A storage host as the rings name it: (ip, port)."""
RemoteFactory = Callable[[str, int], StorageNode]
"""Makes the node that speaks to the storage host at (ip, port), e.g. a ``RemoteNode``."""


@dataclass(frozen=True)
class Target:
    """One replica's place: the device, the node serving it, and whether it is a handoff."""

    device: Device
    node: StorageNode | None
    handoff: bool

    @property
    def name(self) -> str:
        return f"{self.device.ip}:{self.device.port}/{self.device.device}"


def host_url(ip: str, port: int) -> str:
    """``http://ip:port`` (IPv6 addresses in brackets)."""
    host = f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip
    return f"http://{host}:{port}"


class NodeMap:
    def __init__(self, local: StorageNode, local_addresses: set[Address], *,
                 remote_factory: RemoteFactory | None = None,
                 suppression: float = ERROR_SUPPRESSION_SECONDS) -> None:
        self.local = local
        self.local_addresses = local_addresses
        self.remote_factory = remote_factory
        self.suppression = suppression
        self.remotes: dict[Address, StorageNode] = {}
        self._errors: dict[tuple[str, int, str | None], float] = {}

    def node_for(self, device: Device) -> StorageNode | None:
        address = (device.ip, device.port)
        if address in self.local_addresses:
            return self.local
        if self.remote_factory is None:
            return None
        node = self.remotes.get(address)
        if node is None:
            node = self.remotes[address] = self.remote_factory(*address)
        return node

    def is_local(self, device: Device) -> bool:
        return (device.ip, device.port) in self.local_addresses

    async def close(self) -> None:
        """Close every remote node's connections (the local node is its owner's)."""
        remotes, self.remotes = list(self.remotes.values()), {}
        for node in remotes:
            await node.close()

    # -- error limiting ----------------------------------------------------------------------
    def error(self, device: Device, exc: BaseException | None = None) -> None:
        """Remember that a device failed (507, timeout): skip it for a while; skip its
        whole host when a remote host was unreachable or did not answer in time."""
        host_down = isinstance(exc, NodeUnavailable | TimeoutError) and \
            not self.is_local(device)
        key = (device.ip, device.port, None if host_down else device.device)
        self._errors[key] = time.monotonic()

    def ok(self, device: Device) -> None:
        self._errors.pop((device.ip, device.port, device.device), None)
        self._errors.pop((device.ip, device.port, None), None)

    def limited(self, device: Device) -> bool:
        return self._limited((device.ip, device.port, None)) or \
            self._limited((device.ip, device.port, device.device))

    def _limited(self, key: tuple[str, int, str | None]) -> bool:
        failed = self._errors.get(key)
        if failed is None:
            return False
        if time.monotonic() - failed > self.suppression:
            del self._errors[key]
            return False
        return True

    # -- placement ---------------------------------------------------------------------------
    def primaries(self, ring: Ring, part: int) -> list[Target]:
        """A partition's primary replicas in replica order, available or not (container
        updates go to these and nowhere else: a failed one waits as an async pending)."""
        return [Target(device, self.node_for(device), False)
                for device in ring.get_part_nodes(part)]

    def node_iter(self, ring: Ring, part: int, *, limit: int | None = None
                  ) -> Iterator[Target]:
        """Primaries, then handoffs (at most ``limit`` in all, default 2x replicas); devices
        in error are postponed to the end rather than dropped. Lazy: a failure seen while
        the caller works through the first targets postpones the later ones of its host."""
        limit = limit if limit is not None else 2 * ring.replica_count
        postponed: list[Target] = []
        count = 0
        for handoff, device in _devices(ring, part):
            if count >= limit:
                break
            target = Target(device, self.node_for(device), handoff)
            if target.node is None or self.limited(device):
                postponed.append(target)
                continue
            count += 1
            yield target
        for target in postponed:
            if count >= limit:
                break
            if target.node is not None:
                count += 1
                yield target


def _devices(ring: Ring, part: int) -> Iterator[tuple[bool, Device]]:
    for device in ring.get_part_nodes(part):
        yield False, device
    for device in ring.get_more_nodes(part):
        yield True, device
