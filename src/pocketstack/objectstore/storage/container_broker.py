"""A container's database: its object listing, usage and metadata (see `db_base`).

Object rows are merged newest-timestamp-wins on ``created_at`` (ties keep the stored row,
so replays are harmless); a DELETE is a row with ``deleted = 1`` that stays, for
replication, until `reclaim`. Simplification (documented): Swift also merges a POST's
content-type and metadata timestamps separately into a row; here a row is replaced whole
by a newer one.

Usage (object_count, bytes_used) counts non-deleted rows and is maintained in the same
transaction as each row change. Listing and usage cover all rows whatever their
``storage_policy_index`` (rows of another policy only appear while a policy conflict is
being reconciled, which pocketstack does not do yet).

A container is deleted when ``delete_timestamp > put_timestamp`` and it holds no object.
"""

from __future__ import annotations

import functools
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from pocketstack.objectstore.storage.db_base import DatabaseBroker, live_metadata
from pocketstack.objectstore.storage.exceptions import ContainerNotFound
from pocketstack.objectstore.storage.listing import (
    Bound,
    bounds_sql,
    initial_bounds,
    list_entries,
)
from pocketstack.objectstore.storage.listing_json import render_page
from pocketstack.objectstore.storage.types import (
    DEFAULT_LISTING_LIMIT,
    ContainerInfo,
    ContainerListing,
    DatabaseRef,
    DatabaseStatus,
    ListedObject,
    ListingQuery,
    ObjectRecord,
    RenderedListing,
    Subdir,
)
from pocketstack.objectstore.timestamp import Timestamp

_ZERO: Final = Timestamp(0).internal
_OBJECT_COLUMNS: Final = "name, created_at, size, content_type, etag, deleted, storage_policy_index"
_LISTED_COLUMNS: Final = "name, created_at, size, content_type, etag"  # ListedObject's fields
_INFO_COLUMNS: Final = (
    "account, container, created_at, put_timestamp, delete_timestamp, status_changed_at, "
    "object_count, bytes_used, storage_policy_index, reported_put_timestamp, "
    "reported_delete_timestamp, reported_object_count, reported_bytes_used, id"
)
_SCHEMA: Final = """
CREATE TABLE object (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    etag TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    storage_policy_index INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_object_deleted_name ON object (deleted, name);
CREATE TABLE container_stat (
    account TEXT NOT NULL,
    container TEXT NOT NULL,
    created_at TEXT NOT NULL,
    put_timestamp TEXT NOT NULL,
    delete_timestamp TEXT NOT NULL,
    status_changed_at TEXT NOT NULL,
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0,
    storage_policy_index INTEGER NOT NULL,
    reported_put_timestamp TEXT NOT NULL,
    reported_delete_timestamp TEXT NOT NULL,
    reported_object_count INTEGER NOT NULL DEFAULT 0,
    reported_bytes_used INTEGER NOT NULL DEFAULT 0,
    id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT ''
);
"""
DELETED_CONTENT_TYPE: Final = "application/deleted"
DELETED_ETAG: Final = "noetag"


