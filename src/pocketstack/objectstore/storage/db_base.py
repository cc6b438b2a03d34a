"""One SQLite database per account and per container: what the two brokers share.

Each database is a single file ``<dev>/<accounts|containers>/<part>/<suffix>/<hash>/
<hash>.db`` (plus SQLite's ``-wal``/``-shm`` while open), so it can be replicated as a
unit, as Swift does.

Creation is atomic: the schema and the status row are built in ``<dev>/tmp``, synced,
then hard-linked into place (``link`` fails if another creator won the race, in which
case ours is dropped) and the directory synced. A database therefore either exists whole
or not at all.

Durability vs speed: databases run in WAL mode with ``synchronous=NORMAL`` by default. A
commit is then a sequential append to the WAL without an fsync (the WAL is synced at each
checkpoint): an application or OS crash never corrupts a database and never loses a
commit, but a power loss may roll back the last commits. Those are rows that the other
replicas also hold (the proxy writes to a quorum) and replication puts back; Swift makes
the same trade with its ``.pending`` files. ``synchronous="FULL"`` syncs every commit
(one fsync each, like an object PUT); ``fsync=False`` turns syncing off (tests).

Metadata (``X-Container-Meta-*`` etc.) is a JSON object ``{key: [value, timestamp]}`` in
the status row; updates are newest-timestamp-wins per key, and an empty value marks a
removal (kept, so that it replicates, until `reclaim`).

Every row write deletes and re-inserts the row, so its ROWID (AUTOINCREMENT, never
reused) grows: ``get_items_since(rowid)`` then yields everything changed since a sync
point, and ``merge_items`` applies rows from a replica with the same newest-wins rules.

Replication (`merge_replica`, `replication_state`): a replica pushes the rows after the
peer's sync point for it, with its status (`merge_status`); the peer merges both and
records, in the same transaction, how far it has merged that replica's rows
(``incoming_sync``: remote database id -> sync point, Swift's table of that name). The
status row's ``hash`` is the XOR of every row's md5 (`chexor`, kept by triggers, as
Swift's), so replicas holding the same rows see it at once. Schema version 2 added both;
a version 1 database is upgraded when first opened.

Concurrency: one connection per broker, guarded by a lock; every write runs in a
``BEGIN IMMEDIATE`` transaction. SQLite errors are mapped at this boundary: a corrupt
database is quarantined (its directory moved to ``<dev>/quarantined/<kind>/``).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final

from pocketstack.objectstore.storage import fsutil
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    DatabaseError,
    DatabaseQuarantined,
    DiskFileError,
    DiskFileNoSpace,
    LockTimeout,
    NotFound,
)
from pocketstack.objectstore.storage.types import (
    DatabaseRef,
    DatabaseState,
    DatabaseStatus,
    StampedValue,
)
from pocketstack.objectstore.timestamp import Timestamp

SCHEMA_VERSION: Final = 2
ZERO_HASH: Final = "0" * 32
_SYNC_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS incoming_sync (
    remote_id TEXT PRIMARY KEY,
    sync_point INTEGER NOT NULL,
    updated_at TEXT NOT NULL
)"""
SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL")
_CORRUPTION_MARKERS: Final = ("malformed", "not a database", "no such table", "no such column")
RawMetadata = dict[str, tuple[str, Timestamp]]


