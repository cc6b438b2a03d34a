"""Database replication at the broker level: status merging (pure), the rows' hash, sync
points, handoff removal and reclaim, and the upgrade of schema 1 databases."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from pocketstack.objectstore.storage.account_broker import AccountBroker
from pocketstack.objectstore.storage.container_broker import ContainerBroker
from pocketstack.objectstore.storage.db_base import ZERO_HASH, chexor, covers, merge_status
from pocketstack.objectstore.storage.types import (
    ContainerRecord,
    DatabaseStatus,
    ObjectRecord,
    StampedValue,
)
from pocketstack.objectstore.timestamp import Timestamp


def container(devices: Path, name: str) -> ContainerBroker:
    device = devices / "sda"
    path = device / "containers" / "0" / "abc" / name / f"{name}.db"
    return ContainerBroker(str(path), device_path=str(device), account="a", container="c",
                           fsync=False)  # fmt: skip


def row(name: str, when: int, deleted: bool = False) -> ObjectRecord:
    return ObjectRecord(name, Timestamp(when), 1, "t", "e", deleted)


def status(put: int, delete: int = 0, **fields: object) -> DatabaseStatus:
    return DatabaseStatus(Timestamp(1), Timestamp(put), Timestamp(delete), Timestamp(1),
                          **fields)  # type: ignore[arg-type]  # fmt: skip


def test_merge_status_keeps_the_newest_of_each_part() -> None:
    a = status(
        5,
        3,
        metadata={"K": StampedValue("a", Timestamp(5)), "L": StampedValue("", Timestamp(9))},
        storage_policy_index=1,
    )
    b = status(
        4,
        7,
        metadata={"K": StampedValue("b", Timestamp(6)), "L": StampedValue("l", Timestamp(8))},
        storage_policy_index=2,
    )
    ab, ba = merge_status(a, b), merge_status(b, a)
    assert ab == ba  # the same result whichever side merges (created_at aside: equal here)
    assert (ab.put_timestamp, ab.delete_timestamp) == (Timestamp(5), Timestamp(7))
    assert ab.metadata == {
        "K": StampedValue("b", Timestamp(6)),
        "L": StampedValue("", Timestamp(9)),
    }
    assert ab.storage_policy_index == 1  # travels with the newest put
    assert merge_status(ab, a) == ab and covers(ab, a) and covers(ab, b)
    assert not covers(a, b)
    assert merge_status(status(1), status(1, status_deleted=True)).status_deleted


def test_chexor_is_order_free_and_undoable() -> None:
    one = chexor(chexor(ZERO_HASH, "a", "1"), "b", "2")
    assert one == chexor(chexor(ZERO_HASH, "b", "2"), "a", "1")
    assert chexor(one, "b", "2") == chexor(ZERO_HASH, "a", "1")
    assert len(one) == 32 and one != ZERO_HASH


def test_equal_rows_give_equal_hashes_whatever_the_path(devices: Path) -> None:
    first, second = container(devices, "x"), container(devices, "y")
    for broker in (first, second):
        broker.initialize(Timestamp(1))
    first.merge_items([row("o1", 1), row("o2", 2)])
    first.merge_items([row("o1", 3, deleted=True)])
    second.merge_items([row("o1", 3, deleted=True), row("o2", 2)])
    second.merge_items([row("o1", 1)])  # older: loses, changes nothing
    a, b = first.replication_state(), second.replication_state()
    assert a.rows_hash == b.rows_hash != ZERO_HASH
    assert a.max_row != b.max_row  # row ids differ: the hash is what compares rows
    first.reclaim(Timestamp(4))  # the tombstone goes: so does its part of the hash
    assert first.replication_state().rows_hash != b.rows_hash


def test_merge_replica_records_sync_points_once_and_monotonic(devices: Path) -> None:
    source, target = container(devices, "x"), container(devices, "y")
    source.initialize(Timestamp(1))
    target.initialize(Timestamp(2))
    state = source.replication_state()
    merged = target.merge_replica(state.db_id, state.status, [row("o", 1)], 7)
    assert merged.sync_point == 7 and merged.status.put_timestamp == Timestamp(2)
    assert target.merge_replica(state.db_id, state.status, [], 3).sync_point == 7
    assert target.replication_state("someone else").sync_point == -1


def test_remove_and_reclaim(devices: Path) -> None:
    broker = container(devices, "x")
    broker.initialize(Timestamp(1))
    broker.merge_items([row("o", 1)])
    state = broker.replication_state()
    broker.merge_items([row("p", 2)])
    assert not broker.remove_if_unchanged(state)
    assert broker.remove_if_unchanged(broker.replication_state())
    assert not broker.exists()
    assert not (devices / "sda" / "containers" / "0").exists()  # emptied dirs go too
    broker.initialize(Timestamp(1))
    broker.merge_items([row("o", 2, deleted=True)])
    broker.delete_db(Timestamp(3))
    assert not broker.reclaim_replica(Timestamp(3))  # deleted at 3: not before 3
    assert broker.reclaim_replica(Timestamp(4)) and not broker.exists()


def test_an_account_deleted_with_containers_is_not_reclaimed(devices: Path) -> None:
    device = devices / "sda"
    path = device / "accounts" / "0" / "abc" / "h" / "h.db"
    broker = AccountBroker(str(path), device_path=str(device), account="a", fsync=False)
    broker.initialize(Timestamp(1))
    broker.merge_items([ContainerRecord("c", Timestamp(1), Timestamp(0), 1, 1)])
    broker.delete_db(Timestamp(2))
    assert not broker.reclaim_replica(Timestamp(10))  # the reaper's job first
    assert broker.get_info().status_deleted


def test_schema_1_databases_are_upgraded(devices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = container(devices, "old")
    with monkeypatch.context() as patch:  # build one as the previous version did
        patch.setattr(ContainerBroker, "_add_replication_schema", lambda self, conn: None)
        patch.setattr(ContainerBroker, "_upgrade_from_v1", lambda self, conn: None)
        patch.setattr("pocketstack.objectstore.storage.db_base.SCHEMA_VERSION", 1)
        old.initialize(Timestamp(1))
        old.merge_items([row("o1", 1), row("o2", 2, deleted=True)])
        old.close()
    with sqlite3.connect(old.db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    new = container(devices, "new")
    new.initialize(Timestamp(1))
    new.merge_items([row("o2", 2, deleted=True), row("o1", 1)])
    state = old.replication_state("peer")
    assert (state.sync_point, state.rows_hash) == (-1, new.replication_state().rows_hash)
    old.merge_items([row("o3", 3)])  # the triggers work from now on
    new.merge_items([row("o3", 3)])
    assert old.replication_state().rows_hash == new.replication_state().rows_hash
    with sqlite3.connect(old.db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)


def test_status_round_trips_through_merge(devices: Path) -> None:
    source, target = container(devices, "x"), container(devices, "y")
    source.initialize(Timestamp(5), storage_policy_index=3)
    source.update_metadata({"X-Container-Meta-A": ("1", Timestamp(6))})
    source.delete_db(Timestamp(7))
    state = source.replication_state()
    target.initialize(Timestamp(1))
    merged = target.merge_replica(state.db_id, state.status, [], 0)
    assert (
        dataclasses.replace(
            merged.status,
            created_at=state.status.created_at,
            status_changed_at=state.status.status_changed_at,
        )
        == state.status
    )
    assert target.is_deleted()
