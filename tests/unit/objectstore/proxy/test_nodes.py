"""NodeMap: local and remote nodes per ring device, handoff order, error limiting by host."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.proxy.nodes import NodeMap, Target, host_url
from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.exceptions import DiskFileNoSpace, NodeUnavailable
from pocketstack.objectstore.storage.node import StorageNode

HOSTS = [("10.0.0.1", 6200), ("10.0.0.2", 6200), ("10.0.0.3", 6200)]


class FakeNode:
    """Stands for a StorageNode: NodeMap only hands nodes out and closes remote ones."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.closed = False

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def ring(tmp_path: Path) -> Ring:
    """Three hosts (one zone each) with two devices each; part power 4, 3 replicas."""
    builder = RingBuilder(4, 3, 0)
    for zone, (ip, port) in enumerate(HOSTS, start=1):
        for device in ("sda", "sdb"):
            builder.add_dev(zone=zone, ip=ip, port=port, device=device, weight=100)
    builder.rebalance(seed=1)
    builder.get_ring().save(tmp_path / "object.ring")
    return Ring(tmp_path / "object.ring", PathHasher(b"", b"x"))


def node_map(local_addresses: set[tuple[str, int]] | None = None) -> NodeMap:
    local = cast(StorageNode, FakeNode(("local", 0)))
    return NodeMap(local, local_addresses or set(),
                   remote_factory=lambda ip, port: cast(StorageNode, FakeNode((ip, port))))


def hosts(targets: list[Target]) -> list[str]:
    return [t.device.ip for t in targets]


def test_one_cached_remote_node_per_host(ring: Ring) -> None:
    nodes = node_map()
    served = {(d.ip, d.port, d.device): nodes.node_for(d) for d in ring.devices}
    assert len({id(node) for node in served.values()}) == 3
    for (ip, port, _), node in served.items():
        assert cast(FakeNode, node).address == (ip, port)
    assert len(nodes.remotes) == 3


def test_local_address_gets_the_local_node(ring: Ring) -> None:
    nodes = node_map({HOSTS[0]})
    for device in ring.devices:
        expected_local = (device.ip, device.port) == HOSTS[0]
        assert (nodes.node_for(device) is nodes.local) == expected_local
    assert len(nodes.remotes) == 2


def test_without_remote_factory_other_hosts_are_unavailable(ring: Ring) -> None:
    nodes = NodeMap(cast(StorageNode, FakeNode(("local", 0))), {HOSTS[0]})
    remote = [d for d in ring.devices if d.ip != HOSTS[0][0]]
    assert all(nodes.node_for(d) is None for d in remote)


def test_unreachable_host_limits_all_its_devices(ring: Ring) -> None:
    nodes = node_map()
    part = 5
    first = ring.get_part_nodes(part)[0]
    nodes.error(first, NodeUnavailable("refused"))
    limited = [d for d in ring.devices if nodes.limited(d)]
    assert {(d.ip, d.port) for d in limited} == {(first.ip, first.port)}
    assert len(limited) == 2  # both devices of that host, after one failure
    order = hosts(list(nodes.node_iter(ring, part)))
    assert order[-2:] == [first.ip, first.ip]  # postponed, not dropped
    assert first.ip not in order[:-2]


def test_timeout_of_a_remote_host_limits_the_host(ring: Ring) -> None:
    nodes = node_map()
    device = ring.devices[0]
    nodes.error(device, TimeoutError())
    assert sum(nodes.limited(d) for d in ring.devices) == 2


def test_full_device_limits_only_that_device(ring: Ring) -> None:
    nodes = node_map()
    device = ring.devices[0]
    nodes.error(device, DiskFileNoSpace("full"))
    assert [d for d in ring.devices if nodes.limited(d)] == [device]


def test_local_timeout_limits_only_the_device(ring: Ring) -> None:
    nodes = node_map({HOSTS[0]})
    device = next(d for d in ring.devices if (d.ip, d.port) == HOSTS[0])
    nodes.error(device, TimeoutError())
    assert [d for d in ring.devices if nodes.limited(d)] == [device]


def test_limits_expire(ring: Ring) -> None:
    nodes = NodeMap(cast(StorageNode, FakeNode(("local", 0))), set(),
                    remote_factory=lambda ip, port: cast(StorageNode, FakeNode((ip, port))),
                    suppression=0.0)
    nodes.error(ring.devices[0], NodeUnavailable("refused"))
    assert not any(nodes.limited(d) for d in ring.devices)


def test_ok_clears_host_and_device(ring: Ring) -> None:
    nodes = node_map()
    device = ring.devices[0]
    nodes.error(device, NodeUnavailable("refused"))
    nodes.error(device, DiskFileNoSpace("full"))
    nodes.ok(device)
    assert not any(nodes.limited(d) for d in ring.devices)


def test_handoffs_follow_primaries(ring: Ring) -> None:
    targets = list(node_map().node_iter(ring, 3))
    assert [t.handoff for t in targets] == [False] * 3 + [True] * 3
    assert len({(t.device.ip, t.device.device) for t in targets}) == 6


def test_close_closes_every_remote(ring: Ring) -> None:
    nodes = node_map({HOSTS[0]})
    remotes = [nodes.node_for(d) for d in ring.devices]
    asyncio.run(nodes.close())
    assert all(cast(FakeNode, n).closed for n in remotes if n is not nodes.local)
    assert not cast(FakeNode, nodes.local).closed
    assert nodes.remotes == {}


def test_host_url() -> None:
    assert host_url("10.0.0.1", 6200) == "http://10.0.0.1:6200"
    assert host_url("fd00::1", 6200) == "http://[fd00::1]:6200"
