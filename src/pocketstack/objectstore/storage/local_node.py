"""LocalNode: the StorageNode contract (`node`) on this host's devices.

Every disk or SQLite call runs in a worker thread (`threads`: object reads on the ``read``
pool, everything else on the ``io`` pool); the event loop only moves bytes between the
caller and those threads. Hops are batched: a PUT reads up to ``chunk_size`` bytes of the
body before its first hop, so an object of at most one chunk is checked, written, synced
and published in a single hop, and then a few chunks per hop; a GET opens the object and
reads ahead one read (`local_objects.READ_CHUNKS`) in its first hop, so a small object
needs no second one, and reads the next one while the previous one is being sent. The
same small write on several devices (``put_object_replicas``, ``post_object_replicas``,
``delete_object_replicas``) takes one hop for all of them when every ``io`` thread is
busy. Foreign errors that escape the layers below (OSError, sqlite3.Error) are mapped
here, ``raise ... from exc``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, ParamSpec, TypeVar

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import async_pending, fsutil
from pocketstack.objectstore.storage.diskfile import DEFAULT_CHUNK_SIZE, ONE_WEEK, DiskFileManager
from pocketstack.objectstore.storage.diskfile_io import SharedDigest
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    ClientDisconnect,
    DatabaseError,
    StorageError,
)
from pocketstack.objectstore.storage.listing_batches import Key as ListingKey
from pocketstack.objectstore.storage.listing_batches import ListingBatches
from pocketstack.objectstore.storage.local_dbs import DEFAULT_CACHE_SIZE, DatabaseWork
from pocketstack.objectstore.storage.local_objects import (
    ObjectAddress,
    ObjectRead,
    ObjectWork,
    Upload,
)
from pocketstack.objectstore.storage.local_replication import LocalReplication
from pocketstack.objectstore.storage.node import each_device
from pocketstack.objectstore.storage.threads import (
    DEFAULT_IO_THREADS,
    DEFAULT_READ_THREADS,
    ThreadPools,
)
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
    ListingQuery,
    ObjectBody,
    ObjectInfo,
    ObjectRecord,
    RenderedListing,
)
from pocketstack.objectstore.timestamp import Timestamp

WRITE_BATCH_CHUNKS: Final = 4
"""After the first batch (one chunk: a small object is one hop), an upload gathers this
many chunks per thread hop: fewer hops per byte, still well within the proxy's `Tee` lag
(8 chunks), so the replica writers do not wait on each other to fill a batch."""
LOG = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
_END: Final = object()
_NOT_RUN: Final = object()


def _addresses(devices: Sequence[str], partition: int, account: str, container: str,
               obj: str, policy: int) -> list[ObjectAddress]:
    """One object's address on each of ``devices``."""
    return [ObjectAddress(d, partition, account, container, obj, policy) for d in devices]


def _length_error(received: int, content_length: int | None, *, ended: bool
                  ) -> StorageError | None:
    """What is wrong with a body of ``received`` bytes so far (all of it if ``ended``)
    that announced ``content_length``, if anything."""
    if content_length is None:
        return None
    if content_length < 0:
        return BadRequest("negative Content-Length")
    if received > content_length:
        return BadRequest(f"body longer than Content-Length {content_length}")
    if ended and received < content_length:
        return ClientDisconnect(f"body ended after {received} of {content_length} bytes")
    return None


class _DeviceBatch:
    """Steps on several devices in one thread hop, one device after the other. `stop`
    (from the loop, once the caller's deadline passed) keeps the steps not begun from
    starting, and tells which one is under way."""

    def __init__(self, step: Callable[[ObjectAddress], Any], addresses: list[ObjectAddress]
                 ) -> None:
        self._step = step
        self._addresses = addresses
        self._results: list[Any] = [_NOT_RUN] * len(addresses)
        self._under_way: int | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def run(self) -> list[Any]:
        for i, address in enumerate(self._addresses):
            with self._lock:
                if self._stopped:
                    break
                self._under_way = i
            try:
                result = _guarded(self._step, address)
            except Exception as exc:  # this device's failure, not the others'
                result = exc
            with self._lock:
                self._results[i] = result
                self._under_way = None
        return self._results

    def stop(self) -> tuple[list[Any], int | None]:
        """(the results so far, the index of the step under way)."""
        with self._lock:
            self._stopped = True
            return list(self._results), self._under_way


