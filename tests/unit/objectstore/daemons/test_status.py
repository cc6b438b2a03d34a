"""``pocketstack status`` on a single-host data dir: devices, handoffs, pendings,
quarantine, the daemons' last passes (from ``recon.json``) and the rings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from pocketstack.cli import main
from pocketstack.config import ObjectStoreSettings, load_settings
from pocketstack.objectstore.daemons.cluster import Cluster, load_rings
from pocketstack.objectstore.daemons.recon import RECON_FILE
from pocketstack.objectstore.daemons.service import StorageDaemons
from pocketstack.objectstore.runtime import devices_dir, load_hasher, prepare_storage, ring_dir
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.types import ContainerUpdate
from pocketstack.objectstore.timestamp import Timestamp


async def body() -> object:
    yield b"data"


async def a_day_on_this_host(data_dir: Path) -> str:
    """A handoff copy, an async pending, and one replication pass saved to recon.json."""
    settings = load_settings(None, overrides={"data_dir": data_dir, "objectstore.devices": 4})
    prepare_storage(settings)
    hasher = load_hasher(settings)
    account, container, objects = load_rings(ring_dir(settings), hasher)
    async with LocalNode(devices_dir(settings), hasher=hasher, fsync=False) as node:
        part = objects[0].get_part("a", "c", "o")
        handoff = next(objects[0].get_more_nodes(part)).device
        await node.put_object(
            handoff,
            part,
            "a",
            "c",
            "o",
            policy=0,
            timestamp=Timestamp.now(),
            metadata={},
            body=body(),
            content_length=4,
        )  # type: ignore[arg-type]
        update = ContainerUpdate("a", "c", "o", Timestamp.now(), 4, "t", "e", False, 0)
        await node.write_async_pending("d1", 0, update)
        cluster = Cluster(node, account, container, objects, lambda device: None)
        conf = ObjectStoreSettings(replicator_interval=0, auditor_interval=0)
        daemons = StorageDaemons(cluster, conf, recon_path=data_dir / RECON_FILE)
        await daemons.recon.save(daemons.stats())  # what the cloud saved after its passes
    return handoff


def test_status_of_a_data_dir(tmp_path: Path) -> None:
    handoff = asyncio.run(a_day_on_this_host(tmp_path))
    runner = CliRunner()
    result = runner.invoke(main, ["status", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["source"] == "local"
    (host,) = document["hosts"]
    devices = {d["device"]: d for d in host["devices"]}
    assert set(devices) == {"d1", "d2", "d3", "d4"}
    assert devices[handoff]["handoffs_waiting"] == 1
    assert devices[handoff]["partitions"]["object"] == {"primary": 0, "handoff": 1}
    assert devices["d1"]["async_pendings"] == 1
    assert host["replicator"]["passes"] == 0 and devices["d1"]["replication"] is None
    ring_files = {p.stem for p in (tmp_path / "rings").glob("*.ring")}
    assert {r["name"] for r in document["rings"]} == ring_files >= {"account", "object"}
    assert all(r["partitions"] == 1024 and r["replicas"] >= 1 for r in document["rings"])
    table = runner.invoke(main, ["status", "--data-dir", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "Devices" in table.output and "Rings" in table.output and handoff in table.output
    assert "never" in table.output  # no replication pass yet


def test_status_without_a_cluster_secret(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "hash-path secret" in result.output
