"""The replication half of `LocalNode`: the replication operations of the StorageNode
contract (`node`), plus what only this host's daemons need (device reports, audits).

Every disk and SQLite step runs in a worker thread through ``_run``; the object work is
`replica_files`, the database work `local_dbs`. A received file streams in batches of
about ``chunk_size`` bytes per thread hop, as a PUT does.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from pocketstack.objectstore.storage import async_pending, fsutil
from pocketstack.objectstore.storage.diskfile import DiskFileManager
from pocketstack.objectstore.storage.exceptions import DeviceUnavailable, StorageError
from pocketstack.objectstore.storage.local_dbs import DatabaseWork
from pocketstack.objectstore.storage.node import DbRecord, StorageNode
from pocketstack.objectstore.storage.replica_files import FileUpload, OpenedFile, ReplicaFiles
from pocketstack.objectstore.storage.types import (
    DatabaseRef,
    DatabaseState,
    DatabaseStatus,
    DataKind,
    ObjectBody,
    ObjectFile,
    ObjectStamp,
)
from pocketstack.objectstore.timestamp import Timestamp

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class DeviceReport:
    """What one device holds, for ``pocketstack status`` (counted on disk)."""

    device: str
    available: bool
    partitions: dict[str, list[int]] = field(default_factory=dict)
    """Partitions per data dir (``accounts``, ``containers``, ``objects``, ``objects-1``)."""
    async_pendings: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    """Quarantined entries per data dir."""
    bytes_total: int = 0
    bytes_free: int = 0


def kind_dir(kind: DataKind, policy: int = 0) -> str:
    """The directory of a data kind on a device: ``objects-1`` for policy 1's objects."""
    if kind == "objects":
        return fsutil.policy_dir(fsutil.OBJECTS_DIR, policy)
    if kind not in (fsutil.ACCOUNTS_DIR, fsutil.CONTAINERS_DIR):
        raise ValueError(f"not a data kind: {kind!r}")
    return kind


