"""The replicator on a real devices tree (`conftest.Tiny`): objects and databases reach
every primary, the newest version wins, handoffs are emptied only once the primaries have
their data, and a rebalance moves partitions."""

from __future__ import annotations

import pytest
from tests.unit.objectstore.daemons.conftest import Tiny, ts

from pocketstack.objectstore.daemons.replicator import Replicator
from pocketstack.objectstore.storage.exceptions import ContainerNotFound
from pocketstack.objectstore.storage.types import DatabaseRef

pytestmark = pytest.mark.anyio


def names(tiny: Tiny, device: str, obj: str) -> list[str]:
    return sorted(tiny.files(device, obj))


async def test_a_missing_replica_is_pushed_byte_for_byte(tiny: Tiny) -> None:
    _part, primaries, _handoffs = tiny.object_part("o")
    await tiny.put("o", b"x" * 10_000, ts(), primaries[:2])
    done = await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == set(primaries)
    assert tiny.files(primaries[2], "o") == tiny.files(primaries[0], "o")
    # Both holders may find the third one missing, or the second may already see the
    # first one's copy there (their jobs run concurrently).
    assert done.total().objects_pushed in (1, 2)
    again = await Replicator(tiny.cluster).run_pass()
    assert again.total().objects_pushed == 0 and again.total().suffixes_synced == 0


async def test_newest_wins_tombstones_and_posts_replicate(tiny: Tiny) -> None:
    _part, (p1, p2, p3), _h = tiny.object_part("o")
    await tiny.put("o", b"old", ts(), [p1, p2, p3])
    await tiny.put("o", b"new", ts(1), [p1])
    await tiny.node.post_object(
        p1,
        tiny.object_part("o")[0],
        "a",
        "c",
        "o",
        policy=0,
        timestamp=ts(2),
        metadata={"X-Object-Meta-K": "v"},
    )
    await Replicator(tiny.cluster).run_pass()
    expected = [ts(1).internal + ".data", ts(2).internal + ".meta"]
    assert [names(tiny, d, "o") for d in (p1, p2, p3)] == [expected] * 3
    await tiny.node.delete_object(
        p3, tiny.object_part("o")[0], "a", "c", "o", policy=0, timestamp=ts(3)
    )
    await Replicator(tiny.cluster).run_pass()
    assert [names(tiny, d, "o") for d in (p1, p2, p3)] == [[ts(3).internal + ".ts"]] * 3


async def test_old_tombstones_are_reclaimed(tiny: Tiny) -> None:
    part, primaries, _h = tiny.object_part("o")
    await tiny.put("o", b"x", ts(-7200), primaries)
    for device in primaries:
        await tiny.node.delete_object(device, part, "a", "c", "o", policy=0, timestamp=ts(-3600))
    await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == set(primaries)  # a week's reclaim age: the tombstones stay
    tiny.node.diskfiles.reclaim_age = 60
    await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == set()
    assert await tiny.node.list_partitions(primaries[0], "objects") == [part]  # dir stays


async def test_a_handoff_hands_off_then_removes_its_copy(tiny: Tiny) -> None:
    part, primaries, handoffs = tiny.object_part("o")
    await tiny.put("o", b"data", ts(), [*primaries[:2], handoffs[0]])  # primary 3 was down
    tiny.unreachable.add(primaries[2])
    first = await Replicator(tiny.cluster).run_pass()
    assert handoffs[0] in tiny.holders("o")  # kept: a primary is still missing it
    assert first.total().removed == 0 and first.total().failures >= 1
    tiny.unreachable.clear()
    second = await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == set(primaries)
    assert second.total().removed == 1
    assert not (tiny.devices_root / handoffs[0] / "objects" / str(part)).exists()


async def test_an_unavailable_primary_is_stood_in_for(tiny: Tiny) -> None:
    _part, primaries, handoffs = tiny.object_part("o")
    await tiny.put("o", b"data", ts(), primaries[:2])
    undo = tiny.down(primaries[2])  # 507
    await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == {*primaries[:2], handoffs[0]}  # three replicas anyway
    undo()
    await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == set(primaries)


