"""Group commit of container listing updates (storage/listing_batches.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage.exceptions import DatabaseError
from pocketstack.objectstore.storage.listing_batches import Key, ListingBatches
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.types import ObjectRecord
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
KEY: Key = ("sda", 1, "a", "c")


def row(name: str) -> ObjectRecord:
    return ObjectRecord(name, Timestamp.now(), 1, "text/plain", "etag", False, 0)


class Gate:
    """A `run` that holds every call until opened, then runs it in a thread."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()

    async def __call__(self, call: Callable[[], Any]) -> Any:
        await self.opened.wait()
        return await asyncio.to_thread(call)


async def test_updates_that_arrive_while_one_waits_share_its_transaction() -> None:
    applied: list[tuple[Key, list[str]]] = []
    gate = Gate()
    batches = ListingBatches(gate, lambda key, rows: applied.append(
        (key, [r.name for r in rows])))
    first = [asyncio.create_task(batches.update(KEY, row(f"o{i}"))) for i in range(5)]
    other = asyncio.create_task(batches.update(("sdb", 1, "a", "c"), row("x")))
    await asyncio.sleep(0)
    gate.opened.set()
    await asyncio.gather(*first, other)
    assert sorted(applied) == [(KEY, [f"o{i}" for i in range(5)]), (("sdb", 1, "a", "c"), ["x"])]
    await batches.update(KEY, row("later"))  # a taken batch is closed: a new one
    assert applied[-1] == (KEY, ["later"])


async def test_one_bad_row_fails_only_its_own_caller() -> None:
    applied: list[str] = []

    def apply(key: Key, rows: list[ObjectRecord]) -> None:
        if any(r.name == "bad" for r in rows):
            raise DatabaseError("bad row")
        applied.extend(r.name for r in rows)

    gate = Gate()
    batches = ListingBatches(gate, apply)
    names = ["a", "bad", "b"]
    tasks = [asyncio.create_task(batches.update(KEY, row(n))) for n in names]
    await asyncio.sleep(0)
    gate.opened.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], DatabaseError)
    assert sorted(applied) == ["a", "b"]


async def test_a_failure_of_the_database_reaches_every_caller() -> None:
    def apply(key: Key, rows: list[ObjectRecord]) -> None:
        raise DatabaseError("no such database")

    gate = Gate()
    batches = ListingBatches(gate, apply)
    tasks = [asyncio.create_task(batches.update(KEY, row(f"o{i}"))) for i in range(3)]
    await asyncio.sleep(0)
    gate.opened.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, DatabaseError) for o in outcomes)
    assert len({id(o) for o in outcomes}) == 3  # each its own exception object


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    applied: list[str] = []
    gate = Gate()
    batches = ListingBatches(gate, lambda key, rows: applied.extend(r.name for r in rows))
    impatient = asyncio.create_task(batches.update(KEY, row("gone")))
    patient = asyncio.create_task(batches.update(KEY, row("kept")))
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.sleep(0)
    gate.opened.set()
    await patient
    assert sorted(applied) == ["gone", "kept"]  # the row was in the batch: it is written
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_batch_cancelled_before_its_thread_takes_no_more_rows() -> None:
    applied: list[str] = []
    gate = Gate()
    batches = ListingBatches(gate, lambda key, rows: applied.extend(r.name for r in rows))
    first = asyncio.create_task(batches.update(KEY, row("lost")))
    await asyncio.sleep(0)
    batch = batches._open[KEY]
    assert batch.done is not None
    batch.done.cancel()  # as when its loop stops: its rows are never written
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.opened.set()
    await batches.update(KEY, row("next"))  # a new batch, not the cancelled one
    assert applied == ["next"] and KEY not in batches._open


async def test_concurrent_updates_through_a_local_node_all_reach_the_listing(
    devices: Path, hasher: PathHasher
) -> None:
    node = LocalNode(devices, hasher=hasher, fsync=False)
    merges: list[int] = []
    real = node.databases.update_container_listing

    def counting(broker: Any, records: list[ObjectRecord]) -> None:
        merges.append(len(records))
        real(broker, records)

    node.databases.update_container_listing = counting  # type: ignore[method-assign]
    try:
        await node.put_container("sda", 1, "a", "c", timestamp=Timestamp.now())
        await asyncio.gather(*(node.update_container_listing(
            "sda", 1, "a", "c", f"o{i:03d}", timestamp=Timestamp.now(), size=i,
            content_type="text/plain", etag="e") for i in range(100)))
        info = await node.head_container("sda", 1, "a", "c")
        listing = await node.list_objects("sda", 1, "a", "c")
    finally:
        await node.close()
    assert (info.object_count, info.bytes_used) == (100, sum(range(100)))
    assert [o.name for o in listing.entries] == [f"o{i:03d}" for i in range(100)]
    assert sum(merges) == 100 and len(merges) < 100  # some rows shared a transaction
