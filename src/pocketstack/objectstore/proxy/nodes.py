"""From ring devices to storage nodes, primaries first, then handoffs.

``NodeMap`` knows which ``StorageNode`` serves a ring device (this host's devices are served
by the ``LocalNode``; devices of other hosts need the remote transport, which arrives with
scale-out, and count as unavailable until then). ``node_iter`` yields a partition's
primaries and then its handoffs, skipping devices that failed recently (error limiting, as
Swift's proxy does) unless nothing else is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.ring.types import Device
from pocketstack.objectstore.storage.node import StorageNode

ERROR_SUPPRESSION_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    """One replica's place: the device, the node serving it, and whether it is a handoff."""

    device: Device
    node: StorageNode | None
    handoff: bool

    @property
    def name(self) -> str:
        return f"{self.device.ip}:{self.device.port}/{self.device.device}"


class NodeMap:
    def __init__(self, local: StorageNode, local_addresses: set[tuple[str, int]]) -> None:
        self.local = local
        self.local_addresses = local_addresses
        self._errors: dict[tuple[str, int, str], float] = {}

    def node_for(self, device: Device) -> StorageNode | None:
        if (device.ip, device.port) in self.local_addresses:
            return self.local
        return None

    def error(self, device: Device) -> None:
        """Remember that a device failed (507, timeout): skip it for a while."""
        self._errors[(device.ip, device.port, device.device)] = time.monotonic()

    def ok(self, device: Device) -> None:
        self._errors.pop((device.ip, device.port, device.device), None)

    def limited(self, device: Device) -> bool:
        key = (device.ip, device.port, device.device)
        failed = self._errors.get(key)
        if failed is None:
            return False
        if time.monotonic() - failed > ERROR_SUPPRESSION_SECONDS:
            del self._errors[key]
            return False
        return True

    def primaries(self, ring: Ring, part: int) -> list[Target]:
        """A partition's primary replicas in replica order, available or not (container
        updates go to these and nowhere else: a failed one waits as an async pending)."""
        return [Target(device, self.node_for(device), False)
                for device in ring.get_part_nodes(part)]

    def node_iter(self, ring: Ring, part: int, *, limit: int | None = None
                  ) -> Iterator[Target]:
        """Primaries, then handoffs (at most ``limit`` in all, default 2x replicas); devices
        in error are postponed to the end rather than dropped."""
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
