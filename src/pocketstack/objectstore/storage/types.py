"""The storage layer's vocabulary: what goes in and comes out of a StorageNode.

Everything here is plain data (frozen dataclasses of str/int/bool/Timestamp and read-only
mappings), so a RemoteNode can carry it over HTTP unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple, Protocol, runtime_checkable

from pocketstack.objectstore.timestamp import Timestamp, isoformat_of

Metadata = dict[str, str]
"""Object metadata as stored: header name -> value (``X-Object-Meta-Color``: ``blue``)."""

ByteRange = tuple[int, int | None]
"""A byte range in Python slice terms: ``(start, stop)``, stop exclusive.

``(0, 10)`` is the first ten bytes, ``(10, None)`` everything from byte 10 and
``(-10, None)`` the last ten bytes (HTTP ``bytes=-10``). Ranges are clamped to the
object; see ``resolve_ranges``.
"""

DEFAULT_LISTING_LIMIT: Final = 10_000


@dataclass(frozen=True)
class ObjectInfo:
    """An object as a storage node holds it (HEAD/GET/PUT/POST results)."""

    account: str
    container: str
    obj: str
    policy: int
    timestamp: Timestamp
    """When the data was written (the PUT's X-Timestamp)."""
    last_modified: Timestamp
    """The newest of the data and the last POST: what Last-Modified shows."""
    content_length: int
    etag: str
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Every other stored header: X-Object-Meta-*, X-Object-Sysmeta-*, X-Delete-At,
    Content-Encoding, Content-Disposition, X-Static-Large-Object, ..."""

    @property
    def delete_at(self) -> int | None:
        """X-Delete-At as epoch seconds, if set."""
        value = self.metadata.get("X-Delete-At")
        try:
            return int(value) if value else None
        except ValueError:
            return None


@dataclass(frozen=True)
class ObjectRecord:
    """One row of a container database (a listing entry, or a tombstone when ``deleted``)."""

    name: str
    created_at: Timestamp
    size: int
    content_type: str
    etag: str
    deleted: bool = False
    storage_policy_index: int = 0


class ListedObject(NamedTuple):
    """One object of a container listing, as its row is stored.

    A tuple, and ``created_at`` the stored timestamp text, because a listing carries up
    to 10 000 of them from SQLite to the client: building an `ObjectRecord` and parsing
    a `Timestamp` per row cost more than the rest of the listing.
    """

    name: str
    created_at: str
    """`Timestamp.internal` of the object's last write."""
    size: int
    content_type: str
    etag: str

    @property
    def timestamp(self) -> Timestamp:
        return Timestamp(self.created_at)

    @property
    def last_modified(self) -> str:
        """The listing's ``last_modified`` (`Timestamp.isoformat`)."""
        return isoformat_of(self.created_at)


@dataclass(frozen=True)
class ContainerRecord:
    """One row of an account database: a container's last reported state."""

    name: str
    put_timestamp: Timestamp
    delete_timestamp: Timestamp
    object_count: int
    bytes_used: int
    deleted: bool = False
    storage_policy_index: int = 0


@dataclass(frozen=True)
class Subdir:
    """A listing entry standing for every name under ``name`` (delimiter roll-up)."""

    name: str


@dataclass(frozen=True)
class ListingQuery:
    """Swift's listing parameters (GET on an account or a container).

    Names are compared in UTF-8 byte order. ``marker`` and ``end_marker`` are exclusive;
    with ``reverse`` the listing runs backwards from ``marker`` towards ``end_marker``.
    A ``delimiter`` rolls names sharing ``prefix + <text> + delimiter`` into one Subdir.
    ``path`` (containers) lists only the direct children of a pseudo-directory: it sets
    prefix to ``path/`` and delimiter to ``/``, and leaves deeper names out.
    """

    limit: int = DEFAULT_LISTING_LIMIT
    marker: str = ""
    end_marker: str = ""
    prefix: str | None = None
    delimiter: str | None = None
    path: str | None = None
    reverse: bool = False


@dataclass(frozen=True)
class PolicyStats:
    """An account's usage within one storage policy."""

    container_count: int = 0
    object_count: int = 0
    bytes_used: int = 0


@dataclass(frozen=True)
class ContainerInfo:
    """A container database's status row (HEAD container)."""

    account: str
    container: str
    created_at: Timestamp
    put_timestamp: Timestamp
    delete_timestamp: Timestamp
    status_changed_at: Timestamp
    object_count: int
    bytes_used: int
    storage_policy_index: int
    reported_put_timestamp: Timestamp
    reported_delete_timestamp: Timestamp
    reported_object_count: int
    reported_bytes_used: int
    db_id: str
    """A random id for this database replica (replication sync points refer to it)."""
    deleted: bool
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def needs_report(self) -> bool:
        """True when the account has not been told this container's current state."""
        return (
            self.put_timestamp != self.reported_put_timestamp
            or self.delete_timestamp != self.reported_delete_timestamp
            or self.object_count != self.reported_object_count
            or self.bytes_used != self.reported_bytes_used
        )


@dataclass(frozen=True)
class AccountInfo:
    """An account database's status row (HEAD account), with per-policy usage."""

    account: str
    created_at: Timestamp
    put_timestamp: Timestamp
    delete_timestamp: Timestamp
    status_changed_at: Timestamp
    status_deleted: bool
    """True once DELETE has marked the account for the reaper."""
    container_count: int
    object_count: int
    bytes_used: int
    db_id: str
    deleted: bool
    metadata: Mapping[str, str] = field(default_factory=dict)
    policy_stats: Mapping[int, PolicyStats] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerListing:
    """GET container: the container's info and one page of entries."""

    info: ContainerInfo
    entries: tuple[ListedObject | Subdir, ...]


@dataclass(frozen=True)
class RenderedListing:
    """GET container: the container's info and one page already written as Swift's JSON
    listing, by the database itself (`listing_json`)."""

    info: ContainerInfo
    json: bytes


@dataclass(frozen=True)
class AccountListing:
    """GET account: the account's info and one page of entries."""

    info: AccountInfo
    entries: tuple[ContainerRecord | Subdir, ...]


@dataclass(frozen=True)
class ContainerUpdate:
    """An object's change, as its container's listing must learn it (PUT or DELETE)."""

    account: str
    container: str
    obj: str
    timestamp: Timestamp
    size: int
    content_type: str
    etag: str
    deleted: bool
    policy_index: int


@dataclass(frozen=True)
class AsyncPending:
    """A container update that failed and waits on disk for the updater."""

    pending_id: str
    """Opaque handle for ``remove_async_pending`` (a device-relative path)."""
    device: str
    policy: int
    update: ContainerUpdate


def resolve_ranges(ranges: Iterable[ByteRange], length: int) -> list[tuple[int, int]]:
    """Absolute ``(start, stop)`` ranges of an object of ``length`` bytes, stop exclusive.

    Negative starts count from the end (a suffix range), a None or too large stop means the
    end of the object. Ranges that select nothing (starting at or after the end, or empty)
    are dropped; the caller answers 416 if nothing remains. Order and overlaps are kept.

    >>> resolve_ranges([(0, 10), (-5, None), (200, None)], 100)
    [(0, 10), (95, 100)]
    """
    resolved = []
    for start, stop in ranges:
        if start < 0:
            start = max(0, length + start)
        if stop is None or stop > length:
            stop = length
        elif stop < 0:
            stop = max(0, length + stop)
        if start < stop:
            resolved.append((start, stop))
    return resolved


@runtime_checkable
class ObjectBody(Protocol):
    """An object's bytes as a stream: ``async for chunk in body``; ``await body.aclose()``."""

    ranges: list[tuple[int, int]] | None
    """The absolute ``(start, stop)`` ranges the stream carries, in order; None: whole."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...


# -- replication -------------------------------------------------------------------------

DataKind = Literal["accounts", "containers", "objects"]
"""What a device directory holds: ``accounts``, ``containers``, or ``objects`` (the
object directory of a storage policy: ``objects-N`` for policy N)."""
DATA_KINDS: Final[tuple[DataKind, ...]] = ("accounts", "containers", "objects")
DB_KINDS: Final[tuple[DataKind, ...]] = ("accounts", "containers")


@dataclass(frozen=True)
class ObjectStamp:
    """One object's live files on one replica: what replicas compare (`list_object_stamps`).

    ``files`` are the names that count in its hash directory (``<timestamp>.data``,
    ``.meta``, ``.ts``; obsolete ones left out, see `hashdir`), sorted. Two replicas hold
    the same version of an object exactly when their stamps are equal.
    """

    name_hash: str
    files: tuple[str, ...]

    @property
    def suffix(self) -> str:
        return self.name_hash[-3:]


@dataclass(frozen=True)
class ObjectFile:
    """One object file as replication moves it (`get_object_file`, `put_object_file`).

    ``metadata`` is the file's metadata exactly as stored (name, X-Timestamp, and for a
    ``.data`` Content-Length and ETag); ``content_length`` is its body's size (0 for
    ``.meta`` and ``.ts``). File name, metadata and body make the file, byte for byte.
    """

    name_hash: str
    filename: str
    content_length: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseRef:
    """An account database (``container`` None) or a container database, by name."""

    account: str
    container: str | None = None

    @property
    def kind(self) -> DataKind:
        return "accounts" if self.container is None else "containers"

    def __str__(self) -> str:
        return self.account if self.container is None else f"{self.account}/{self.container}"


@dataclass(frozen=True)
class StampedValue:
    """A metadata value with the timestamp that set it (an empty value: a removal)."""

    value: str
    timestamp: Timestamp


@dataclass(frozen=True)
class DatabaseStatus:
    """What a database replica says of its entity besides its rows; replicas merge it.

    Merging (`db_base.merge_status`): the newest ``put_timestamp`` and the newest
    ``delete_timestamp`` win separately, metadata merges per key (newest wins), an
    account's ``status_deleted`` sticks once set, and ``storage_policy_index`` travels
    with the newest ``put_timestamp``. ``created_at`` and ``status_changed_at`` are each
    replica's own and are not merged.
    """

    created_at: Timestamp
    put_timestamp: Timestamp
    delete_timestamp: Timestamp
    status_changed_at: Timestamp
    metadata: Mapping[str, StampedValue] = field(default_factory=dict)
    storage_policy_index: int = 0
    """Containers only."""
    status_deleted: bool = False
    """Accounts only: a DELETE marked it (see `AccountInfo.status_deleted`)."""


@dataclass(frozen=True)
class DatabaseState:
    """A database replica as replication sees it (`get_db_state`).

    ``max_row`` is the newest row id (every row change takes a new id, so the rows after
    a sync point are everything changed since). ``sync_point`` is how far this replica
    has merged the rows of the replica that asked (the asker's ``db_id``): its highest row
    id merged here, -1 if none yet (Swift's ``incoming_sync`` table).
    """

    db_id: str
    max_row: int
    status: DatabaseStatus
    sync_point: int = -1
    rows_hash: str = ""
    """The XOR of every row's md5 (`db_base.chexor`): equal on replicas with equal rows."""
