"""A small real cluster for daemon tests: devices in a temp dir, real rings, a LocalNode.

`Tiny` builds ``d1..dN`` (one zone each) under ``<tmp>/devices`` and account, container
and object rings of 16 partitions with 3 replicas, all at 127.0.0.1:6200 (so the one
LocalNode serves every device, as in ``pocketstack up``). Tests write replicas where they
want them (`put`), break devices (`down`), and run daemon passes directly.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pocketstack.objectstore.daemons.cluster import Cluster
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.ring.types import Device
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.timestamp import Timestamp

IP, PORT = "127.0.0.1", 6200
PART_POWER = 4
BASE = Timestamp.now()


def ts(seconds: float = 0) -> Timestamp:
    return Timestamp(BASE, delta=int(seconds * 100_000))


async def body_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Tiny:
    """See the module docstring."""

    def __init__(self, root: Path, devices: int = 4, *, reclaim_age: float = 7 * 86400) -> None:
        self.root = root
        self.devices_root = root / "devices"
        self.rings_dir = root / "rings"
        self.rings_dir.mkdir(parents=True)
        self.hasher = PathHasher(b"pre", b"suf")
        self.builders: dict[str, RingBuilder] = {}
        for name in ("account", "container", "object"):
            builder = RingBuilder(PART_POWER, 3, 0)
            self.builders[name] = builder
        for i in range(1, devices + 1):
            self.add_device(f"d{i}", zone=i)
        self.rebalance()
        self.node = LocalNode(
            self.devices_root, hasher=self.hasher, fsync=False, chunk_size=4096,
            reclaim_age=reclaim_age,
        )  # fmt: skip
        self.rings = {
            name: Ring(self.rings_dir / f"{name}.ring", self.hasher, reload_interval=0)
            for name in self.builders
        }
        self.unreachable: set[str] = set()
        """Devices whose host is down: no node serves them (nor are they this host's)."""
        self.cluster = Cluster(
            self.node, self.rings["account"], self.rings["container"],
            {0: self.rings["object"]}, self.node_for,
        )  # fmt: skip

    def node_for(self, device: Device) -> StorageNode | None:
        return None if device.device in self.unreachable else self.node

    def add_device(self, name: str, zone: int, weight: float = 100.0) -> None:
        (self.devices_root / name / "tmp").mkdir(parents=True, exist_ok=True)
        for builder in self.builders.values():
            builder.add_dev(region=1, zone=zone, ip=IP, port=PORT, device=name, weight=weight)

    def rebalance(self) -> None:
        for name, builder in self.builders.items():
            builder.pretend_min_part_hours_passed()
            builder.rebalance(seed=1)
            builder.get_ring().save(self.rings_dir / f"{name}.ring")

    # -- placement ---------------------------------------------------------------------

    def object_part(self, obj: str) -> tuple[int, list[str], list[str]]:
        """(partition, primary device names, handoff device names) of object a/c/obj."""
        ring = self.rings["object"]
        part = ring.get_part("a", "c", obj)
        primaries = [d.device for d in ring.get_part_nodes(part)]
        return part, primaries, [d.device for d in ring.get_more_nodes(part)]

    def container_part(self) -> tuple[int, list[str], list[str]]:
        ring = self.rings["container"]
        part = ring.get_part("a", "c")
        primaries = [d.device for d in ring.get_part_nodes(part)]
        return part, primaries, [d.device for d in ring.get_more_nodes(part)]

    async def put(self, obj: str, data: bytes, when: Timestamp, devices: list[str]) -> None:
        part, _primaries, _handoffs = self.object_part(obj)
        for device in devices:
            await self.node.put_object(
                device, part, "a", "c", obj, policy=0, timestamp=when,
                metadata={"Content-Type": "text/plain"}, body=body_of(data),
                content_length=len(data),
            )  # fmt: skip

    def files(self, device: str, obj: str) -> dict[str, bytes]:
        """The object's files on ``device``: {file name: bytes}."""
        part, _p, _h = self.object_part(obj)
        name_hash = self.hasher.hexdigest("a", "c", obj)
        path = self.devices_root / device / "objects" / str(part) / name_hash[-3:] / name_hash
        if not path.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in path.iterdir()}

    def holders(self, obj: str) -> set[str]:
        return {d for d in self.device_names() if self.files(d, obj)}

    def device_names(self) -> list[str]:
        return sorted(p.name for p in self.devices_root.iterdir() if p.name.isalnum())

    def down(self, device: str) -> Callable[[], None]:
        """Make a device unavailable (its directory renamed); returns the undo."""
        path = self.devices_root / device
        away = self.devices_root / f"{device}-away"
        os.rename(path, away)
        return lambda: os.rename(away, path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def tiny(tmp_path: Path) -> AsyncIterator[Tiny]:
    cluster = Tiny(tmp_path)
    yield cluster
    await cluster.node.close()