class ContainerBroker(DatabaseBroker):
    """One container database (``containers/<part>/<suffix>/<hash>/<hash>.db``)."""

    stat_table = "container_stat"
    kind_dir = "containers"
    not_found = ContainerNotFound
    row_table = "object"
    count_column = "object_count"
    row_version = "{row}created_at"

    def initialize(self, put_timestamp: Timestamp, storage_policy_index: int = 0) -> bool:
        """Create the database atomically; False if it already existed."""
        return self._create(put_timestamp, storage_policy_index=storage_policy_index)

    def _create_schema(
        self, conn: sqlite3.Connection, put_timestamp: Timestamp, **fields: object
    ) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        now = Timestamp.now().internal
        conn.execute(
            "INSERT INTO container_stat (account, container, created_at, put_timestamp, "
            "delete_timestamp, status_changed_at, storage_policy_index, "
            "reported_put_timestamp, reported_delete_timestamp, id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.account,
                self.container,
                now,
                put_timestamp.internal,
                _ZERO,
                put_timestamp.internal,
                fields["storage_policy_index"],
                _ZERO,
                _ZERO,
                str(uuid.uuid4()),
            ),
        )

    # -- status ----------------------------------------------------------------------

    def _is_deleted(self, conn: sqlite3.Connection) -> bool:
        count, put_ts, delete_ts = self._stat(
            conn, "object_count", "put_timestamp", "delete_timestamp"
        )
        return count == 0 and Timestamp(str(delete_ts)) > Timestamp(str(put_ts))

    def empty(self) -> bool:
        with self._read() as conn:
            (count,) = self._stat(conn, "object_count")
            return bool(count == 0)

    def get_info(self) -> ContainerInfo:
        with self._read() as conn:
            return self._info(conn)

    def _info(self, conn: sqlite3.Connection) -> ContainerInfo:
        row = self._stat(conn, *_INFO_COLUMNS.split(", "))
        ts = [Timestamp(str(row[i])) for i in (2, 3, 4, 5, 9, 10)]
        return ContainerInfo(
            account=str(row[0]),
            container=str(row[1]),
            created_at=ts[0],
            put_timestamp=ts[1],
            delete_timestamp=ts[2],
            status_changed_at=ts[3],
            object_count=int(row[6]),
            bytes_used=int(row[7]),
            storage_policy_index=int(row[8]),
            reported_put_timestamp=ts[4],
            reported_delete_timestamp=ts[5],
            reported_object_count=int(row[11]),
            reported_bytes_used=int(row[12]),
            db_id=str(row[13]),
            deleted=self._is_deleted(conn),
            metadata=live_metadata(self._load_metadata(conn)),
        )

    def delete_db(self, timestamp: Timestamp) -> None:
        """Mark the container deleted at ``timestamp`` (callers check `empty` first)."""
        with self._write() as conn, self._tracking_status(conn):
            conn.execute(
                "UPDATE container_stat SET delete_timestamp = ? WHERE delete_timestamp < ?",
                (timestamp.internal, timestamp.internal),
            )
            self._clear_metadata(conn, timestamp)

    def set_storage_policy_index(self, storage_policy_index: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE container_stat SET storage_policy_index = ?", (storage_policy_index,)
            )

    def reported(
        self,
        put_timestamp: Timestamp,
        delete_timestamp: Timestamp,
        object_count: int,
        bytes_used: int,
    ) -> None:
        """Remember what the account was last told about this container."""
        with self._write() as conn:
            conn.execute(
                "UPDATE container_stat SET reported_put_timestamp = ?, "
                "reported_delete_timestamp = ?, reported_object_count = ?, "
                "reported_bytes_used = ?",
                (put_timestamp.internal, delete_timestamp.internal, object_count, bytes_used),
            )

    # -- object rows -------------------------------------------------------------------

    def put_object(
        self,
        name: str,
        timestamp: Timestamp,
        size: int,
        content_type: str,
        etag: str,
        deleted: bool = False,
        storage_policy_index: int | None = None,
    ) -> bool:
        """Record an object PUT (or DELETE with ``deleted``); True if it changed the row."""
        if storage_policy_index is None:
            storage_policy_index = self.get_info().storage_policy_index
        record = ObjectRecord(
            name, timestamp, size, content_type, etag, deleted, storage_policy_index
        )
        return self.merge_items([record]) == 1

    def delete_object(
        self, name: str, timestamp: Timestamp, storage_policy_index: int | None = None
    ) -> bool:
        """Record an object DELETE: a tombstone row (kept for replication)."""
        return self.put_object(
            name, timestamp, 0, DELETED_CONTENT_TYPE, DELETED_ETAG, True, storage_policy_index
        )

    def merge_items(self, records: Iterable[ObjectRecord]) -> int:
        """Apply rows (from the object servers or a replica); returns how many won."""
        with self._write() as conn, self._tracking_status(conn):
            return self._merge_rows(conn, records)

    def _merge_rows(self, conn: sqlite3.Connection, rows: Iterable[ObjectRecord]) -> int:
        applied = count_delta = bytes_delta = 0
        for record in rows:
            delta = _merge_object(conn, record)
            if delta is not None:
                applied += 1
                count_delta += delta[0]
                bytes_delta += delta[1]
        if count_delta or bytes_delta:
            conn.execute(
                "UPDATE container_stat SET object_count = object_count + ?, "
                "bytes_used = bytes_used + ?",
                (count_delta, bytes_delta),
            )
        return applied

    # -- replication -------------------------------------------------------------------

    def _ref(self, conn: sqlite3.Connection) -> DatabaseRef:
        account, container = self._stat(conn, "account", "container")
        return DatabaseRef(str(account), str(container))

    def _status(self, conn: sqlite3.Connection) -> DatabaseStatus:
        row = self._stat(
            conn, "created_at", "put_timestamp", "delete_timestamp", "status_changed_at",
            "storage_policy_index",
        )  # fmt: skip
        return DatabaseStatus(
            *(Timestamp(str(value)) for value in row[:4]),
            metadata=self._stamped_metadata(conn),
            storage_policy_index=int(row[4]),
        )

    def _store_status(self, conn: sqlite3.Connection, status: DatabaseStatus) -> None:
        conn.execute(
            "UPDATE container_stat SET put_timestamp = ?, delete_timestamp = ?, "
            "storage_policy_index = ?",
            (
                status.put_timestamp.internal,
                status.delete_timestamp.internal,
                status.storage_policy_index,
            ),
        )

    def get_items_since(self, rowid: int, count: int) -> list[tuple[int, ObjectRecord]]:
        """Rows (tombstones included) changed after sync point ``rowid``, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT ROWID, {_OBJECT_COLUMNS} FROM object WHERE ROWID > ? "
                "ORDER BY ROWID LIMIT ?",
                (rowid, count),
            ).fetchall()
        return [(row[0], _object_record(row[1:])) for row in rows]

    def max_row(self) -> int:
        with self._read() as conn:
            (value,) = conn.execute("SELECT COALESCE(MAX(ROWID), 0) FROM object").fetchone()
            return int(value)

    def reclaim(self, before: Timestamp) -> int:
        """Drop tombstone rows and removed metadata older than ``before``; rows dropped."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM object WHERE deleted = 1 AND created_at < ?", (before.internal,)
            )
            self._reclaim_metadata(conn, before)
            return cursor.rowcount

    # -- listing -----------------------------------------------------------------------

    def list_objects_iter(
        self,
        limit: int = DEFAULT_LISTING_LIMIT,
        marker: str = "",
        end_marker: str = "",
        prefix: str | None = None,
        delimiter: str | None = None,
        path: str | None = None,
        reverse: bool = False,
    ) -> list[ListedObject | Subdir]:
        """One page of the listing (Swift semantics: see `listing`)."""
        query = ListingQuery(limit, marker, end_marker, prefix, delimiter, path, reverse)
        with self._read() as conn:
            return list_entries(_fetcher(conn), query)

    def listing(self, query: ListingQuery) -> ContainerListing:
        """Info and one page of entries, from one consistent snapshot."""
        with self._read() as conn:
            info = self._info(conn)
            entries = list_entries(_fetcher(conn), query)
        return ContainerListing(info, tuple(entries))

    def rendered_listing(self, query: ListingQuery) -> RenderedListing | None:
        """Info and one page as Swift's JSON listing, written by the database, from one
        snapshot; None for a page with a delimiter or rows only Python renders (see
        `listing_json`): `listing` gives those."""
        if query.limit < 0:
            raise ValueError("limit must not be negative")
        if query.delimiter or query.path is not None:
            return None
        lower, upper, _ = initial_bounds(query, query.prefix or "")
        with self._read() as conn:
            info = self._info(conn)
            body = render_page(conn, lower, upper, query.reverse, query.limit)
        return None if body is None else RenderedListing(info, body)