class DatabaseBroker(abc.ABC):
    """A handle on one database file; subclasses define the schema and the rows."""

    stat_table: ClassVar[str] = ""
    kind_dir: ClassVar[str] = ""
    not_found: ClassVar[type[NotFound]] = NotFound

    def __init__(
        self,
        db_path: str,
        *,
        device_path: str,
        account: str,
        container: str | None = None,
        fsync: bool = True,
        synchronous: str = "NORMAL",
        timeout: float = 25.0,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.db_path = db_path
        self.device_path = device_path
        self.account = account
        self.container = container
        self.fsync = fsync
        self.synchronous = synchronous.upper() if fsync else "OFF"
        self.timeout = timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    # -- files and connections ---------------------------------------------------------

    def exists(self) -> bool:
        return os.path.isfile(self.db_path)

    @abc.abstractmethod
    def _create_schema(
        self, conn: sqlite3.Connection, put_timestamp: Timestamp, **fields: object
    ) -> None:
        ...

    def _create(self, put_timestamp: Timestamp, **fields: object) -> bool:
        """Build the database in tmp and publish it; False if it existed already."""
        if self.exists():
            return False
        tmp_dir = os.path.join(self.device_path, fsutil.TMP_DIR)
        with fsutil.map_os_errors(self.db_path), self._errors():
            os.makedirs(tmp_dir, exist_ok=True)
            tmp_path = os.path.join(tmp_dir, f"{uuid.uuid4().hex}.db")
            try:
                conn = sqlite3.connect(tmp_path, isolation_level=None)
                try:  # unsynced while private: one fsync below makes it all durable
                    conn.execute("PRAGMA synchronous = OFF")
                    conn.execute("BEGIN")
                    self._create_schema(conn, put_timestamp, **fields)
                    self._add_replication_schema(conn)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                    conn.execute("PRAGMA journal_mode = WAL")  # persists in the file header
                finally:
                    conn.close()
                if self.fsync:
                    _fsync_file(tmp_path)
                return fsutil.publish_file(
                    tmp_path,
                    os.path.dirname(self.db_path),
                    os.path.basename(self.db_path),
                    fsync=self.fsync,
                    replace=False,
                )
            finally:
                for suffix in ("", "-wal", "-shm"):
                    fsutil.unlink_quietly(tmp_path + suffix)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.exists():
                raise self.not_found(self.db_path)
            uri = f"file:{urllib.parse.quote(self.db_path)}?mode=rw"
            conn = sqlite3.connect(
                uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                conn.execute("PRAGMA temp_store = MEMORY")
                conn.create_function("chexor", 3, chexor, deterministic=True)
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version == 1:
                    self._upgrade_from_v1(conn)
                elif version != SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(f"not a database of schema version {version}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate SQLite and encoding errors at this boundary."""
        try:
            yield
        except UnicodeEncodeError as exc:
            raise BadRequest("names and metadata must be valid UTF-8") from exc
        except sqlite3.DatabaseError as exc:
            message = str(exc).lower()
            if "locked" in message or "busy" in message:
                raise LockTimeout(f"{self.db_path}: {exc}") from exc
            if "disk is full" in message:
                raise DiskFileNoSpace(f"{self.db_path}: {exc}") from exc
            if "disk i/o" in message:
                raise DiskFileError(f"{self.db_path}: {exc}") from exc
            if any(marker in message for marker in _CORRUPTION_MARKERS):
                raise self._quarantine(str(exc)) from exc
            raise DatabaseError(f"{self.db_path}: {exc}") from exc

    def _quarantine(self, reason: str) -> DatabaseQuarantined:
        self.close()
        try:
            target = fsutil.quarantine_dir(
                self.device_path, os.path.dirname(self.db_path), self.kind_dir
            )
        except OSError as exc:
            target = f"(not moved: {exc})"
        return DatabaseQuarantined(f"{self.db_path} quarantined to {target}: {reason}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: the writer lock is taken up front)."""
        with self._lock, self._errors(), fsutil.map_os_errors(self.db_path):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for several queries."""
        with self._lock, self._errors(), fsutil.map_os_errors(self.db_path):
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    # -- status row ------------------------------------------------------------------

    def _stat(self, conn: sqlite3.Connection, *columns: str) -> tuple[Any, ...]:
        row = conn.execute(f"SELECT {', '.join(columns)} FROM {self.stat_table}").fetchone()
        if row is None:
            raise sqlite3.DatabaseError("no such table row: status row missing")
        return tuple(row)

    @abc.abstractmethod
    def _is_deleted(self, conn: sqlite3.Connection) -> bool:
        ...

    def is_deleted(self) -> bool:
        """Deleted (and empty): the entity reads as missing."""
        with self._read() as conn:
            return self._is_deleted(conn)

    @contextlib.contextmanager
    def _tracking_status(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Stamp status_changed_at if the body of the block flips the deleted status."""
        before = self._is_deleted(conn)
        yield
        if self._is_deleted(conn) != before:
            conn.execute(
                f"UPDATE {self.stat_table} SET status_changed_at = ?",
                (Timestamp.now().internal,),
            )

    def update_put_timestamp(self, timestamp: Timestamp) -> None:
        """Record a PUT: newest put_timestamp wins (may revive a deleted entity)."""
        with self._write() as conn, self._tracking_status(conn):
            conn.execute(
                f"UPDATE {self.stat_table} SET put_timestamp = ? WHERE put_timestamp < ?",
                (timestamp.internal, timestamp.internal),
            )

    # -- metadata ----------------------------------------------------------------------

    def _load_metadata(self, conn: sqlite3.Connection) -> RawMetadata:
        (blob,) = self._stat(conn, "metadata")
        if not blob:
            return {}
        loaded = json.loads(blob)
        return {key: (value, Timestamp(ts)) for key, (value, ts) in loaded.items()}

    def _store_metadata(self, conn: sqlite3.Connection, metadata: RawMetadata) -> None:
        blob = json.dumps(
            {k: [v, ts.internal] for k, (v, ts) in metadata.items()},
            sort_keys=True,
            separators=(",", ":"),
        )
        conn.execute(f"UPDATE {self.stat_table} SET metadata = ?", (blob,))

    @property
    def metadata(self) -> dict[str, str]:
        """The live metadata (removed keys left out)."""
        with self._read() as conn:
            return live_metadata(self._load_metadata(conn))

    @property
    def raw_metadata(self) -> RawMetadata:
        """Every key with its timestamp, removals included (for replication)."""
        with self._read() as conn:
            return self._load_metadata(conn)

    def update_metadata(self, updates: Mapping[str, tuple[str, Timestamp]]) -> None:
        """Merge ``{key: (value, timestamp)}``: per key, a strictly newer timestamp wins."""
        if not updates:
            return
        with self._write() as conn:
            self._merge_metadata(conn, updates)

    def _merge_metadata(
        self, conn: sqlite3.Connection, updates: Mapping[str, tuple[str, Timestamp]]
    ) -> None:
        current = self._load_metadata(conn)
        changed = False
        for key, (value, timestamp) in updates.items():
            if key not in current or current[key][1] < timestamp:
                current[key] = (value, timestamp)
                changed = True
        if changed:
            self._store_metadata(conn, current)

    def _clear_metadata(self, conn: sqlite3.Connection, timestamp: Timestamp) -> None:
        """Mark every key removed at ``timestamp`` (a deleted DB keeps no metadata)."""
        current = self._load_metadata(conn)
        self._merge_metadata(conn, {key: ("", timestamp) for key in current})

    def _reclaim_metadata(self, conn: sqlite3.Connection, before: Timestamp) -> None:
        current = self._load_metadata(conn)
        kept = {k: (v, ts) for k, (v, ts) in current.items() if v or ts >= before}
        if len(kept) != len(current):
            self._store_metadata(conn, kept)

    # -- replication -------------------------------------------------------------------

    row_table: ClassVar[str] = ""
    count_column: ClassVar[str] = ""
    row_version: ClassVar[str] = ""
    """SQL of what identifies a row's version besides its name; ``{row}`` is the prefix
    (``new.``, ``old.``, or nothing)."""

    def _add_replication_schema(self, conn: sqlite3.Connection) -> None:
        """Sync points, and the rows' hash (`chexor` of every row, kept by triggers)."""
        conn.execute(
            f"ALTER TABLE {self.stat_table} ADD COLUMN hash TEXT NOT NULL DEFAULT '{ZERO_HASH}'"
        )
        conn.execute(_SYNC_SCHEMA)
        for event, row in (("INSERT", "new"), ("DELETE", "old")):
            version = self.row_version.format(row=f"{row}.")
            conn.execute(
                f"CREATE TRIGGER {self.row_table}_{event.lower()}_hash AFTER {event} ON "
                f"{self.row_table} BEGIN UPDATE {self.stat_table} SET hash = "
                f"chexor(hash, {row}.name, {version}); END"
            )

    def _upgrade_from_v1(self, conn: sqlite3.Connection) -> None:
        """Schema 1 -> 2: sync points and the rows' hash."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._add_replication_schema(conn)
            digest = ZERO_HASH
            version = self.row_version.format(row="")
            for name, row in conn.execute(f"SELECT name, {version} FROM {self.row_table}"):
                digest = chexor(digest, name, row)
            conn.execute(f"UPDATE {self.stat_table} SET hash = ?", (digest,))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @abc.abstractmethod
    def _ref(self, conn: sqlite3.Connection) -> DatabaseRef:
        ...

    @abc.abstractmethod
    def _status(self, conn: sqlite3.Connection) -> DatabaseStatus:
        ...

    @abc.abstractmethod
    def _store_status(self, conn: sqlite3.Connection, status: DatabaseStatus) -> None:
        """Write the merged put/delete timestamps and kind-specific fields (not metadata)."""
        ...

    @abc.abstractmethod
    def _merge_rows(self, conn: sqlite3.Connection, rows: Sequence[Any]) -> int:
        ...

    def read_ref(self) -> DatabaseRef:
        """The names stored in the database (what a file found on disk belongs to)."""
        with self._read() as conn:
            return self._ref(conn)

    def _stamped_metadata(self, conn: sqlite3.Connection) -> dict[str, StampedValue]:
        return {k: StampedValue(v, ts) for k, (v, ts) in self._load_metadata(conn).items()}

    def _state(self, conn: sqlite3.Connection, remote_id: str | None) -> DatabaseState:
        db_id, rows_hash = self._stat(conn, "id", "hash")
        (max_row,) = conn.execute(
            f"SELECT COALESCE(MAX(ROWID), 0) FROM {self.row_table}"
        ).fetchone()
        point = -1
        if remote_id:
            row = conn.execute(
                "SELECT sync_point FROM incoming_sync WHERE remote_id = ?", (remote_id,)
            ).fetchone()
            point = -1 if row is None else int(row[0])
        status = self._status(conn)
        return DatabaseState(str(db_id), int(max_row), status, point, str(rows_hash))

    def replication_state(self, remote_id: str | None = None) -> DatabaseState:
        """This replica's state; ``sync_point`` is for the replica ``remote_id``."""
        with self._read() as conn:
            return self._state(conn, remote_id)

    def merge_replica(
        self, source_id: str, status: DatabaseStatus, rows: Sequence[Any], sync_point: int
    ) -> DatabaseState:
        """Merge another replica's status and rows, and remember that its rows up to
        ``sync_point`` are merged; one transaction. Returns the state for ``source_id``."""
        with self._write() as conn:
            with self._tracking_status(conn):
                current = self._status(conn)
                merged = merge_status(current, status)
                if merged != current:
                    self._store_status(conn, merged)
                    if merged.metadata != current.metadata:
                        raw = {k: (v.value, v.timestamp) for k, v in merged.metadata.items()}
                        self._store_metadata(conn, raw)
                self._merge_rows(conn, rows)
            conn.execute(
                "INSERT INTO incoming_sync (remote_id, sync_point, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (remote_id) DO UPDATE SET sync_point = "
                "MAX(sync_point, excluded.sync_point), updated_at = excluded.updated_at",
                (source_id, sync_point, Timestamp.now().internal),
            )
            return self._state(conn, source_id)

    def remove_if_unchanged(self, expected: DatabaseState) -> bool:
        """Delete the database if its id, rows and status are still ``expected`` (a
        handoff copy that every primary has merged); False if anything changed."""
        with self._lock:
            if not self.exists():
                return False
            state = self.replication_state()
            if (state.db_id, state.max_row, state.status) != (
                expected.db_id, expected.max_row, expected.status
            ):  # fmt: skip
                return False
            self._remove_files()
            return True

    def reclaim_replica(self, before: Timestamp) -> bool:
        """`reclaim` rows older than ``before``; delete the whole database if it was
        deleted (and emptied) before then. True if the database is gone."""
        with self._lock:
            self.reclaim(before)
            with self._read() as conn:
                deleted = self._is_deleted(conn)
                delete_ts, count = self._stat(conn, "delete_timestamp", self.count_column)
            if deleted and count == 0 and Timestamp(str(delete_ts)) < before:
                self._remove_files()
                return True
            return False

    @abc.abstractmethod
    def reclaim(self, before: Timestamp) -> int:
        ...

    def _remove_files(self) -> None:
        """Close and remove the database's directory, then its emptied parents."""
        self.close()
        hash_dir = os.path.dirname(self.db_path)
        with fsutil.map_os_errors(self.db_path):
            shutil.rmtree(hash_dir, ignore_errors=True)
            suffix_dir = os.path.dirname(hash_dir)
            if fsutil.remove_empty_dir(suffix_dir):
                fsutil.remove_empty_dir(os.path.dirname(suffix_dir))

    def check_integrity(self) -> None:
        """``PRAGMA quick_check``; a corrupt database is quarantined (DatabaseQuarantined)."""
        with self._lock, self._errors(), fsutil.map_os_errors(self.db_path):
            rows = self._connection().execute("PRAGMA quick_check").fetchall()
            problems = [str(row[0]) for row in rows if row[0] != "ok"]
            if problems:
                raise self._quarantine("quick_check: " + "; ".join(problems[:3]))


def merge_status(current: DatabaseStatus, incoming: DatabaseStatus) -> DatabaseStatus:
    """``current`` with ``incoming`` merged into it (see `types.DatabaseStatus`).

    Pure, commutative in what it keeps (but ``created_at``/``status_changed_at``, which
    stay ``current``'s), and idempotent: replicas that merge each other's status agree.
    """
    metadata = dict(current.metadata)
    for key, item in incoming.metadata.items():
        if key not in metadata or metadata[key].timestamp < item.timestamp:
            metadata[key] = item
    newer_put = incoming.put_timestamp > current.put_timestamp
    return dataclasses.replace(
        current,
        put_timestamp=max(current.put_timestamp, incoming.put_timestamp),
        delete_timestamp=max(current.delete_timestamp, incoming.delete_timestamp),
        metadata=metadata,
        storage_policy_index=(
            incoming.storage_policy_index if newer_put else current.storage_policy_index
        ),
        status_deleted=current.status_deleted or incoming.status_deleted,
    )


def covers(status: DatabaseStatus, other: DatabaseStatus) -> bool:
    """True when merging ``other`` into ``status`` would change nothing."""
    return merge_status(status, other) == status


def chexor(digest: str, name: str, version: object) -> str:
    """``digest`` XOR md5(``name-version``): the rows' hash with one row added or removed
    (order-free, as Swift's ``chexor``; equal row sets give equal hashes)."""
    row = hashlib.md5(f"{name}-{version}".encode("utf-8", "surrogateescape"))
    return format(int(digest, 16) ^ int(row.hexdigest(), 16), "032x")


def live_metadata(metadata: RawMetadata) -> dict[str, str]:
    return {key: value for key, (value, _ts) in metadata.items() if value}


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
