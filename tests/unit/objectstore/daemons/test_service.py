"""The daemons together (`StorageDaemons`): schedules, passes on demand, the recon
document and file; the updater on a cluster; job planning."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.unit.objectstore.daemons.conftest import Tiny, ts

from pocketstack.config import ObjectStoreSettings
from pocketstack.objectstore.daemons import updater
from pocketstack.objectstore.daemons.db_replicator import in_sync
from pocketstack.objectstore.daemons.jobs import collect_jobs, make_job
from pocketstack.objectstore.daemons.recon import RECON_FILE, ReconCache
from pocketstack.objectstore.daemons.schedule import Periodic
from pocketstack.objectstore.daemons.service import StorageDaemons
from pocketstack.objectstore.storage.types import ContainerUpdate, DatabaseState, DatabaseStatus
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
QUIET = ObjectStoreSettings(replicator_interval=0, auditor_interval=0, auditor_files_per_second=0)


def daemons(tiny: Tiny) -> StorageDaemons:
    return StorageDaemons(tiny.cluster, QUIET, recon_path=tiny.root / RECON_FILE, host="here")


async def test_passes_on_demand_and_the_recon_document(tiny: Tiny) -> None:
    part, primaries, handoffs = tiny.object_part("o")
    await tiny.put("o", b"data", ts(), [primaries[0], handoffs[0]])
    running = daemons(tiny)
    replicated = await running.run("replicator")
    assert replicated["replicator"]["last"]["total"]["objects_pushed"] >= 2
    await running.run("auditor")
    with pytest.raises(KeyError):
        await running.run("reaper")
    document = await running.status()
    assert document["host"] == "here" and document["v"] == 1
    by_name = {d["device"]: d for d in document["devices"]}
    assert set(by_name) == {"d1", "d2", "d3", "d4"}
    for device in primaries:
        assert by_name[device]["partitions"]["object"]["primary"] == 1
    assert by_name[handoffs[0]]["partitions"]["object"]["handoff"] == 0  # handed off
    assert by_name[primaries[0]]["replication"]["objects_pushed"] >= 1
    assert by_name[primaries[0]]["auditor"]["files"] == 1
    saved = ReconCache(tiny.root / RECON_FILE).load()
    assert saved["replicator"]["passes"] == 1 and saved["auditor"]["passes"] == 1
    assert json.loads((tiny.root / RECON_FILE).read_text())["v"] == 1


async def test_handoffs_waiting_are_counted(tiny: Tiny) -> None:
    part, primaries, handoffs = tiny.object_part("o")
    await tiny.put("o", b"data", ts(), [handoffs[0]])
    document = await daemons(tiny).status()
    (device,) = [d for d in document["devices"] if d["device"] == handoffs[0]]
    assert device["handoffs_waiting"] == 1
    assert device["partitions"]["object"] == {"primary": 0, "handoff": 1}
    assert document["replicator"]["last"] is None


async def test_schedules_run_passes_and_stop(tiny: Tiny) -> None:
    calls: list[int] = []

    async def one_pass() -> int:
        calls.append(1)
        await asyncio.sleep(0)
        return len(calls)

    periodic = Periodic("test", one_pass, 0.01)
    task = asyncio.create_task(periodic.run_forever())
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(calls) >= 2
    assert await Periodic("off", one_pass, 0).run_now() == len(calls)
    await Periodic("off", one_pass, 0).run_forever()  # returns at once: disabled
    started = daemons(tiny).start()
    assert [t.get_name() for t in started] == ["replicator", "auditor", "updater"]
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)


async def test_the_updater_replays_to_every_container_primary(tiny: Tiny) -> None:
    c_part, c_primaries, _h = tiny.container_part()
    a_part = tiny.rings["account"].get_part("a")
    for device in c_primaries:
        await tiny.node.put_container(device, c_part, "a", "c", timestamp=ts())
    for device in [d.device for d in tiny.rings["account"].get_part_nodes(a_part)]:
        await tiny.node.put_account(device, a_part, "a", timestamp=ts())
    update = ContainerUpdate("a", "c", "o", ts(1), 5, "t", "e", False, 0)
    holder = next(d for d in ("d1", "d2") if d != c_primaries[0])
    await tiny.node.write_async_pending(holder, 0, update)
    tiny.unreachable.add(c_primaries[0])
    stats = await updater.run_pass(tiny.cluster)
    assert (stats.replayed, stats.failed) == (0, 1)  # kept for the next pass
    tiny.unreachable.clear()
    stats = await updater.run_pass(tiny.cluster, stats)
    assert (stats.replayed, stats.reported) == (1, 1)
    for device in c_primaries:
        listing = await tiny.node.list_objects(device, c_part, "a", "c")
        assert [e.name for e in listing.entries] == ["o"]
    account = await tiny.node.head_account(
        tiny.rings["account"].get_part_nodes(a_part)[0].device, a_part, "a"
    )
    assert (account.object_count, account.bytes_used) == (1, 5)
    assert [p async for p in tiny.node.iter_async_pendings(holder)] == []


async def test_jobs_put_handoffs_first(tiny: Tiny) -> None:
    part, primaries, handoffs = tiny.object_part("o")
    await tiny.put("o", b"x", ts(), [primaries[0], handoffs[0]])
    (role,) = [r for r in tiny.cluster.rings() if r.kind == "objects"]
    jobs = await collect_jobs(tiny.cluster, ["d1", "d2", "d3", "d4"], tiny.node.list_partitions)
    assert [(j.device, j.primary) for j in jobs] == [(handoffs[0], False), (primaries[0], True)]
    revert = make_job(tiny.cluster, role, handoffs[0], part)
    assert revert is not None and {d.device for d in revert.peers} == set(primaries)
    assert make_job(tiny.cluster, role, "d1", 10_000) is None  # not a partition of the ring


def test_in_sync() -> None:
    status = DatabaseStatus(Timestamp(1), Timestamp(2), Timestamp(0), Timestamp(1))
    local = DatabaseState("me", 10, status, -1, "a" * 32)
    assert not in_sync(None, local)
    assert in_sync(DatabaseState("you", 3, status, 10, "b" * 32), local)  # merged our rows
    assert in_sync(DatabaseState("you", 3, status, 2, "a" * 32), local)  # same rows anyway
    assert not in_sync(DatabaseState("you", 3, status, 9, "b" * 32), local)
    newer = DatabaseStatus(Timestamp(1), Timestamp(3), Timestamp(0), Timestamp(1))
    assert in_sync(DatabaseState("you", 3, newer, 10, "b" * 32), local)
    assert not in_sync(DatabaseState("me", 10, status, 10, "a" * 32),
                       DatabaseState("me", 10, newer, 10, "a" * 32))  # fmt: skip
