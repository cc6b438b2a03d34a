"""An account's database: its container listing, usage totals and metadata (`db_base`).

Container rows hold each container's last reported state. Merging a report (as Swift's
account server does): the newest ``put_timestamp`` and the newest ``delete_timestamp``
are kept separately; the usage (object_count, bytes_used) and policy of the report
replace the row's (a container reports its current usage whenever it changes); the row
is a tombstone (``deleted``) when ``delete_timestamp > put_timestamp`` and it holds no
object. A report that changes nothing is not rewritten (no replication churn).

Totals (container_count, object_count, bytes_used) and per-policy totals (``policy_stat``,
for the ``X-Account-Storage-Policy-<name>-*`` headers) count non-deleted rows and are
maintained in the same transaction as each row change.

An account is deleted when a DELETE marked its status (``status_deleted``: the reaper
will empty it; a PUT is then refused), or when ``delete_timestamp > put_timestamp`` and it
has no container.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from pocketstack.objectstore.storage.db_base import DatabaseBroker, live_metadata
from pocketstack.objectstore.storage.exceptions import AccountNotFound
from pocketstack.objectstore.storage.listing import Bound, bounds_sql, list_entries
from pocketstack.objectstore.storage.types import (
    DEFAULT_LISTING_LIMIT,
    AccountInfo,
    AccountListing,
    ContainerRecord,
    DatabaseRef,
    DatabaseStatus,
    ListingQuery,
    PolicyStats,
    Subdir,
)
from pocketstack.objectstore.timestamp import Timestamp

DELETED_STATUS: Final = "DELETED"
_ZERO: Final = Timestamp(0).internal
_CONTAINER_COLUMNS: Final = (
    "name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, storage_policy_index"
)
_INFO_COLUMNS: Final = (
    "account, created_at, put_timestamp, delete_timestamp, status_changed_at, status, "
    "container_count, object_count, bytes_used, id"
)
_SCHEMA: Final = """
CREATE TABLE container (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    put_timestamp TEXT NOT NULL,
    delete_timestamp TEXT NOT NULL,
    object_count INTEGER NOT NULL,
    bytes_used INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    storage_policy_index INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_container_deleted_name ON container (deleted, name);
CREATE TABLE account_stat (
    account TEXT NOT NULL,
    created_at TEXT NOT NULL,
    put_timestamp TEXT NOT NULL,
    delete_timestamp TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    status_changed_at TEXT NOT NULL,
    container_count INTEGER NOT NULL DEFAULT 0,
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0,
    id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT ''
);
CREATE TABLE policy_stat (
    storage_policy_index INTEGER PRIMARY KEY,
    container_count INTEGER NOT NULL DEFAULT 0,
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0
);
"""


class AccountBroker(DatabaseBroker):
    """One account database (``accounts/<part>/<suffix>/<hash>/<hash>.db``)."""

    stat_table = "account_stat"
    kind_dir = "accounts"
    not_found = AccountNotFound
    row_table = "container"
    count_column = "container_count"
    row_version = (
        "{row}put_timestamp || '-' || {row}delete_timestamp || '-' || {row}object_count || '-' "
        "|| {row}bytes_used"
    )

    def initialize(self, put_timestamp: Timestamp) -> bool:
        """Create the database atomically; False if it already existed."""
        return self._create(put_timestamp)

    def _create_schema(
        self, conn: sqlite3.Connection, put_timestamp: Timestamp, **fields: object
    ) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO account_stat (account, created_at, put_timestamp, delete_timestamp, "
            "status_changed_at, id) VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.account,
                Timestamp.now().internal,
                put_timestamp.internal,
                _ZERO,
                put_timestamp.internal,
                str(uuid.uuid4()),
            ),
        )

    # -- status ----------------------------------------------------------------------

    def _is_deleted(self, conn: sqlite3.Connection) -> bool:
        status, count, put_ts, delete_ts = self._stat(
            conn, "status", "container_count", "put_timestamp", "delete_timestamp"
        )
        if status == DELETED_STATUS:
            return True
        return count == 0 and Timestamp(delete_ts) > Timestamp(put_ts)

    def is_status_deleted(self) -> bool:
        """True once DELETE has marked the account (it stays so until reaped)."""
        with self._read() as conn:
            (status,) = self._stat(conn, "status")
            return bool(status == DELETED_STATUS)

    def empty(self) -> bool:
        with self._read() as conn:
            (count,) = self._stat(conn, "container_count")
            return bool(count == 0)

    def get_info(self) -> AccountInfo:
        with self._read() as conn:
            return self._info(conn)

    def _info(self, conn: sqlite3.Connection) -> AccountInfo:
        row = self._stat(conn, *_INFO_COLUMNS.split(", "))
        return AccountInfo(
            account=row[0],
            created_at=Timestamp(row[1]),
            put_timestamp=Timestamp(row[2]),
            delete_timestamp=Timestamp(row[3]),
            status_changed_at=Timestamp(row[4]),
            status_deleted=row[5] == DELETED_STATUS,
            container_count=row[6],
            object_count=row[7],
            bytes_used=row[8],
            db_id=row[9],
            deleted=self._is_deleted(conn),
            metadata=live_metadata(self._load_metadata(conn)),
            policy_stats=self._policy_stats(conn),
        )

    def _policy_stats(self, conn: sqlite3.Connection) -> dict[int, PolicyStats]:
        rows = conn.execute(
            "SELECT storage_policy_index, container_count, object_count, bytes_used "
            "FROM policy_stat ORDER BY storage_policy_index"
        )
        return {row[0]: PolicyStats(row[1], row[2], row[3]) for row in rows}

    def get_policy_stats(self) -> dict[int, PolicyStats]:
        with self._read() as conn:
            return self._policy_stats(conn)

    def delete_db(self, timestamp: Timestamp) -> None:
        """Mark the account deleted (status DELETED) at ``timestamp``; metadata cleared."""
        with self._write() as conn, self._tracking_status(conn):
            conn.execute(
                "UPDATE account_stat SET status = ?, delete_timestamp = MAX(delete_timestamp, ?)",
                (DELETED_STATUS, timestamp.internal),
            )
            self._clear_metadata(conn, timestamp)

    # -- container rows ----------------------------------------------------------------

    def put_container(
        self,
        name: str,
        put_timestamp: Timestamp,
        delete_timestamp: Timestamp,
        object_count: int,
        bytes_used: int,
        storage_policy_index: int = 0,
    ) -> bool:
        """Record a container's report; True if it changed the row."""
        record = ContainerRecord(
            name,
            put_timestamp,
            delete_timestamp,
            object_count,
            bytes_used,
            False,
            storage_policy_index,
        )
        return self.merge_items([record]) == 1

    def merge_items(self, records: Iterable[ContainerRecord]) -> int:
        """Apply container rows (reports or a replica's rows); returns how many changed.

        A row's ``deleted`` flag is recomputed from its merged timestamps and count.
        """
        with self._write() as conn, self._tracking_status(conn):
            return self._merge_rows(conn, records)

    def _merge_rows(self, conn: sqlite3.Connection, rows: Iterable[ContainerRecord]) -> int:
        totals: dict[int, list[int]] = {}
        applied = 0
        for record in rows:
            if _merge_container(conn, record, totals):
                applied += 1
        _apply_totals(conn, totals)
        return applied

    # -- replication -------------------------------------------------------------------

    def _ref(self, conn: sqlite3.Connection) -> DatabaseRef:
        (account,) = self._stat(conn, "account")
        return DatabaseRef(str(account))

    def _status(self, conn: sqlite3.Connection) -> DatabaseStatus:
        row = self._stat(
            conn, "created_at", "put_timestamp", "delete_timestamp", "status_changed_at",
            "status",
        )  # fmt: skip
        return DatabaseStatus(
            *(Timestamp(str(value)) for value in row[:4]),
            metadata=self._stamped_metadata(conn),
            status_deleted=row[4] == DELETED_STATUS,
        )

    def _store_status(self, conn: sqlite3.Connection, status: DatabaseStatus) -> None:
        conn.execute(
            "UPDATE account_stat SET put_timestamp = ?, delete_timestamp = ?, status = ?",
            (
                status.put_timestamp.internal,
                status.delete_timestamp.internal,
                DELETED_STATUS if status.status_deleted else "",
            ),
        )

    def get_items_since(self, rowid: int, count: int) -> list[tuple[int, ContainerRecord]]:
        """Rows (tombstones included) changed after sync point ``rowid``, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT ROWID, {_CONTAINER_COLUMNS} FROM container WHERE ROWID > ? "
                "ORDER BY ROWID LIMIT ?",
                (rowid, count),
            ).fetchall()
        return [(row[0], _container_record(row[1:])) for row in rows]

    def max_row(self) -> int:
        with self._read() as conn:
            (value,) = conn.execute("SELECT COALESCE(MAX(ROWID), 0) FROM container").fetchone()
            return int(value)

    def reclaim(self, before: Timestamp) -> int:
        """Drop container tombstones and removed metadata older than ``before``."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM container WHERE deleted = 1 AND delete_timestamp < ?",
                (before.internal,),
            )
            self._reclaim_metadata(conn, before)
            return cursor.rowcount

    # -- listing -----------------------------------------------------------------------

    def list_containers_iter(
        self,
        limit: int = DEFAULT_LISTING_LIMIT,
        marker: str = "",
        end_marker: str = "",
        prefix: str | None = None,
        delimiter: str | None = None,
        reverse: bool = False,
        path: str | None = None,
    ) -> list[ContainerRecord | Subdir]:
        """One page of the listing (Swift semantics: see `listing`)."""
        query = ListingQuery(limit, marker, end_marker, prefix, delimiter, path, reverse)
        with self._read() as conn:
            return list_entries(_fetcher(conn), query)

    def listing(self, query: ListingQuery) -> AccountListing:
        """Info and one page of entries, from one consistent snapshot."""
        with self._read() as conn:
            info = self._info(conn)
            entries = list_entries(_fetcher(conn), query)
        return AccountListing(info, tuple(entries))


