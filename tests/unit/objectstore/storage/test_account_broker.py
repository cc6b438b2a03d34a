"""AccountBroker: container reports, totals per account and per policy, status, listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocketstack.objectstore.storage.account_broker import AccountBroker
from pocketstack.objectstore.storage.exceptions import AccountNotFound
from pocketstack.objectstore.storage.types import (
    ContainerRecord,
    ListingQuery,
    PolicyStats,
    Subdir,
)
from pocketstack.objectstore.timestamp import Timestamp

ZERO = Timestamp(0)


def make(devices: Path, name: str = "a") -> AccountBroker:
    device = devices / "sda"
    path = device / "accounts" / "0" / "abc" / f"{name}abc" / f"{name}abc.db"
    return AccountBroker(str(path), device_path=str(device), account=name, fsync=False)


@pytest.fixture
def broker(devices: Path) -> AccountBroker:
    broker = make(devices)
    assert broker.initialize(Timestamp(1))
    return broker


def totals(broker: AccountBroker) -> tuple[int, int, int]:
    info = broker.get_info()
    return info.container_count, info.object_count, info.bytes_used


def test_missing_account(devices: Path) -> None:
    with pytest.raises(AccountNotFound):
        make(devices).get_info()


def test_reports_replace_usage_and_keep_newest_timestamps(broker: AccountBroker) -> None:
    assert broker.put_container("c", Timestamp(2), ZERO, 5, 100)
    assert broker.put_container("c", Timestamp(1), ZERO, 7, 140)  # usage replaces
    assert not broker.put_container("c", Timestamp(1), ZERO, 7, 140)  # nothing changed
    (row,) = broker.list_containers_iter()
    assert row == ContainerRecord("c", Timestamp(2), ZERO, 7, 140, False, 0)
    assert totals(broker) == (1, 7, 140)


def test_deleted_containers_leave_the_totals(broker: AccountBroker) -> None:
    broker.put_container("c", Timestamp(2), ZERO, 1, 10)
    broker.put_container("d", Timestamp(2), ZERO, 2, 20)
    broker.put_container("c", Timestamp(2), Timestamp(3), 0, 0)
    assert totals(broker) == (1, 2, 20)
    assert [r.name for r in broker.list_containers_iter()] == ["d"]
    ((_rowid, tombstone),) = [(i, r) for i, r in broker.get_items_since(0, 10) if r.name == "c"]
    assert tombstone.deleted
    broker.put_container("c", Timestamp(1), ZERO, 0, 0)  # older PUT: stays deleted
    assert totals(broker) == (1, 2, 20)
    broker.put_container("c", Timestamp(4), ZERO, 0, 0)  # recreated
    assert totals(broker) == (2, 2, 20)
    assert broker.reclaim(Timestamp(10)) == 0
    broker.put_container("d", Timestamp(2), Timestamp(5), 0, 0)
    assert broker.reclaim(Timestamp(10)) == 1


def test_a_deleted_container_still_holding_objects_counts(broker: AccountBroker) -> None:
    broker.put_container("c", Timestamp(2), Timestamp(3), 4, 40)
    assert totals(broker) == (1, 4, 40)


def test_per_policy_totals(broker: AccountBroker) -> None:
    broker.put_container("gold", Timestamp(2), ZERO, 1, 10, storage_policy_index=1)
    broker.put_container("silver", Timestamp(2), ZERO, 2, 20, storage_policy_index=2)
    broker.put_container("bronze", Timestamp(2), ZERO, 3, 30, storage_policy_index=2)
    assert broker.get_policy_stats() == {1: PolicyStats(1, 1, 10), 2: PolicyStats(2, 5, 50)}
    broker.put_container("gold", Timestamp(2), ZERO, 1, 10, storage_policy_index=2)  # moved
    assert broker.get_info().policy_stats == {
        1: PolicyStats(0, 0, 0),
        2: PolicyStats(3, 6, 60),
    }
    assert totals(broker) == (3, 6, 60)


def test_replication_pair(broker: AccountBroker, devices: Path) -> None:
    other = make(devices, "b")
    other.initialize(Timestamp(1))
    broker.put_container("c", Timestamp(2), ZERO, 1, 10)
    broker.put_container("d", Timestamp(2), Timestamp(3), 0, 0)
    other.put_container("c", Timestamp(5), ZERO, 9, 90)
    rows = [row for _rowid, row in broker.get_items_since(0, 100)]
    assert other.merge_items(rows) == 2
    (row,) = other.list_containers_iter()
    assert isinstance(row, ContainerRecord)
    assert row.put_timestamp == Timestamp(5)  # newest put_timestamp kept
    assert broker.max_row() == 2


def test_status_deleted(broker: AccountBroker) -> None:
    broker.put_container("c", Timestamp(2), ZERO, 1, 10)
    broker.update_metadata({"X-Account-Meta-A": ("1", Timestamp(2))})
    assert not broker.is_status_deleted()
    broker.delete_db(Timestamp(5))
    info = broker.get_info()
    assert info.status_deleted and info.deleted and broker.is_status_deleted()
    assert info.metadata == {} and info.delete_timestamp == Timestamp(5)
    broker.update_put_timestamp(Timestamp(9))
    assert broker.is_deleted()  # only the reaper ends a DELETED status


def test_deleted_by_timestamps_when_empty(broker: AccountBroker) -> None:
    assert broker.empty()
    with broker._write() as conn:
        conn.execute("UPDATE account_stat SET delete_timestamp = ?", (Timestamp(3).internal,))
    assert broker.is_deleted() and not broker.is_status_deleted()
    broker.update_put_timestamp(Timestamp(4))
    assert not broker.is_deleted()


def test_listing(broker: AccountBroker) -> None:
    for name in ["a-1", "a-2", "b", "c"]:
        broker.put_container(name, Timestamp(2), ZERO, 1, 1)
    listing = broker.listing(ListingQuery(delimiter="-", reverse=True))
    assert [e.name for e in listing.entries] == ["c", "b", "a-"]
    assert isinstance(listing.entries[-1], Subdir)
    assert listing.info.container_count == 4
    assert [r.name for r in broker.list_containers_iter(2, marker="a-1")] == ["a-2", "b"]
