"""The StorageNode contract: what the proxy asks of one replica, on this host or another.

The proxy picks devices from the ring and calls one StorageNode per replica. Two
transports implement the same contract: `LocalNode` (``local_node.py``: this host's disks
and SQLite files, worked on in threads) and `RemoteNode` (``remote_node.py``: HTTP to
a ``storage-node`` server, ``objectstore/server/``). So everything crossing this seam is
plain data: str, int, bool, `Timestamp`, frozen dataclasses from `types`, bodies as async
iterators of bytes, and outcomes as the named exceptions of `exceptions` (each with its
HTTP ``status``).

Every operation addresses a ``device`` (a name under the devices root) and a ``partition``
(from the ring) and raises DeviceUnavailable (507) if the device is missing or unmounted,
and DiskFileNoSpace (507) if it is full. ``timestamp`` is the proxy's X-Timestamp for the
request: on every entity the newest timestamp wins, whatever order requests land in.

Objects (``policy`` = storage policy index; ``metadata`` maps header names to values,
keys are stored Title-Cased, ``ETag`` as such):

``put_object(device, partition, account, container, obj, *, policy, timestamp, metadata,
body, content_length=None, body_digest=None) -> ObjectInfo``
    Streams ``body`` (an async iterable of bytes) to disk while computing its md5
    (``body_digest``: a `diskfile_io.SharedDigest` the caller shares between the replica
    writes of one body whose chunks are the same objects; a node in the caller's process
    may hash each chunk once for all of them, a remote node ignores it). The
    object becomes visible only once the whole body arrived: fewer bytes than
    ``content_length`` -> ClientDisconnect (499), more -> BadRequest (400); an ETag in
    ``metadata`` that differs from the md5 -> EtagMismatch (422); an equal or newer
    version (or tombstone) present -> Conflict (409, ``timestamp`` = the existing one).
    An exception raised by ``body`` aborts the write and propagates unchanged.
    ``Content-Type`` defaults to ``application/octet-stream``.
``get_object(..., *, policy, ranges=None) -> (ObjectInfo, ObjectBody)``
    ``ranges``: byte ranges as in `types.ByteRange` (absolute ``(start, stop)`` with stop
    exclusive; suffix and open-ended ranges allowed); the body carries the bytes of the
    satisfiable ranges in order (``body.ranges`` lists them), or the whole object. A
    whole read is verified: a corrupt object raises DiskFileQuarantined (404) from the
    body before its last chunk. Close the body (``aclose``) when not reading it to the end.
    Raises NotFound subclasses: DiskFileNotExist, DiskFileDeleted (``timestamp``),
    DiskFileExpired, DiskFileQuarantined; RangeNotSatisfiable (416, ``content_length``).
``head_object(..., *, policy) -> ObjectInfo``: as get_object, without a body.
``post_object(..., *, policy, timestamp, metadata) -> ObjectInfo``
    Replaces the user metadata (see `hashdir.merge_metadata`). NotFound as above;
    Conflict if the object's last-modified timestamp is equal or newer.
``delete_object(..., *, policy, timestamp) -> bool``
    Writes a tombstone; returns whether a live (unexpired) object was there (the proxy
    answers 204 or 404). Conflict if an equal or newer version or tombstone exists.
``put_object_replicas(devices, partition, account, container, obj, *, policy,
timestamp, metadata, body, content_length=None, timeout=None) -> [ObjectInfo | Exception]``
``post_object_replicas(devices, ..., *, policy, timestamp, metadata, timeout=None)
-> [ObjectInfo | Exception]``
``delete_object_replicas(devices, ..., *, policy, timestamp, timeout=None)
-> [bool | Exception]``
    The same write on several ``devices`` of this node (a body already in hand, as
    ``bytes``): per device, in order, what the single-device operation returns or the
    exception it raises (each device succeeds or fails on its own), and TimeoutError for
    a device whose write took longer than ``timeout`` seconds. The default runs the
    single-device operations at once; `LocalNode` runs them in one thread hop when its
    threads are busy (the proxy's PUT of a small object, its POST and its DELETE, when
    every replica is on one node).

Containers (``metadata``: ``{header: value}`` stamped with ``timestamp``, newest wins per
key, an empty value removes the key):

``put_container(device, partition, account, container, *, timestamp, policy_index=None,
metadata=None) -> bool``: creates (True) or updates (False) the container. Reviving a
    deleted container counts as creating it. Conflict if it exists with another policy
    index, or if a newer DELETE keeps it deleted. ``policy_index=None``: keep the
    existing one (0 for a new container).
``head_container(...) -> ContainerInfo``: ContainerNotFound (missing or deleted).
``post_container(..., *, timestamp, metadata) -> None``: ContainerNotFound; like Swift,
    a POST also advances ``put_timestamp`` (what Last-Modified shows).
``delete_container(..., *, timestamp) -> None``: ContainerNotFound; Conflict if it holds
    objects or a newer PUT keeps it alive.
``list_objects(..., *, limit, marker, end_marker, prefix, delimiter, path, reverse)
-> ContainerListing``: info plus one page (Swift semantics, see `listing`).
``list_objects_json(..., query: ListingQuery) -> RenderedListing | None``
    The same page (no delimiter) as Swift's JSON listing, if the node can write it
    faster than the caller renders rows (`listing_json`; a remote node asks its server);
    None otherwise, and the caller asks ``list_objects``.
``update_container_listing(device, partition, account, container, obj, *, timestamp,
size, content_type, etag, deleted=False, policy_index=0) -> None``
    The object server's update of the container's listing (a DELETE is ``deleted``).
    ContainerNotFound if the database does not exist (deleted ones still accept rows).

Accounts:

``put_account(device, partition, account, *, timestamp, metadata=None) -> bool``
    True if created (or revived). Forbidden (403) once a DELETE marked it for the reaper;
    Conflict if a newer DELETE keeps it deleted.
``head_account(...) -> AccountInfo``: AccountNotFound (``status_deleted`` when deleted
    by a DELETE).
``post_account(..., *, timestamp, metadata) -> None``; ``delete_account(..., *,
timestamp) -> None``: AccountNotFound.
``list_containers(..., *, limit, marker, end_marker, prefix, delimiter, reverse)
-> AccountListing``
``update_account_listing(device, partition, account, container, *, put_timestamp,
delete_timestamp, object_count, bytes_used, policy_index=0) -> None``
    A container's report to its account; the container row counts as deleted when
    ``delete_timestamp > put_timestamp`` and ``object_count == 0``. AccountNotFound.

Async pendings (container updates that failed, kept for the updater):

``write_async_pending(device, policy, update) -> None`` (atomic; one file per object and
timestamp); ``iter_async_pendings(device, policy=None) -> AsyncIterator[AsyncPending]``;
``remove_async_pending(device, pending_id) -> None``.

Replication (what the replicator and auditor ask of a device: `types` for the data; see
``objectstore/daemons``). ``kind`` is ``"objects"`` (with ``policy``), ``"containers"``
or ``"accounts"``; a ``ref`` is a `DatabaseRef` (an account, or an account's container):

``list_partitions(device, kind, *, policy=0) -> list[int]``: the partitions the device
    holds data of, ascending.
``get_hashes(device, partition, *, policy, suffixes=None) -> {suffix: md5}``: a digest per
    suffix dir (all, or those named) of the live object files it holds; two replicas of a
    suffix hold the same files exactly when their digests are equal. Empty suffixes are
    left out; tombstones older than the node's reclaim age are removed on the way.
``list_object_stamps(device, partition, *, policy, suffixes=None) -> list[ObjectStamp]``:
    each object's live file names (what `hashdir.resolve` keeps), by hash.
``get_object_file(device, partition, name_hash, filename, *, policy) -> (ObjectFile,
ObjectBody)``: one file as stored: its metadata and its body (empty but for a ``.data``).
    A ``.data`` body is verified like a whole GET (a corrupt file raises
    DiskFileQuarantined, from the call for a body of one chunk, else from the body before
    its last chunk); a corrupt trailer is quarantined at once.
    DiskFileNotExist if that file is gone (a newer one replaced it). Close the body if
    not reading it to the end.
``put_object_file(device, partition, file, body, *, policy) -> bool``: store a file *as
    is* (same name, metadata and body, so the same bytes), as `get_object_file` gave it.
    BadRequest if ``file`` is inconsistent (name vs timestamp, name vs hash, length vs
    metadata), ClientDisconnect for a short body, EtagMismatch if a ``.data`` body's md5
    is not its ETag: a damaged copy is never stored. Then the newest file wins as for any
    write (`hashdir`); returns whether the file counts afterwards (False: the device
    already had it, or something newer).
``remove_objects(device, partition, stamps, *, policy) -> int``: handoff cleanup: removes
    each object whose live files are still exactly its stamp's (a write that landed since
    keeps it), then emptied suffix and partition dirs; how many objects went.

``list_databases(device, partition, kind) -> list[DatabaseRef]``: whose databases the
    partition holds (a corrupt one is quarantined and left out).
``get_db_state(device, partition, ref, *, remote_id=None) -> DatabaseState``: id, newest
    row id, status with metadata timestamps, and how far it has merged ``remote_id``'s rows
    (``sync_point``, -1 if never). NotFound subclass if there is no database (a deleted
    one is found: tombstones replicate).
``get_db_rows(device, partition, ref, *, since, limit) -> [(row id, record)]``: rows
    changed after row id ``since`` (tombstones included), oldest first; records are
    ObjectRecord (containers) or ContainerRecord (accounts).
``merge_db(device, partition, ref, *, source_id, status, rows, sync_point) -> DatabaseState``
    Merges another replica's status (`db_base.merge_status`) and rows (newest wins, as
    listing updates) and records ``source_id``'s sync point, in one transaction; creates
    the database if missing. Returns the state as seen by ``source_id``.
``remove_db(device, partition, ref, *, expected) -> bool``: handoff cleanup: deletes the
    database if its id, newest row and status are still ``expected``'s.
``reclaim_db(device, partition, ref, *, before) -> bool``: drops tombstone rows and
    removed metadata older than ``before``; deletes the database if it was deleted (and
    is empty) before then. True if the database is gone.

``close()`` releases threads and open databases; nodes are async context managers.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

from pocketstack.objectstore.storage.diskfile_io import SharedDigest
from pocketstack.objectstore.storage.types import (
    DEFAULT_LISTING_LIMIT,
    AccountInfo,
    AccountListing,
    AsyncPending,
    ByteRange,
    ContainerInfo,
    ContainerListing,
    ContainerRecord,
    ContainerUpdate,
    DatabaseRef,
    DatabaseState,
    DatabaseStatus,
    DataKind,
    ListingQuery,
    ObjectBody,
    ObjectFile,
    ObjectInfo,
    ObjectRecord,
    ObjectStamp,
    RenderedListing,
)
from pocketstack.objectstore.timestamp import Timestamp

DbRecord = ObjectRecord | ContainerRecord
"""A database row: an ObjectRecord (container databases) or a ContainerRecord (accounts)."""
R = TypeVar("R")
D = TypeVar("D")


async def each_device(devices: Sequence[D], step: Callable[[D], Awaitable[R]],
                      timeout: float | None) -> list[R | Exception]:
    """``step(device)`` for every device (a name, or an address on it) at once, each
    within ``timeout`` seconds: its result or the exception it raised (TimeoutError past
    the deadline), in order."""

    async def one(device: D) -> R | Exception:
        try:
            async with asyncio.timeout(timeout):
                return await step(device)
        except Exception as exc:  # this device's failure, not the others'
            return exc

    return list(await asyncio.gather(*(one(device) for device in devices)))


async def one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


class StorageNode(abc.ABC):
    """One storage host's operations (see the module docstring for the full contract)."""

    # -- objects ----------------------------------------------------------------------

    @abc.abstractmethod
    async def put_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
        body: AsyncIterable[bytes],
        content_length: int | None = None,
        body_digest: SharedDigest | None = None,
    ) -> ObjectInfo: ...

    @abc.abstractmethod
    async def get_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        ranges: list[ByteRange] | None = None,
    ) -> tuple[ObjectInfo, ObjectBody]: ...

    @abc.abstractmethod
    async def head_object(
        self, device: str, partition: int, account: str, container: str, obj: str, *, policy: int
    ) -> ObjectInfo: ...

    @abc.abstractmethod
    async def post_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> ObjectInfo: ...

    @abc.abstractmethod
    async def delete_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
    ) -> bool: ...

    async def put_object_replicas(
        self,
        devices: Sequence[str],
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
        body: bytes,
        content_length: int | None = None,
        timeout: float | None = None,
    ) -> list[ObjectInfo | Exception]:
        """`put_object` of a body in hand on each of ``devices`` (see the module docstring)."""
        return await each_device(devices, lambda device: self.put_object(
            device, partition, account, container, obj, policy=policy, timestamp=timestamp,
            metadata=metadata, body=one_chunk(body), content_length=content_length), timeout)

    async def post_object_replicas(
        self,
        devices: Sequence[str],
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
        timeout: float | None = None,
    ) -> list[ObjectInfo | Exception]:
        """`post_object` on each of ``devices`` (see the module docstring)."""
        return await each_device(devices, lambda device: self.post_object(
            device, partition, account, container, obj, policy=policy, timestamp=timestamp,
            metadata=metadata), timeout)

    async def delete_object_replicas(
        self,
        devices: Sequence[str],
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
        timeout: float | None = None,
    ) -> list[bool | Exception]:
        """`delete_object` on each of ``devices`` (see the module docstring)."""
        return await each_device(devices, lambda device: self.delete_object(
            device, partition, account, container, obj, policy=policy, timestamp=timestamp),
            timeout)

    # -- containers -------------------------------------------------------------------

    @abc.abstractmethod
    async def put_container(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        timestamp: Timestamp,
        policy_index: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bool: ...

    @abc.abstractmethod
    async def head_container(
        self, device: str, partition: int, account: str, container: str
    ) -> ContainerInfo: ...

    @abc.abstractmethod
    async def post_container(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> None: ...

    @abc.abstractmethod
    async def delete_container(
        self, device: str, partition: int, account: str, container: str, *, timestamp: Timestamp
    ) -> None: ...

    @abc.abstractmethod
    async def list_objects(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        limit: int = DEFAULT_LISTING_LIMIT,
        marker: str = "",
        end_marker: str = "",
        prefix: str | None = None,
        delimiter: str | None = None,
        path: str | None = None,
        reverse: bool = False,
    ) -> ContainerListing: ...

    async def list_objects_json(
        self, device: str, partition: int, account: str, container: str, query: ListingQuery
    ) -> RenderedListing | None:
        """The page `list_objects` gives for ``query`` (no delimiter) as Swift's JSON
        listing, when this node can write it faster than the caller renders the rows; None
        when it cannot (or does not offer it: the default), and the caller asks
        `list_objects`. A node that renders raises what `list_objects` raises."""
        return None

    @abc.abstractmethod
    async def update_container_listing(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        timestamp: Timestamp,
        size: int,
        content_type: str,
        etag: str,
        deleted: bool = False,
        policy_index: int = 0,
    ) -> None: ...

    # -- accounts ---------------------------------------------------------------------

    @abc.abstractmethod
    async def put_account(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str] | None = None,
    ) -> bool: ...

    @abc.abstractmethod
    async def head_account(self, device: str, partition: int, account: str) -> AccountInfo: ...

    @abc.abstractmethod
    async def post_account(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> None: ...

    @abc.abstractmethod
    async def delete_account(
        self, device: str, partition: int, account: str, *, timestamp: Timestamp
    ) -> None: ...

    @abc.abstractmethod
    async def list_containers(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        limit: int = DEFAULT_LISTING_LIMIT,
        marker: str = "",
        end_marker: str = "",
        prefix: str | None = None,
        delimiter: str | None = None,
        reverse: bool = False,
    ) -> AccountListing: ...

    @abc.abstractmethod
    async def update_account_listing(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        put_timestamp: Timestamp,
        delete_timestamp: Timestamp,
        object_count: int,
        bytes_used: int,
        policy_index: int = 0,
    ) -> None: ...

    # -- async pendings ---------------------------------------------------------------

    @abc.abstractmethod
    async def write_async_pending(
        self, device: str, policy: int, update: ContainerUpdate
    ) -> None: ...

    @abc.abstractmethod
    def iter_async_pendings(
        self, device: str, policy: int | None = None
    ) -> AsyncIterator[AsyncPending]: ...

    @abc.abstractmethod
    async def remove_async_pending(self, device: str, pending_id: str) -> None: ...

    # -- replication -------------------------------------------------------------------

    @abc.abstractmethod
    async def list_partitions(
        self, device: str, kind: DataKind, *, policy: int = 0
    ) -> list[int]: ...

    @abc.abstractmethod
    async def get_hashes(
        self,
        device: str,
        partition: int,
        *,
        policy: int = 0,
        suffixes: Sequence[str] | None = None,
    ) -> dict[str, str]: ...

    @abc.abstractmethod
    async def list_object_stamps(
        self,
        device: str,
        partition: int,
        *,
        policy: int = 0,
        suffixes: Sequence[str] | None = None,
    ) -> list[ObjectStamp]: ...

    @abc.abstractmethod
    async def get_object_file(
        self, device: str, partition: int, name_hash: str, filename: str, *, policy: int = 0
    ) -> tuple[ObjectFile, ObjectBody]: ...

    @abc.abstractmethod
    async def put_object_file(
        self,
        device: str,
        partition: int,
        file: ObjectFile,
        body: AsyncIterable[bytes],
        *,
        policy: int = 0,
    ) -> bool: ...

    @abc.abstractmethod
    async def remove_objects(
        self, device: str, partition: int, stamps: Sequence[ObjectStamp], *, policy: int = 0
    ) -> int: ...

    @abc.abstractmethod
    async def list_databases(
        self, device: str, partition: int, kind: DataKind
    ) -> list[DatabaseRef]: ...

    @abc.abstractmethod
    async def get_db_state(
        self, device: str, partition: int, ref: DatabaseRef, *, remote_id: str | None = None
    ) -> DatabaseState: ...

    @abc.abstractmethod
    async def get_db_rows(
        self, device: str, partition: int, ref: DatabaseRef, *, since: int, limit: int
    ) -> list[tuple[int, DbRecord]]: ...

    @abc.abstractmethod
    async def merge_db(
        self,
        device: str,
        partition: int,
        ref: DatabaseRef,
        *,
        source_id: str,
        status: DatabaseStatus,
        rows: Sequence[DbRecord],
        sync_point: int,
    ) -> DatabaseState: ...

    @abc.abstractmethod
    async def remove_db(
        self, device: str, partition: int, ref: DatabaseRef, *, expected: DatabaseState
    ) -> bool: ...

    @abc.abstractmethod
    async def reclaim_db(
        self, device: str, partition: int, ref: DatabaseRef, *, before: Timestamp
    ) -> bool: ...

    # -- lifecycle ---------------------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources (threads, open databases)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
