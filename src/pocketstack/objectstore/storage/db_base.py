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

Concurrency: one connection per broker, guarded by a lock; every write runs in a
``BEGIN IMMEDIATE`` transaction. SQLite errors are mapped at this boundary: a corrupt
database is quarantined (its directory moved to ``<dev>/quarantined/<kind>/``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
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
from pocketstack.objectstore.timestamp import Timestamp

SCHEMA_VERSION: Final = 1
SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL")
_CORRUPTION_MARKERS: Final = ("malformed", "not a database", "no such table", "no such column")
RawMetadata = dict[str, tuple[str, Timestamp]]


class DatabaseBroker:
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

    def _create_schema(
        self, conn: sqlite3.Connection, put_timestamp: Timestamp, **fields: object
    ) -> None:
        raise NotImplementedError

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
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version != SCHEMA_VERSION:
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

    def _is_deleted(self, conn: sqlite3.Connection) -> bool:
        raise NotImplementedError

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


def live_metadata(metadata: RawMetadata) -> dict[str, str]:
    return {key: value for key, (value, _ts) in metadata.items() if value}


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