def _merge_container(
    conn: sqlite3.Connection, record: ContainerRecord, totals: dict[int, list[int]]
) -> bool:
    """Merge one report into its row, accumulating total deltas; False if nothing changed."""
    row = conn.execute(
        f"SELECT ROWID, {_CONTAINER_COLUMNS} FROM container WHERE name = ?", (record.name,)
    ).fetchone()
    old = _container_record(row[1:]) if row is not None else None
    put_ts, delete_ts = record.put_timestamp, record.delete_timestamp
    if old is not None:
        put_ts = max(old.put_timestamp, put_ts)
        delete_ts = max(old.delete_timestamp, delete_ts)
    merged = ContainerRecord(
        record.name,
        put_ts,
        delete_ts,
        record.object_count,
        record.bytes_used,
        delete_ts > put_ts and record.object_count == 0,
        record.storage_policy_index,
    )
    if old is not None:
        if merged == old:
            return False
        conn.execute("DELETE FROM container WHERE ROWID = ?", (row[0],))
        _add_totals(totals, old, -1)
    conn.execute(
        f"INSERT INTO container ({_CONTAINER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            merged.name,
            merged.put_timestamp.internal,
            merged.delete_timestamp.internal,
            merged.object_count,
            merged.bytes_used,
            int(merged.deleted),
            merged.storage_policy_index,
        ),
    )
    _add_totals(totals, merged, 1)
    return True


