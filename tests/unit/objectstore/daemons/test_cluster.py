"""How a storage node finds its peers (`Peers`, `load_rings`) and wires its daemons
(`runner.storage_daemons`, ``/recon``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.unit.objectstore.daemons.conftest import PORT, Tiny

from pocketstack.config import ObjectStoreSettings
from pocketstack.objectstore.daemons.cluster import Peers, load_rings
from pocketstack.objectstore.ring.types import Device, DeviceId
from pocketstack.objectstore.server.runner import StorageNodeOptions, running, storage_daemons
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.remote_node import RemoteNode

pytestmark = pytest.mark.anyio


def device(ip: str, port: int, name: str = "d1") -> Device:
    return Device(DeviceId(0), 1, 1, ip, port, name, 100.0)


async def test_peers_serve_local_devices_locally_and_pool_the_others(tmp_path: Path) -> None:
    async with LocalNode(tmp_path, hasher=Tiny(tmp_path / "t").hasher) as node:
        peers = Peers(node, "127.0.0.1", 6200, timeout=5)
        assert peers.node_for(device("127.0.0.1", 6200)) is node
        other = peers.node_for(device("10.0.0.9", 6200))
        assert isinstance(other, RemoteNode) and other.base_url == "http://10.0.0.9:6200"
        assert peers.node_for(device("10.0.0.9", 6200, "d2")) is other  # one per host
        assert peers.node_for(device("127.0.0.1", 6201)) is not node
        wildcard = Peers(node, "0.0.0.0", 6200, timeout=5)
        assert wildcard.node_for(device("127.0.0.1", 6200)) is node  # an address of ours
        assert wildcard.node_for(device("192.0.2.1", 6200)) is not node  # TEST-NET: not ours
        await peers.close()
        await wildcard.close()


async def test_rings_and_daemons_of_a_storage_node(tiny: Tiny) -> None:
    account, container, objects = load_rings(tiny.rings_dir, tiny.hasher)
    assert sorted(objects) == [0] and container.replica_count == 3
    conf = ObjectStoreSettings(replicator_interval=0, auditor_interval=0)
    options = StorageNodeOptions(
        tiny.devices_root, "127.0.0.1", PORT, tiny.hasher, fsync=False, rings=tiny.rings_dir,
        conf=conf,
    )  # fmt: skip
    started = storage_daemons(options, tiny.node)
    assert started is not None
    daemons, peers = started
    assert daemons.cluster.local_devices() == ["d1", "d2", "d3", "d4"]
    async with running(tiny.node, recon=daemons) as url, httpx.AsyncClient() as client:
        status = (await client.get(f"{url}/recon/status")).json()
        assert [d["device"] for d in status["devices"]] == ["d1", "d2", "d3", "d4"]
        ran = (await client.post(f"{url}/recon/replicator")).json()
        assert ran["replicator"]["passes"] == 1
        assert (await client.post(f"{url}/recon/reaper")).status_code == 404
    assert (tiny.devices_root / "recon.json").exists()
    await peers.close()
    bare = StorageNodeOptions(tiny.devices_root, "127.0.0.1", PORT, tiny.hasher,
                              rings=tiny.root / "nowhere")  # fmt: skip
    assert storage_daemons(bare, tiny.node) is None
    async with running(tiny.node) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/recon/status")).status_code == 404
