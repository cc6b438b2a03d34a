"""Object files in memory: a second implementation of the DiskFile contract.

The contract is in the docstring of `pocketstack.objectstore.storage.diskfile`; the same
test suite runs against both. Files live in a dict keyed by (device, policy, partition,
hash) and follow the same naming and precedence rules (`hashdir`), so tombstones, .meta
merging, expiry, collisions, ranges, quarantine and `get_hashes` behave alike. What it does
not model: durability, temp files, preallocation and a full device. It holds whole bodies
in memory: it is a test double, not a backend for data.

Thread-safe: one lock guards the dict; readers work on immutable snapshots.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage.diskfile import DEFAULT_CHUNK_SIZE, ONE_WEEK, check_suffix
from pocketstack.objectstore.storage.diskfile_io import BodyDigest, Digest
from pocketstack.objectstore.storage.exceptions import (
    DeviceUnavailable,
    DiskFileDeleted,
    DiskFileError,
    DiskFileExpired,
    DiskFileNotExist,
    DiskFileNotOpen,
    DiskFileQuarantined,
    RangeNotSatisfiable,
)
from pocketstack.objectstore.storage.fileformat import CorruptObjectFile
from pocketstack.objectstore.storage.fsutil import check_partition, suffix_of
from pocketstack.objectstore.storage.hashdir import (
    DATA,
    ETAG_KEY,
    LENGTH_KEY,
    META,
    NAME_KEY,
    TIMESTAMP_KEY,
    TOMBSTONE,
    ObjectFileName,
    check_data_file,
    check_timestamp,
    delete_at,
    merge_metadata,
    resolve,
    suffix_hash,
)
from pocketstack.objectstore.storage.types import ByteRange, Metadata, resolve_ranges
from pocketstack.objectstore.timestamp import Timestamp

DirKey = tuple[str, int, int, str]
"""(device, policy, partition, hash): the address of one in-memory hash directory."""


@dataclass(frozen=True)
class MemFile:
    """One stored file: its body and its metadata (never mutated once stored)."""

    body: bytes
    metadata: Mapping[str, str]


class MemDiskFileManager:
    """In-memory object files; unknown or ``unavailable`` devices raise DeviceUnavailable."""

    def __init__(
        self,
        *,
        hasher: PathHasher,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        reclaim_age: float = ONE_WEEK,
        devices: Iterable[str] | None = None,
    ) -> None:
        """``devices``: the device names that exist (None: any valid name)."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.hasher = hasher
        self.chunk_size = chunk_size
        self.reclaim_age = reclaim_age
        self.devices = None if devices is None else frozenset(devices)
        self.unavailable: set[str] = set()
        self.quarantined: list[tuple[DirKey, str, MemFile]] = []
        self._dirs: dict[DirKey, dict[str, MemFile]] = {}
        self._lock = threading.RLock()

    def get_diskfile(
        self, device: str, partition: int, account: str, container: str, obj: str, policy: int = 0
    ) -> MemDiskFile:
        check_partition(partition)
        if not (account and container and obj):
            raise ValueError("an object needs an account, a container and a name")
        self._check_device(device)
        if policy < 0:
            raise ValueError(f"invalid storage policy index: {policy}")
        key = (device, policy, partition, self.hasher.hexdigest(account, container, obj))
        return MemDiskFile(self, key, f"/{account}/{container}/{obj}")

    def _check_device(self, device: str) -> None:
        if not device or device in (".", "..") or "/" in device or device in self.unavailable:
            raise DeviceUnavailable(f"device {device!r} is not available")
        if self.devices is not None and device not in self.devices:
            raise DeviceUnavailable(f"device {device!r} is not available")

    def stored_files(self, key: DirKey) -> dict[str, MemFile]:
        """A copy of one hash directory's files (for tests and inspection)."""
        with self._lock:
            return dict(self._dirs.get(key, {}))

    def replace_file(self, key: DirKey, filename: str, file: MemFile) -> None:
        """Overwrite one stored file as is (tests use it to simulate corruption)."""
        with self._lock:
            self._dirs.setdefault(key, {})[filename] = file

    def store(self, key: DirKey, filename: str, file: MemFile) -> None:
        """Add a file, then drop what the precedence rules make obsolete."""
        with self._lock:
            self._dirs.setdefault(key, {})[filename] = file
            self._cleanup(key)

    def _cleanup(self, key: DirKey) -> list[str]:
        files = self._dirs.get(key, {})
        reclaim_before = Timestamp(max(0.0, time.time() - self.reclaim_age))
        state = resolve(files, reclaim_before=reclaim_before)
        for filename in state.obsolete:
            files.pop(filename, None)
        if not files:
            self._dirs.pop(key, None)
        return list(files)

    def quarantine(self, key: DirKey, filename: str) -> None:
        with self._lock:
            file = self._dirs.get(key, {}).pop(filename, None)
            if file is not None:
                self.quarantined.append((key, filename, file))

    def get_hashes(
        self,
        device: str,
        partition: int,
        policy: int = 0,
        suffixes: Iterable[str] | None = None,
    ) -> dict[str, str]:
        check_partition(partition)
        self._check_device(device)
        wanted = None if suffixes is None else {check_suffix(s) for s in suffixes}
        by_suffix: dict[str, list[tuple[str, list[str]]]] = {}
        with self._lock:
            keys = [
                k for k in self._dirs
                if k[:3] == (device, policy, partition) and (wanted is None or k[3][-3:] in wanted)
            ]  # fmt: skip
            for key in keys:
                names = [n for n in self._cleanup(key) if ObjectFileName.parse(n)]
                if names:
                    by_suffix.setdefault(suffix_of(key[3]), []).append((key[3], names))
        return {suffix: suffix_hash(entries) for suffix, entries in by_suffix.items()}