def _guarded(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``func(*args, **kwargs)``, with foreign errors mapped to storage exceptions (a
    function, not a decorator: no wrapper is built per call)."""
    try:
        return func(*args, **kwargs)
    except StorageError:
        raise
    except OSError as exc:
        raise fsutil.os_error(exc, getattr(func, "__name__", "")) from exc
    except sqlite3.Error as exc:
        raise DatabaseError(str(exc)) from exc


class LocalNode(LocalReplication):
    """This host's devices under ``devices_root``: see `node` for the contract (the
    replication operations are in `local_replication`)."""

    def __init__(
        self,
        devices_root: str | os.PathLike[str],
        *,
        hasher: PathHasher,
        read_threads: int = DEFAULT_READ_THREADS,
        io_threads: int = DEFAULT_IO_THREADS,
        fsync: bool = True,
        check_mount: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        db_synchronous: str = "NORMAL",
        db_cache_size: int = DEFAULT_CACHE_SIZE,
        reclaim_age: float = ONE_WEEK,
    ) -> None:
        self.devices = fsutil.Devices(devices_root, check_mount=check_mount)
        self.hasher = hasher
        self.fsync = fsync
        self.chunk_size = chunk_size
        self.diskfiles = DiskFileManager(
            devices_root,
            hasher=hasher,
            fsync=fsync,
            check_mount=check_mount,
            chunk_size=chunk_size,
            reclaim_age=reclaim_age,
        )
        self.objects = ObjectWork(self.diskfiles)
        self.databases = DatabaseWork(
            self.devices, hasher, fsync=fsync, synchronous=db_synchronous, cache_size=db_cache_size
        )
        self._background: set[asyncio.Future[None]] = set()
        self.threads = ThreadPools(read_threads=read_threads, io_threads=io_threads)
        self._listings = ListingBatches(
            functools.partial(self.threads.run, "io"),
            functools.partial(_guarded, self._merge_listings),
        )

    async def _run(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``func`` on an ``io`` thread (never in the loop)."""
        return await self.threads.run("io", functools.partial(_guarded, func, *args, **kwargs))

    async def _read(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``func`` on a ``read`` thread: an object's open or metadata read."""
        return await self.threads.run("read", functools.partial(_guarded, func, *args, **kwargs))

    async def close(self) -> None:
        saved = await self._run(self.diskfiles.save_hashes)
        if saved:
            LOG.info("saved the suffix hashes of %d partitions", saved)
        await self._run(self.databases.close)
        if not await self.threads.aclose():
            LOG.warning("storage threads still busy at shutdown")

    # -- objects ----------------------------------------------------------------------

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
    ) -> ObjectInfo:
        if content_length is not None and content_length < 0:
            raise BadRequest("negative Content-Length")
        address = ObjectAddress(device, partition, account, container, obj, policy)
        source = aiter(body)
        parts, done = await self._read_parts(source, 0, content_length, self.chunk_size)
        if done:
            return await self._run(
                self.objects.put_small, address, timestamp, metadata, b"".join(parts)
            )
        upload = await self._begin_upload(
            address, timestamp, metadata, content_length, parts, body_digest
        )
        received = sum(len(p) for p in parts)
        try:
            while not done:
                parts, done = await self._read_parts(
                    source, received, content_length, WRITE_BATCH_CHUNKS * self.chunk_size
                )
                received += sum(len(p) for p in parts)
                if parts:
                    await self._run(upload.write, parts)
            return await self._run(upload.finish)
        except BaseException:
            await asyncio.shield(self._run(upload.abort))
            raise

    async def _begin_upload(
        self,
        address: ObjectAddress,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
        content_length: int | None,
        first: list[bytes],
        digest: SharedDigest | None,
    ) -> Upload:
        """Open the upload; if cancelled meanwhile, abort it once its thread is done."""
        started = asyncio.ensure_future(
            self._run(
                self.objects.begin_upload,
                address,
                timestamp,
                metadata,
                content_length,
                first,
                digest,
            )
        )
        try:
            return await asyncio.shield(started)
        except asyncio.CancelledError:
            started.add_done_callback(self._abort_when_started)
            raise

    def _abort_when_started(self, started: asyncio.Future[Any]) -> None:
        if not started.cancelled() and started.exception() is None:
            task = asyncio.ensure_future(self._run(started.result().abort))
            self._background.add(task)  # a strong reference until it is done
            task.add_done_callback(self._background.discard)

    async def _read_batch(
        self, source: AsyncIterator[bytes], received: int, content_length: int | None
    ) -> tuple[bytes, bool]:
        """Up to about ``chunk_size`` bytes of the body, and whether it ended."""
        parts, done = await self._read_parts(source, received, content_length, self.chunk_size)
        return b"".join(parts), done

    async def _read_parts(
        self, source: AsyncIterator[bytes], received: int, content_length: int | None, limit: int
    ) -> tuple[list[bytes], bool]:
        """The body's next pieces, about ``limit`` bytes, and whether it ended (kept as
        pieces: the thread writes them with one writev, and a shared digest hashes them
        as the other replicas' writers see them)."""
        parts: list[bytes] = []
        size = 0
        done = False
        while size < limit:
            chunk = await anext(source, _END)
            if chunk is _END:
                done = True
                break
            parts.append(chunk)  # type: ignore[arg-type]
            size += len(chunk)  # type: ignore[arg-type]
        problem = _length_error(received + size, content_length, ended=done)
        if problem is not None:
            raise problem
        return parts, done

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
    ) -> tuple[ObjectInfo, ObjectBody]:
        address = ObjectAddress(device, partition, account, container, obj, policy)
        read = await self._read(self.objects.get, address, ranges)
        return read.info, _ThreadedBody(self._run, read)

    async def head_object(
        self, device: str, partition: int, account: str, container: str, obj: str, *, policy: int
    ) -> ObjectInfo:
        address = ObjectAddress(device, partition, account, container, obj, policy)
        return await self._read(self.objects.head, address)

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
    ) -> ObjectInfo:
        address = ObjectAddress(device, partition, account, container, obj, policy)
        return await self._run(self.objects.post, address, timestamp, metadata)

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
    ) -> bool:
        address = ObjectAddress(device, partition, account, container, obj, policy)
        return await self._run(self.objects.delete, address, timestamp)

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
        problem = _length_error(len(body), content_length, ended=True)
        if problem is not None:
            return [problem for _ in devices]
        digest = SharedDigest()  # every device writes the same chunk: hashed once
        return await self._on_devices(
            _addresses(devices, partition, account, container, obj, policy),
            lambda address: self.objects.put_small(address, timestamp, metadata, body, digest),
            timeout,
        )

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
        return await self._on_devices(
            _addresses(devices, partition, account, container, obj, policy),
            lambda address: self.objects.post(address, timestamp, metadata),
            timeout,
        )

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
        return await self._on_devices(
            _addresses(devices, partition, account, container, obj, policy),
            lambda address: self.objects.delete(address, timestamp),
            timeout,
        )

    async def _on_devices(
        self,
        addresses: list[ObjectAddress],
        step: Callable[[ObjectAddress], R],
        timeout: float | None,
    ) -> list[R | Exception]:
        """``step(address)`` for each of one object's addresses (one per device), each
        device's result or exception.

        While ``io`` threads are free, one hop per device, all at once: their fsyncs
        overlap, and a lone request is answered sooner. When every thread is busy,
        spreading the devices over them buys no parallelism, only hand-offs between
        threads, so the devices go in one hop, one after the other (docs/performance.md,
        "One hop for a node's replicas"). A device whose step is under way when
        ``timeout`` passes gives TimeoutError; the ones after it have not started, and get
        hops of their own. A caller that is cancelled stops the devices not begun.
        """
        def alone(address: ObjectAddress) -> Awaitable[R]:
            return self._run(step, address)

        if len(addresses) < 2 or self.threads.idle("io") >= len(addresses):
            return await each_device(addresses, alone, timeout)
        batch = _DeviceBatch(step, addresses)
        try:
            async with asyncio.timeout(timeout):
                return await self.threads.run("io", batch.run)
        except TimeoutError:
            results, under_way = batch.stop()
        except BaseException:  # cancelled: the devices not begun are not written (as a
            batch.stop()       # queued hop of one device is not run)
            raise
        if under_way is not None:
            device = addresses[under_way].device
            results[under_way] = TimeoutError(f"{device}: no answer in {timeout} s")
        waiting = [i for i, result in enumerate(results) if result is _NOT_RUN]
        again = await each_device([addresses[i] for i in waiting], alone, timeout)
        for i, result in zip(waiting, again, strict=True):
            results[i] = result
        return results

    # -- containers -------------------------------------------------------------------

    def _container_call(
        self, device: str, partition: int, account: str, container: str, method: Callable[..., R]
    ) -> Callable[..., R]:
        def call(*args: object) -> R:
            broker = self.databases.container_broker(device, partition, account, container)
            return method(broker, *args)

        return call

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
    ) -> bool:
        call = self._container_call(
            device, partition, account, container, self.databases.put_container
        )
        return await self._run(call, timestamp, policy_index, metadata)

    async def head_container(
        self, device: str, partition: int, account: str, container: str
    ) -> ContainerInfo:
        call = self._container_call(
            device, partition, account, container, self.databases.container_info
        )
        return await self._run(call)

    async def post_container(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> None:
        call = self._container_call(
            device, partition, account, container, self.databases.post_container
        )
        await self._run(call, timestamp, metadata)

    async def delete_container(
        self, device: str, partition: int, account: str, container: str, *, timestamp: Timestamp
    ) -> None:
        call = self._container_call(
            device, partition, account, container, self.databases.delete_container
        )
        await self._run(call, timestamp)

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
    ) -> ContainerListing:
        query = ListingQuery(limit, marker, end_marker, prefix, delimiter, path, reverse)
        call = self._container_call(
            device, partition, account, container, self.databases.list_objects
        )
        return await self._run(call, query)

    async def list_objects_json(
        self, device: str, partition: int, account: str, container: str, query: ListingQuery
    ) -> RenderedListing | None:
        call = self._container_call(
            device, partition, account, container, self.databases.list_objects_json
        )
        return await self._run(call, query)

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
    ) -> None:
        record = ObjectRecord(obj, timestamp, size, content_type, etag, deleted, policy_index)
        await self._listings.update((device, partition, account, container), record)

    def _merge_listings(self, key: ListingKey, records: list[ObjectRecord]) -> None:
        broker = self.databases.container_broker(*key)
        self.databases.update_container_listing(broker, records)

    # -- accounts ---------------------------------------------------------------------

    def _account_call(
        self, device: str, partition: int, account: str, method: Callable[..., R]
    ) -> Callable[..., R]:
        def call(*args: object) -> R:
            return method(self.databases.account_broker(device, partition, account), *args)

        return call

    async def put_account(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        call = self._account_call(device, partition, account, self.databases.put_account)
        return await self._run(call, timestamp, metadata)

    async def head_account(self, device: str, partition: int, account: str) -> AccountInfo:
        call = self._account_call(device, partition, account, self.databases.account_info)
        return await self._run(call)

    async def post_account(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> None:
        call = self._account_call(device, partition, account, self.databases.post_account)
        await self._run(call, timestamp, metadata)

    async def delete_account(
        self, device: str, partition: int, account: str, *, timestamp: Timestamp
    ) -> None:
        call = self._account_call(device, partition, account, self.databases.delete_account)
        await self._run(call, timestamp)

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
    ) -> AccountListing:
        query = ListingQuery(limit, marker, end_marker, prefix, delimiter, None, reverse)
        call = self._account_call(device, partition, account, self.databases.list_containers)
        return await self._run(call, query)

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
    ) -> None:
        record = ContainerRecord(
            container,
            put_timestamp,
            delete_timestamp,
            object_count,
            bytes_used,
            False,
            policy_index,
        )
        call = self._account_call(device, partition, account, self.databases.update_account_listing)
        await self._run(call, record)

    # -- async pendings ---------------------------------------------------------------

    async def write_async_pending(self, device: str, policy: int, update: ContainerUpdate) -> None:
        await self._run(
            async_pending.write_pending,
            self.devices,
            self.hasher,
            device,
            policy,
            update,
            fsync=self.fsync,
        )

    async def iter_async_pendings(
        self, device: str, policy: int | None = None
    ) -> AsyncIterator[AsyncPending]:
        dirs = await self._run(async_pending.list_pending_dirs, self.devices, device, policy)
        for relative_dir in dirs:
            pendings = await self._run(
                async_pending.read_pendings, self.devices, device, relative_dir
            )
            for pending in pendings:
                yield pending

    async def remove_async_pending(self, device: str, pending_id: str) -> None:
        await self._run(async_pending.remove_pending, self.devices, device, pending_id)