class LocalReplication(StorageNode):
    """Replication on this host's devices; `LocalNode` supplies the attributes below."""

    diskfiles: DiskFileManager
    databases: DatabaseWork
    devices: fsutil.Devices
    chunk_size: int

    @abc.abstractmethod
    async def _run(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R: ...

    @abc.abstractmethod
    async def _read_batch(
        self, source: AsyncIterator[bytes], received: int, content_length: int | None
    ) -> tuple[bytes, bool]: ...

    @abc.abstractmethod
    def _abort_when_started(self, started: asyncio.Future[Any]) -> None: ...

    @property
    def replica_files(self) -> ReplicaFiles:
        return ReplicaFiles(self.diskfiles)

    # -- objects ----------------------------------------------------------------------

    async def list_partitions(self, device: str, kind: DataKind, *, policy: int = 0) -> list[int]:
        return await self._run(self.replica_files.list_partitions, device, kind_dir(kind, policy))

    async def get_hashes(
        self,
        device: str,
        partition: int,
        *,
        policy: int = 0,
        suffixes: Sequence[str] | None = None,
    ) -> dict[str, str]:
        return await self._run(self.diskfiles.get_hashes, device, partition, policy, suffixes)

    async def get_hashes_of(
        self, partitions: Sequence[tuple[str, int, int]]
    ) -> list[dict[str, str] | StorageError]:
        """`get_hashes` of several ``(device, partition, policy)`` in one thread hop (the
        replicator asks for all of a partition's replicas on this host at once); a failure
        is returned in its place, to be raised where that answer is used."""
        return await self._run(self._hashes_of, list(partitions))

    def _hashes_of(
        self, partitions: list[tuple[str, int, int]]
    ) -> list[dict[str, str] | StorageError]:
        answers: list[dict[str, str] | StorageError] = []
        for device, partition, policy in partitions:
            try:
                answers.append(self.diskfiles.get_hashes(device, partition, policy))
            except StorageError as exc:
                answers.append(exc)
            except OSError as exc:
                answers.append(fsutil.os_error(exc, "get_hashes"))
        return answers

    async def list_object_stamps(
        self,
        device: str,
        partition: int,
        *,
        policy: int = 0,
        suffixes: Sequence[str] | None = None,
    ) -> list[ObjectStamp]:
        return await self._run(self.replica_files.stamps, device, partition, policy, suffixes)

    async def get_object_file(
        self, device: str, partition: int, name_hash: str, filename: str, *, policy: int = 0
    ) -> tuple[ObjectFile, ObjectBody]:
        opened = await self._run(
            self.replica_files.open_file, device, partition, policy, name_hash, filename
        )
        return opened.file, _FileBody(self._run, opened)

    async def put_object_file(
        self,
        device: str,
        partition: int,
        file: ObjectFile,
        body: AsyncIterable[bytes],
        *,
        policy: int = 0,
    ) -> bool:
        source = aiter(body)
        data, done = await self._read_batch(source, 0, file.content_length)
        if done:  # a small file: checked, written and published in one hop
            work = self.replica_files.put_whole
            return await self._run(work, device, partition, policy, file, data)
        upload = await self._begin_file(device, partition, policy, file)
        received = len(data)
        try:
            await self._run(upload.write, data)
            while not done:
                data, done = await self._read_batch(source, received, file.content_length)
                received += len(data)
                if data:
                    await self._run(upload.write, data)
            return await self._run(upload.finish)
        except BaseException:
            await asyncio.shield(self._run(upload.abort))
            raise

    async def _begin_file(
        self, device: str, partition: int, policy: int, file: ObjectFile
    ) -> FileUpload:
        """Open the upload; if cancelled meanwhile, abort it once its thread is done."""
        work = self.replica_files.begin_upload
        started = asyncio.ensure_future(self._run(work, device, partition, policy, file))
        try:
            return await asyncio.shield(started)
        except asyncio.CancelledError:
            started.add_done_callback(self._abort_when_started)
            raise

    async def remove_objects(
        self, device: str, partition: int, stamps: Sequence[ObjectStamp], *, policy: int = 0
    ) -> int:
        return await self._run(self.replica_files.remove, device, partition, policy, stamps)

    # -- databases --------------------------------------------------------------------

    async def list_databases(
        self, device: str, partition: int, kind: DataKind
    ) -> list[DatabaseRef]:
        return await self._run(self.databases.list_databases, device, partition, kind)

    def _db_call(
        self, device: str, partition: int, ref: DatabaseRef, method: Callable[..., R]
    ) -> Callable[..., R]:
        def call(*args: Any) -> R:
            return method(self.databases.broker_for(device, partition, ref), *args)

        return call

    async def get_db_state(
        self, device: str, partition: int, ref: DatabaseRef, *, remote_id: str | None = None
    ) -> DatabaseState:
        call = self._db_call(device, partition, ref, self.databases.db_state)
        return await self._run(call, remote_id)

    async def get_db_rows(
        self, device: str, partition: int, ref: DatabaseRef, *, since: int, limit: int
    ) -> list[tuple[int, DbRecord]]:
        call = self._db_call(device, partition, ref, self.databases.db_rows)
        return await self._run(call, since, limit)

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
    ) -> DatabaseState:
        call = self._db_call(device, partition, ref, self.databases.merge_db)
        return await self._run(call, source_id, status, rows, sync_point)

    async def remove_db(
        self, device: str, partition: int, ref: DatabaseRef, *, expected: DatabaseState
    ) -> bool:
        call = self._db_call(device, partition, ref, self.databases.remove_db)
        return await self._run(call, expected)

    async def reclaim_db(
        self, device: str, partition: int, ref: DatabaseRef, *, before: Timestamp
    ) -> bool:
        call = self._db_call(device, partition, ref, self.databases.reclaim_db)
        return await self._run(call, before)

    # -- this host only: daemons and status ----------------------------------------------

    async def list_database_files(self, device: str, partition: int, kind: DataKind) -> list[str]:
        """Paths of a partition's database files (the auditor checks them by path)."""
        return await self._run(self.databases.database_files, device, partition, kind)

    async def audit_database(self, device: str, path: str, kind: DataKind) -> int:
        """``PRAGMA quick_check`` one database (bytes checked); DatabaseQuarantined if bad."""
        return await self._run(self.databases.audit_database, device, path, kind)

    async def clean_tmp(self, device: str, *, older_than: float) -> int:
        """Remove temp files left by crashes (older than ``older_than`` seconds)."""
        return await self._run(self.diskfiles.clean_tmp, device, older_than=older_than)

    async def describe_device(self, device: str, kinds: Sequence[str]) -> DeviceReport:
        """Partitions per data dir in ``kinds``, async pendings and quarantined entries."""
        return await self._run(_describe, self.devices, device, tuple(kinds))


def _describe(devices: fsutil.Devices, device: str, kinds: tuple[str, ...]) -> DeviceReport:
    try:
        path = devices.path(device)
    except DeviceUnavailable:
        return DeviceReport(device, False)
    partitions = {kind: _partitions(os.path.join(path, kind)) for kind in kinds}
    quarantine_root = os.path.join(path, fsutil.QUARANTINE_DIR)
    quarantined = {name: len(_names(os.path.join(quarantine_root, name)))
                   for name in _names(quarantine_root)}  # fmt: skip
    pendings = sum(
        len(_names(os.path.join(path, pending_dir)))
        for pending_dir in async_pending.list_pending_dirs(devices, device, None)
    )
    stat = os.statvfs(path)
    return DeviceReport(
        device, True, partitions, pendings, quarantined,
        stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize,
    )  # fmt: skip


def _names(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _partitions(path: str) -> list[int]:
    return sorted(int(name) for name in _names(path) if name.isdigit())


class _FileBody:
    """An ObjectBody over an opened replica file: read-ahead chunks, then one hop each."""

    ranges: list[tuple[int, int]] | None = None

    def __init__(self, run: Callable[..., Any], opened: OpenedFile) -> None:
        self._run = run
        self._opened = opened
        self._buffer = deque(opened.prefetched)
        self._done = opened.done

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._buffer:
            return self._buffer.popleft()
        if self._done:
            raise StopAsyncIteration
        try:
            chunk = await self._run(next, self._opened.chunks, None)
        except BaseException:
            self._done = True
            raise
        if chunk is None:
            self._done = True
            raise StopAsyncIteration
        return chunk  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        self._buffer.clear()
        if not self._done:
            self._done = True
            await self._run(self._opened.close)