class MemDiskFile:
    """One object in a MemDiskFileManager; same contract as the disk DiskFile."""

    def __init__(self, manager: MemDiskFileManager, key: DirKey, name: str) -> None:
        self.manager = manager
        self.key = key
        self.name = name
        self._data: MemFile | None = None
        self._readable = False
        self._data_filename = ""
        self._meta: MemFile | None = None
        self._metadata: Metadata = {}
        self._data_timestamp = Timestamp(0)

    def open(self, *, now: float | None = None) -> Metadata:
        self._data = self._meta = None
        self._readable = False
        files = self.manager.stored_files(self.key)
        state = resolve(files)
        if state.tombstone is not None:
            raise DiskFileDeleted(self.name, timestamp=state.tombstone.timestamp)
        if state.data is None:
            raise DiskFileNotExist(self.name)
        data = files[state.data.filename]
        meta = files[state.meta.filename] if state.meta is not None else None
        try:
            check_data_file(self.name, state.data, len(data.body), data.metadata)
            if state.meta is not None and meta is not None:
                check_timestamp(state.meta, meta.metadata)
        except CorruptObjectFile as exc:
            self.manager.quarantine(self.key, state.data.filename)
            raise DiskFileQuarantined(f"{self.name}: {exc}") from exc
        merged = merge_metadata(data.metadata, meta.metadata) if meta else dict(data.metadata)
        expires = delete_at(merged)
        if expires is not None and expires <= (time.time() if now is None else now):
            raise DiskFileExpired(self.name, timestamp=state.data.timestamp, delete_at=expires)
        self._data, self._meta, self._metadata = data, meta, merged
        self._readable = True
        self._data_filename = state.data.filename
        self._data_timestamp = state.data.timestamp
        return dict(merged)

    def newest_timestamp(self) -> Timestamp | None:
        state = resolve(self.manager.stored_files(self.key))
        current = state.tombstone or state.data
        return None if current is None else current.timestamp

    def read_metadata(self, *, now: float | None = None) -> Metadata:
        try:
            return self.open(now=now)
        finally:
            self.close()

    def _require_open(self) -> MemFile:
        if self._data is None:
            raise DiskFileNotOpen(self.name)
        return self._data

    @property
    def metadata(self) -> Metadata:
        self._require_open()
        return dict(self._metadata)

    def get_datafile_metadata(self) -> Metadata:
        return dict(self._require_open().metadata)

    def get_metafile_metadata(self) -> Metadata | None:
        self._require_open()
        return None if self._meta is None else dict(self._meta.metadata)

    @property
    def data_timestamp(self) -> Timestamp:
        self._require_open()
        return self._data_timestamp

    @property
    def timestamp(self) -> Timestamp:
        self._require_open()
        return Timestamp(self._metadata[TIMESTAMP_KEY])

    @property
    def content_length(self) -> int:
        return len(self._require_open().body)

    def reader(
        self, *, ranges: list[ByteRange] | None = None, chunk_size: int | None = None
    ) -> MemDiskFileReader:
        data = self._require_open()
        if not self._readable:
            raise DiskFileNotOpen(f"{self.name}: closed, or its reader() already taken")
        resolved = None
        if ranges:
            resolved = resolve_ranges(ranges, len(data.body))
            if not resolved:
                raise RangeNotSatisfiable(self.name, content_length=len(data.body))
        reader = MemDiskFileReader(
            self, data, self._data_filename, resolved, chunk_size or self.manager.chunk_size
        )
        self.close()
        return reader

    def close(self) -> None:
        self._readable = False

    def __enter__(self) -> MemDiskFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def create(self, size: int | None = None) -> MemDiskFileWriter:
        self.manager._check_device(self.key[0])
        return MemDiskFileWriter(self)

    def write_metadata(self, timestamp: Timestamp, metadata: Mapping[str, str]) -> None:
        self._write_marker(timestamp, META, metadata)

    def delete(self, timestamp: Timestamp) -> None:
        self._write_marker(timestamp, TOMBSTONE, {})

    def _write_marker(self, timestamp: Timestamp, ext: str, metadata: Mapping[str, str]) -> None:
        self.manager._check_device(self.key[0])
        content = dict(metadata)
        content[NAME_KEY] = self.name
        content[TIMESTAMP_KEY] = timestamp.internal
        self.manager.store(self.key, timestamp.internal + ext, MemFile(b"", content))


