"""base.write_all: every replica written, the replicas on one node in one call."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import write_all
from pocketstack.objectstore.proxy.nodes import NodeMap
from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.exceptions import DeviceUnavailable, DiskFileNotExist
from pocketstack.objectstore.storage.node import StorageNode

pytestmark = pytest.mark.anyio
PART = 0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeNode:
    """Answers `write` per device (True, or the exception that device raises) and records
    how it was asked: one device at a time, or several at once."""

    def __init__(self, failing: dict[str, Exception] | None = None) -> None:
        self.failing = failing or {}
        self.singles: list[str] = []
        self.batches: list[list[str]] = []

    async def write(self, device: str) -> bool:
        self.singles.append(device)
        if device in self.failing:
            raise self.failing[device]
        return True

    async def write_many(self, devices: list[str]) -> list[Any]:
        self.batches.append(devices)
        return [self.failing.get(device, True) for device in devices]


def make_ring(tmp_path: Path, hosts: int, devices: int) -> Ring:
    builder = RingBuilder(4, 3, 0)
    for zone in range(hosts):
        for d in range(devices):
            builder.add_dev(zone=zone + 1, ip=f"10.0.0.{zone + 1}", port=6200,
                            device=f"sd{'abcd'[d]}", weight=100)
    builder.rebalance(seed=1)
    builder.get_ring().save(tmp_path / "object.ring")
    return Ring(tmp_path / "object.ring", PathHasher(b"", b"x"))


def context(local: FakeNode, remotes: dict[str, FakeNode] | None = None) -> ProxyContext:
    nodes = NodeMap(cast(StorageNode, local), {("10.0.0.1", 6200)},
                    remote_factory=lambda ip, port: cast(StorageNode, (remotes or {})[ip]))
    return cast(ProxyContext, SimpleNamespace(nodes=nodes,
                                              settings=SimpleNamespace(node_timeout=5.0)))


async def write(ctx: ProxyContext, ring: Ring, batch: bool = True) -> list[Any]:
    return await write_all(
        ctx, ring, PART, lambda node, dev: cast(FakeNode, node).write(dev), success=204,
        batch=(lambda node, devs: cast(FakeNode, node).write_many(devs)) if batch else None)


async def test_replicas_on_one_node_are_written_by_one_call(tmp_path: Path) -> None:
    ring = make_ring(tmp_path, hosts=1, devices=4)
    node = FakeNode()
    outcomes = await write(context(node), ring)
    primaries = [d.device for d in ring.get_part_nodes(PART)]
    assert node.batches == [primaries] and node.singles == []
    assert [(o.status, o.value, o.target.device.device) for o in outcomes] == \
        [(204, True, device) for device in primaries]


async def test_a_replica_that_failed_in_the_call_moves_to_a_handoff(tmp_path: Path) -> None:
    ring = make_ring(tmp_path, hosts=1, devices=4)
    primaries = [d.device for d in ring.get_part_nodes(PART)]
    handoff = next(iter(ring.get_more_nodes(PART))).device
    node = FakeNode({primaries[1]: DeviceUnavailable("gone"),
                     primaries[2]: DiskFileNotExist("no such object")})
    ctx = context(node)
    outcomes = await write(ctx, ring)
    # the 507 is replaced by the handoff, the 404 is an answer and stays
    assert node.singles == [handoff]
    assert [(o.status, o.target.device.device) for o in outcomes] == \
        [(204, primaries[0]), (204, handoff), (404, primaries[2])]
    assert ctx.nodes.limited(ring.get_part_nodes(PART)[1])  # error-limited as if alone


async def test_a_failed_replica_keeps_its_outcome_when_no_handoff_is_left(
    tmp_path: Path
) -> None:
    ring = make_ring(tmp_path, hosts=1, devices=3)  # no handoff device at all
    primaries = [d.device for d in ring.get_part_nodes(PART)]
    node = FakeNode({primaries[0]: DeviceUnavailable("gone")})
    outcomes = await write(context(node), ring)
    assert [o.status for o in outcomes] == [507, 204, 204]
    assert isinstance(outcomes[0].error, DeviceUnavailable)


async def test_a_node_that_fails_as_a_whole_fails_each_replica(tmp_path: Path) -> None:
    ring = make_ring(tmp_path, hosts=1, devices=4)
    node = FakeNode()

    async def broken(devices: list[str]) -> list[Any]:
        raise RuntimeError("bug")

    node.write_many = broken  # type: ignore[method-assign]
    outcomes = await write(context(node), ring)
    # each a 500, each replaced by a handoff in turn (only one is left for three)
    assert sorted(o.status for o in outcomes) == [204, 500, 500]
    assert len(node.singles) == 1


async def test_replicas_on_several_nodes_are_written_one_by_one(tmp_path: Path) -> None:
    ring = make_ring(tmp_path, hosts=3, devices=1)
    local = FakeNode()
    remotes = {"10.0.0.2": FakeNode(), "10.0.0.3": FakeNode()}
    outcomes = await write(context(local, remotes), ring)
    assert [o.status for o in outcomes] == [204] * 3
    for node in (local, *remotes.values()):
        assert node.batches == [] and node.singles == ["sda"]


async def test_without_a_batch_every_replica_is_its_own_call(tmp_path: Path) -> None:
    ring = make_ring(tmp_path, hosts=1, devices=4)
    node = FakeNode()
    await write(context(node), ring, batch=False)
    assert node.batches == [] and len(node.singles) == 3