def _add_totals(totals: dict[int, list[int]], record: ContainerRecord, sign: int) -> None:
    if record.deleted:
        return
    entry = totals.setdefault(record.storage_policy_index, [0, 0, 0])
    entry[0] += sign
    entry[1] += sign * record.object_count
    entry[2] += sign * record.bytes_used


def _apply_totals(conn: sqlite3.Connection, totals: dict[int, list[int]]) -> None:
    for policy, (containers, objects, used) in totals.items():
        if not (containers or objects or used):
            continue
        conn.execute(
            "UPDATE account_stat SET container_count = container_count + ?, "
            "object_count = object_count + ?, bytes_used = bytes_used + ?",
            (containers, objects, used),
        )
        conn.execute(
            "INSERT INTO policy_stat (storage_policy_index, container_count, object_count, "
            "bytes_used) VALUES (?, ?, ?, ?) ON CONFLICT (storage_policy_index) DO UPDATE SET "
            "container_count = container_count + excluded.container_count, "
            "object_count = object_count + excluded.object_count, "
            "bytes_used = bytes_used + excluded.bytes_used",
            (policy, containers, objects, used),
        )


def _container_record(row: Sequence[Any]) -> ContainerRecord:
    name, put_ts, delete_ts, objects, used, deleted, policy = row
    return ContainerRecord(
        name, Timestamp(put_ts), Timestamp(delete_ts), objects, used, bool(deleted), policy
    )


def _fetcher(
    conn: sqlite3.Connection,
) -> Callable[[Bound, Bound, bool, int], list[ContainerRecord]]:
    def fetch(lower: Bound, upper: Bound, reverse: bool, limit: int) -> list[ContainerRecord]:
        clauses, params = bounds_sql(lower, upper)
        where = " AND ".join(["deleted = 0", *clauses])
        order = "DESC" if reverse else "ASC"
        rows = conn.execute(
            f"SELECT {_CONTAINER_COLUMNS} FROM container WHERE {where} "
            f"ORDER BY name {order} LIMIT ?",
            (*params, limit),
        )
        return [_container_record(row) for row in rows]

    return fetch
