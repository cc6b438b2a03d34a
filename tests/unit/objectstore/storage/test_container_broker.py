"""ContainerBroker: creation, newest-wins rows, usage, metadata, deletion, replication."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from pocketstack.objectstore.storage.container_broker import ContainerBroker
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    ContainerNotFound,
    DatabaseQuarantined,
    LockTimeout,
)
from pocketstack.objectstore.storage.types import ListedObject, ListingQuery, ObjectRecord, Subdir
from pocketstack.objectstore.timestamp import Timestamp


def make(devices: Path, name: str = "c", **options: object) -> ContainerBroker:
    device = devices / "sda"
    path = device / "containers" / "0" / "abc" / f"{name}abc" / f"{name}abc.db"
    return ContainerBroker(
        str(path),
        device_path=str(device),
        account="a",
        container=name,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def broker(devices: Path) -> ContainerBroker:
    broker = make(devices, fsync=False)
    assert broker.initialize(Timestamp(1), storage_policy_index=2)
    return broker


def test_initialize_is_atomic_and_once(devices: Path) -> None:
    broker = make(devices)
    assert not broker.exists()
    with pytest.raises(ContainerNotFound):
        broker.get_info()
    assert not os.path.exists(broker.db_path)  # a failed open never creates a file
    assert broker.initialize(Timestamp(1))
    assert not make(devices).initialize(Timestamp(2))
    assert broker.get_info().put_timestamp == Timestamp(1)
    assert os.listdir(devices / "sda" / "tmp") == []
    broker.close()  # the last close checkpoints and removes -wal and -shm
    assert os.listdir(os.path.dirname(broker.db_path)) == [os.path.basename(broker.db_path)]


def test_info_of_a_new_container(broker: ContainerBroker) -> None:
    info = broker.get_info()
    assert (info.account, info.container) == ("a", "c")
    assert info.put_timestamp == Timestamp(1)
    assert info.delete_timestamp == Timestamp(0)
    assert info.storage_policy_index == 2
    assert (info.object_count, info.bytes_used) == (0, 0)
    assert not info.deleted and info.metadata == {} and info.db_id
    assert info.needs_report


def test_rows_newest_timestamp_wins(broker: ContainerBroker) -> None:
    assert broker.put_object("o", Timestamp(5), 10, "text/plain", "e1")
    assert not broker.put_object("o", Timestamp(4), 99, "text/plain", "old")
    assert not broker.put_object("o", Timestamp(5), 99, "text/plain", "same")
    (row,) = broker.list_objects_iter()
    assert row == ListedObject("o", Timestamp(5).internal, 10, "text/plain", "e1")
    assert row.timestamp == Timestamp(5) and row.last_modified == Timestamp(5).isoformat
    ((_rowid, stored),) = broker.get_items_since(0, 10)
    assert stored == ObjectRecord("o", Timestamp(5), 10, "text/plain", "e1", False, 2)
    assert broker.put_object("o", Timestamp(6), 20, "image/png", "e2", storage_policy_index=0)
    (row,) = broker.list_objects_iter()
    assert isinstance(row, ListedObject) and (row.size, row.etag) == (20, "e2")
    ((_rowid, stored),) = broker.get_items_since(0, 10)
    assert stored.storage_policy_index == 0


def test_usage_follows_rows(broker: ContainerBroker) -> None:
    broker.put_object("a", Timestamp(2), 10, "t", "e")
    broker.put_object("b", Timestamp(2), 5, "t", "e")
    broker.put_object("a", Timestamp(3), 7, "t", "e")
    info = broker.get_info()
    assert (info.object_count, info.bytes_used) == (2, 12)
    assert broker.delete_object("a", Timestamp(4))
    assert not broker.delete_object("a", Timestamp(4))
    info = broker.get_info()
    assert (info.object_count, info.bytes_used) == (1, 5)
    assert not broker.empty()
    broker.delete_object("b", Timestamp(4))
    assert broker.empty()


def test_tombstones_stay_for_replication_until_reclaimed(broker: ContainerBroker) -> None:
    broker.put_object("o", Timestamp(2), 1, "t", "e")
    broker.delete_object("o", Timestamp(3))
    assert broker.list_objects_iter() == []
    ((_rowid, row),) = broker.get_items_since(0, 10)
    assert row.deleted and row.created_at == Timestamp(3)
    assert not broker.put_object("o", Timestamp(2, offset=1), 1, "t", "e")  # older: stays deleted
    assert broker.reclaim(Timestamp(3)) == 0
    assert broker.reclaim(Timestamp(4)) == 1
    assert broker.get_items_since(0, 10) == []


def test_replication_pair(broker: ContainerBroker, devices: Path) -> None:
    other = make(devices, "d", fsync=False)
    other.initialize(Timestamp(1))
    for index, name in enumerate(["x", "y", "z"]):
        broker.put_object(name, Timestamp(10 + index), index, "t", "e")
    broker.delete_object("y", Timestamp(20))
    other.put_object("z", Timestamp(30), 99, "t", "newer")
    point = 0
    while batch := broker.get_items_since(point, 2):
        other.merge_items(row for _rowid, row in batch)
        point = batch[-1][0]
    assert point == broker.max_row()
    names = {r.name: r for r in other.list_objects_iter() if isinstance(r, ListedObject)}
    assert sorted(names) == ["x", "z"] and names["z"].etag == "newer"
    assert other.get_info().object_count == 2
    before = broker.max_row()
    broker.put_object("x", Timestamp(40), 1, "t", "e")
    assert [row.name for _, row in broker.get_items_since(before, 10)] == ["x"]
    assert broker.max_row() > before  # a changed row gets a new ROWID


def test_metadata_newest_wins_per_key(broker: ContainerBroker) -> None:
    broker.update_metadata(
        {"X-Container-Meta-A": ("1", Timestamp(5)), "X-Container-Meta-B": ("2", Timestamp(5))}
    )
    broker.update_metadata(
        {"X-Container-Meta-A": ("old", Timestamp(4)), "X-Container-Meta-B": ("new", Timestamp(6))}
    )
    assert broker.metadata == {"X-Container-Meta-A": "1", "X-Container-Meta-B": "new"}
    broker.update_metadata({"X-Container-Meta-A": ("", Timestamp(7))})
    assert broker.metadata == {"X-Container-Meta-B": "new"}
    assert broker.raw_metadata["X-Container-Meta-A"] == ("", Timestamp(7))
    broker.update_metadata({"X-Container-Meta-A": ("back", Timestamp(6))})
    assert "X-Container-Meta-A" not in broker.get_info().metadata
    broker.reclaim(Timestamp(8))
    assert "X-Container-Meta-A" not in broker.raw_metadata
    broker.update_metadata({})


def test_delete_and_revive(broker: ContainerBroker) -> None:
    broker.update_metadata({"X-Container-Meta-A": ("1", Timestamp(1))})
    broker.delete_db(Timestamp(5))
    info = broker.get_info()
    assert info.deleted and broker.is_deleted()
    assert info.delete_timestamp == Timestamp(5) and info.metadata == {}
    assert info.status_changed_at > Timestamp(5)
    broker.update_put_timestamp(Timestamp(4))
    assert broker.is_deleted()
    broker.update_put_timestamp(Timestamp(6))
    assert not broker.is_deleted()
    broker.delete_db(Timestamp(7))
    broker.put_object("o", Timestamp(8), 1, "t", "e")  # a late object keeps it alive
    assert not broker.is_deleted()


def test_reported(broker: ContainerBroker) -> None:
    broker.put_object("o", Timestamp(2), 3, "t", "e")
    broker.reported(Timestamp(1), Timestamp(0), 1, 3)
    info = broker.get_info()
    assert not info.needs_report
    assert (info.reported_object_count, info.reported_bytes_used) == (1, 3)
    broker.put_object("p", Timestamp(2), 3, "t", "e")
    assert broker.get_info().needs_report


def test_storage_policy_change(broker: ContainerBroker) -> None:
    broker.set_storage_policy_index(5)
    assert broker.get_info().storage_policy_index == 5
    broker.put_object("o", Timestamp(2), 3, "t", "e")
    ((_rowid, row),) = broker.get_items_since(0, 10)
    assert row.storage_policy_index == 5


def test_listing_with_info_in_one_snapshot(broker: ContainerBroker) -> None:
    for name in ["a/1", "a/2", "b", "é"]:
        broker.put_object(name, Timestamp(2), 1, "t", "e")
    listing = broker.listing(ListingQuery(delimiter="/"))
    assert listing.info.object_count == 4
    assert listing.entries == (
        Subdir("a/"),
        ListedObject("b", Timestamp(2).internal, 1, "t", "e"),
        ListedObject("é", Timestamp(2).internal, 1, "t", "e"),
    )


def test_odd_names_are_data(broker: ContainerBroker) -> None:
    names = ["'; DROP TABLE object; --", "nul\x00in", "x" * 1024, "😀", "%", "_"]
    for name in names:
        broker.put_object(name, Timestamp(2), 1, "t", "e")
    listed = [r.name for r in broker.list_objects_iter()]
    assert listed == sorted(names, key=lambda n: n.encode())
    assert [r.name for r in broker.list_objects_iter(prefix="%")] == ["%"]
    assert [r.name for r in broker.list_objects_iter(prefix="_")] == ["_"]


def test_invalid_unicode_is_a_bad_request(broker: ContainerBroker) -> None:
    with pytest.raises(BadRequest):
        broker.put_object("\udcff", Timestamp(2), 1, "t", "e")
    with pytest.raises(BadRequest):
        broker.list_objects_iter(prefix="\ud800")


def test_corrupt_database_is_quarantined(broker: ContainerBroker, devices: Path) -> None:
    broker.close()
    with open(broker.db_path, "r+b") as handle:
        handle.write(b"garbage" * 20)
    with pytest.raises(DatabaseQuarantined) as caught:
        broker.get_info()
    assert caught.value.status == 500
    quarantined = devices / "sda" / "quarantined" / "containers"
    assert len(os.listdir(quarantined)) == 1
    with pytest.raises(ContainerNotFound):
        broker.get_info()


def test_schema_version_is_checked(broker: ContainerBroker) -> None:
    broker.close()
    conn = sqlite3.connect(broker.db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(DatabaseQuarantined):
        broker.get_info()


def test_lock_timeout(broker: ContainerBroker, devices: Path) -> None:
    slow = make(devices, fsync=False, timeout=0.05)
    blocker = sqlite3.connect(broker.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LockTimeout) as caught:
            slow.put_object("o", Timestamp(2), 1, "t", "e")
        assert caught.value.status == 503
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    slow.put_object("o", Timestamp(2), 1, "t", "e")
    assert broker.get_info().object_count == 1


@pytest.mark.parametrize("synchronous", ["OFF", "NORMAL", "FULL", "normal"])
def test_synchronous_modes(devices: Path, synchronous: str) -> None:
    broker = make(devices, synchronous=synchronous)
    broker.initialize(Timestamp(1))
    broker.put_object("o", Timestamp(2), 1, "t", "e")
    level = {"OFF": 0, "NORMAL": 1, "FULL": 2}[synchronous.upper()]
    conn = broker._connection()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError):
        make(devices, synchronous="SOMETIMES")