async def test_a_rebalance_moves_partitions_to_their_new_primaries(tiny: Tiny) -> None:
    objects = {f"o{i}": bytes([i]) * (100 + i) for i in range(40)}
    for name, data in objects.items():
        await tiny.put(name, data, ts(), tiny.object_part(name)[1])
    before = {name: tiny.object_part(name)[1] for name in objects}
    tiny.add_device("d5", zone=5)
    tiny.rebalance()
    after = {name: tiny.object_part(name)[1] for name in objects}
    moved = [name for name in objects if set(before[name]) != set(after[name])]
    assert moved  # d5 took some partitions
    done = await Replicator(tiny.cluster).run_pass()
    for name in objects:
        assert tiny.holders(name) == set(after[name]), name
        (data_file,) = [f for f in tiny.files(after[name][0], name) if f.endswith(".data")]
        assert tiny.files(after[name][0], name)[data_file].startswith(objects[name])
    assert done.total().removed >= len(moved)


async def test_container_rows_metadata_and_deletes_replicate(tiny: Tiny) -> None:
    part, (p1, p2, p3), _h = tiny.container_part()
    ref = DatabaseRef("a", "c")
    for device in (p1, p2):
        await tiny.node.put_container(device, part, "a", "c", timestamp=ts())
    for i in range(5):
        await tiny.node.update_container_listing(
            p1, part, "a", "c", f"o{i}", timestamp=ts(i), size=i, content_type="t", etag="e"
        )
    await tiny.node.post_container(
        p2, part, "a", "c", timestamp=ts(9), metadata={"X-Container-Meta-K": "v"}
    )
    done = await Replicator(tiny.cluster).run_pass()
    for device in (p1, p2, p3):
        listing = await tiny.node.list_objects(device, part, "a", "c")
        assert [e.name for e in listing.entries] == [f"o{i}" for i in range(5)]
        assert listing.info.metadata == {"X-Container-Meta-K": "v"}
    assert done.total().rows_pushed >= 10  # p1's rows to p2 and p3
    quiet = await Replicator(tiny.cluster).run_pass()  # sync points: nothing to send
    assert quiet.total().rows_pushed == 0 and quiet.total().dbs_synced == 0
    for i in range(5):
        await tiny.node.update_container_listing(
            p3,
            part,
            "a",
            "c",
            f"o{i}",
            timestamp=ts(20),
            size=0,
            content_type="t",
            etag="e",
            deleted=True,
        )
    await tiny.node.delete_container(p3, part, "a", "c", timestamp=ts(21))
    await Replicator(tiny.cluster).run_pass()
    for device in (p1, p2, p3):
        with pytest.raises(ContainerNotFound):
            await tiny.node.head_container(device, part, "a", "c")
        state = await tiny.node.get_db_state(device, part, ref)
        assert state.status.delete_timestamp == ts(21)


async def test_a_handoff_database_is_merged_then_removed(tiny: Tiny) -> None:
    part, primaries, handoffs = tiny.container_part()
    for device in (*primaries[:2], handoffs[0]):
        await tiny.node.put_container(device, part, "a", "c", timestamp=ts())
    await tiny.node.update_container_listing(
        handoffs[0],
        part,
        "a",
        "c",
        "during-outage",
        timestamp=ts(1),
        size=1,
        content_type="t",
        etag="e",
    )
    done = await Replicator(tiny.cluster).run_pass()
    for device in primaries:
        listing = await tiny.node.list_objects(device, part, "a", "c")
        assert [e.name for e in listing.entries] == ["during-outage"]
    assert await tiny.node.list_databases(handoffs[0], part, "containers") == []
    assert done.total().removed == 1


async def test_deleted_databases_are_reclaimed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tiny = Tiny(tmp_path, reclaim_age=60)
    try:
        part, primaries, _h = tiny.container_part()
        for device in primaries:
            await tiny.node.put_container(device, part, "a", "c", timestamp=ts(-7200))
            await tiny.node.delete_container(device, part, "a", "c", timestamp=ts(-3600))
        done = await Replicator(tiny.cluster, reclaim_age=60).run_pass()
        assert done.total().reclaimed == 3
        for device in primaries:
            assert await tiny.node.list_databases(device, part, "containers") == []
    finally:
        await tiny.node.close()


async def test_stats_per_device(tiny: Tiny) -> None:
    _part, primaries, _h = tiny.object_part("o")
    await tiny.put("o", b"data", ts(), primaries[:1])
    replicator = Replicator(tiny.cluster, concurrency=2)
    done = await replicator.run_pass()
    assert replicator.stats.passes == 1 and replicator.stats.last is done
    assert set(done.devices) == {"d1", "d2", "d3", "d4"}
    assert done.devices[primaries[0]].objects_pushed == 2
    assert done.devices[primaries[0]].bytes_pushed == 8
    document = replicator.stats.as_dict()
    assert document["last"]["total"]["files_pushed"] == 2 and document["running"] is None