class _ThreadedBody:
    """An ObjectBody over a DiskFileReader: the chunks read ahead first, then one hop
    each, the next chunk read (and hashed) in its thread while the caller sends this one."""

    def __init__(self, run: Callable[..., object], read: ObjectRead) -> None:
        self._run = run
        self._read = read
        self._buffer = deque(read.prefetched)
        self._done = read.done
        self._lock = threading.Lock()
        self._ahead: asyncio.Future[bytes | None] | None = None
        self.ranges = read.reader.ranges

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    @property
    def exhausted(self) -> bool:
        """Nothing is left to read: the chunk just returned was the last one."""
        return self._done and not self._buffer and self._ahead is None

    async def __anext__(self) -> bytes:
        if self._buffer:
            chunk = self._buffer.popleft()
            if not self._buffer:
                self._read_ahead()
            return chunk
        self._read_ahead()
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            raise StopAsyncIteration
        read = await ahead
        if read is None:
            raise StopAsyncIteration
        self._read_ahead()
        return read

    def _read_ahead(self) -> None:
        if self._ahead is None and not self._done:
            run: Callable[..., Awaitable[bytes | None]] = self._run  # type: ignore[assignment]
            self._ahead = asyncio.ensure_future(run(self._next_chunk))

    def _next_chunk(self) -> bytes | None:
        with self._lock:
            if self._done:
                return None
            try:
                chunk = next(self._read.chunks, None)
            except BaseException:
                self._done = True
                raise
            if chunk is None:
                self._done = True
            return chunk

    async def aclose(self) -> None:
        self._buffer.clear()
        ahead, self._ahead = self._ahead, None
        if ahead is not None:  # let it finish (it holds the reader), and drop its outcome
            await asyncio.wait([ahead])
            if not ahead.cancelled():
                ahead.exception()
        if not self._done:
            await self._run(self._close)  # type: ignore[misc]

    def _close(self) -> None:
        with self._lock:
            self._done = True
            self._read.reader.close()