def _merge_object(conn: sqlite3.Connection, record: ObjectRecord) -> tuple[int, int] | None:
    """Replace the row if ``record`` is newer; the (count, bytes) delta, or None if it lost."""
    existing = conn.execute(
        "SELECT ROWID, created_at, size, deleted FROM object WHERE name = ?", (record.name,)
    ).fetchone()
    count_delta = bytes_delta = 0
    if existing is not None:
        if Timestamp(existing[1]) >= record.created_at:
            return None
        conn.execute("DELETE FROM object WHERE ROWID = ?", (existing[0],))
        if not existing[3]:
            count_delta, bytes_delta = -1, -existing[2]
    conn.execute(
        f"INSERT INTO object ({_OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.name,
            record.created_at.internal,
            record.size,
            record.content_type,
            record.etag,
            int(record.deleted),
            record.storage_policy_index,
        ),
    )
    if not record.deleted:
        count_delta, bytes_delta = count_delta + 1, bytes_delta + record.size
    return count_delta, bytes_delta


def _object_record(row: Sequence[Any]) -> ObjectRecord:
    name, created_at, size, content_type, etag, deleted, policy = row
    return ObjectRecord(
        str(name),
        Timestamp(str(created_at)),
        int(size),
        str(content_type),
        str(etag),
        bool(deleted),
        int(policy),
    )


_listed_object: Final = functools.partial(tuple.__new__, ListedObject)
"""ListedObject from a row of _LISTED_COLUMNS: ``_make`` without its Python frame."""


def _fetcher(conn: sqlite3.Connection) -> Callable[[Bound, Bound, bool, int], list[ListedObject]]:
    def fetch(lower: Bound, upper: Bound, reverse: bool, limit: int) -> list[ListedObject]:
        clauses, params = bounds_sql(lower, upper)
        where = " AND ".join(["deleted = 0", *clauses])
        order = "DESC" if reverse else "ASC"
        rows = conn.execute(
            f"SELECT {_LISTED_COLUMNS} FROM object WHERE {where} ORDER BY name {order} LIMIT ?",
            (*params, limit),
        )
        return list(map(_listed_object, rows))

    return fetch