class MemDiskFileWriter:
    """Collects a new version in memory; `commit` stores it."""

    def __init__(self, diskfile: MemDiskFile) -> None:
        self.diskfile = diskfile
        self._chunks: list[bytes] | None = []
        self._digest: Digest = BodyDigest()
        self._written = 0
        self._metadata: Metadata | None = None

    @property
    def bytes_written(self) -> int:
        return self._written

    @property
    def etag(self) -> str:
        return self._digest.hexdigest()

    def _require_chunks(self) -> list[bytes]:
        if self._chunks is None:
            raise DiskFileError(f"{self.diskfile.name}: writer is closed")
        return self._chunks

    def write(self, chunk: bytes) -> int:
        if self._metadata is not None:
            raise DiskFileError(f"{self.diskfile.name}: write() after put()")
        self._require_chunks().append(bytes(chunk))
        self._digest.update(chunk)
        self._written += len(chunk)
        return self._written

    def write_parts(self, parts: Sequence[bytes]) -> int:
        for part in parts:
            self.write(part)
        return self._written

    def share_digest(self, digest: Digest) -> None:
        if self._written:
            raise DiskFileError(f"{self.diskfile.name}: share_digest() after write()")
        self._digest = digest

    def put(self, metadata: Mapping[str, str]) -> None:
        if self._metadata is not None:
            raise DiskFileError(f"{self.diskfile.name}: put() twice")
        self._require_chunks()
        content = dict(metadata)
        Timestamp(content.get(TIMESTAMP_KEY, ""))
        content[NAME_KEY] = self.diskfile.name
        content[LENGTH_KEY] = str(self._written)
        content[ETAG_KEY] = self.etag
        self._metadata = content

    def commit(self, timestamp: Timestamp) -> None:
        if self._metadata is None:
            raise DiskFileError(f"{self.diskfile.name}: commit() before put()")
        if self._metadata[TIMESTAMP_KEY] != timestamp.internal:
            raise ValueError(
                f"commit({timestamp.internal}) != X-Timestamp {self._metadata[TIMESTAMP_KEY]}"
            )
        body = b"".join(self._require_chunks())
        self._chunks = None
        file = MemFile(body, self._metadata)
        self.diskfile.manager.store(self.diskfile.key, timestamp.internal + DATA, file)

    def close(self) -> None:
        self._chunks = None

    def __enter__(self) -> MemDiskFileWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class MemDiskFileReader:
    """Chunks of a stored body; a whole read is verified like the disk reader's."""

    def __init__(
        self,
        diskfile: MemDiskFile,
        data: MemFile,
        filename: str,
        ranges: list[tuple[int, int]] | None,
        chunk_size: int,
    ) -> None:
        self._diskfile = diskfile
        self._data = data
        self._filename = filename
        self.body_length = len(data.body)
        self.ranges = ranges
        self._chunk_size = chunk_size

    @property
    def whole(self) -> bool:
        return self.ranges is None or self.ranges == [(0, self.body_length)]

    @property
    def content_length(self) -> int:
        if self.ranges is None:
            return self.body_length
        return sum(stop - start for start, stop in self.ranges)

    def __iter__(self) -> Iterator[bytes]:
        body = self._data.body
        if self.whole:
            expected_length = self._data.metadata.get(LENGTH_KEY)
            actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
            if actual != self._data.metadata.get(ETAG_KEY) or expected_length != str(len(body)):
                self._diskfile.manager.quarantine(self._diskfile.key, self._filename)
                yield from list(_chunks(body, 0, len(body), self._chunk_size))[:-1]
                raise DiskFileQuarantined(f"{self._diskfile.name}: md5 {actual} mismatch")
            yield from _chunks(body, 0, len(body), self._chunk_size)
            return
        for start, stop in self.ranges or ():
            yield from _chunks(body, start, stop, self._chunk_size)

    def close(self) -> None:
        """Nothing to release (kept for the contract)."""


def _chunks(body: bytes, start: int, stop: int, chunk_size: int) -> Iterable[bytes]:
    for offset in range(start, stop, chunk_size):
        yield body[offset : min(offset + chunk_size, stop)]
