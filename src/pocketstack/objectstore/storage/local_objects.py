"""The object half of LocalNode's work: synchronous steps, each run in one worker thread.

`ObjectWork` implements the object-server rules of the StorageNode contract (conflicts,
ETag check, tombstones, POST merging) on top of a DiskFile manager. Each public method is
one thread hop; an upload is a few (`Upload`): open + first batch, further batches,
finish. A small object (one batch) is written in a single hop by `put_small`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from pocketstack.objectstore.storage.diskfile import DiskFile, DiskFileManager
from pocketstack.objectstore.storage.diskfile_io import DiskFileWriter, SharedDigest
from pocketstack.objectstore.storage.exceptions import (
    Conflict,
    DiskFileDeleted,
    DiskFileNotExist,
    EtagMismatch,
)
from pocketstack.objectstore.storage.hashdir import (
    CONTENT_TYPE_KEY,
    ETAG_KEY,
    LENGTH_KEY,
    NAME_KEY,
    TIMESTAMP_KEY,
    merge_metadata,
)
from pocketstack.objectstore.storage.types import ByteRange, Metadata, ObjectInfo
from pocketstack.objectstore.timestamp import Timestamp

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
READ_CHUNKS: Final = 4
"""A GET reads this many chunks at a time (1 MiB by default): one read is one thread hop
and one send, so a large body costs a few dozen of each rather than a thousand; a small
object is still read whole in the first hop."""
_INFO_KEYS: Final = frozenset({NAME_KEY, TIMESTAMP_KEY, LENGTH_KEY, ETAG_KEY, CONTENT_TYPE_KEY})
_RESERVED: Final = frozenset({"name", "x-timestamp", "content-length"})


class Reader(Protocol):
    ranges: list[tuple[int, int]] | None

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


def canonical_header(key: str) -> str:
    """Header names as stored: Title-Case (as Swift's HeaderKeyDict), ``ETag`` as such."""
    return "ETag" if key.lower() == "etag" else key.title()


def canonical_metadata(metadata: Mapping[str, str]) -> Metadata:
    return {canonical_header(key): str(value) for key, value in metadata.items()}


def object_info(
    address: ObjectAddress, metadata: Mapping[str, str], data_timestamp: Timestamp
) -> ObjectInfo:
    """The ObjectInfo of an opened object's (merged) metadata."""
    return ObjectInfo(
        account=address.account,
        container=address.container,
        obj=address.obj,
        policy=address.policy,
        timestamp=data_timestamp,
        last_modified=Timestamp(metadata[TIMESTAMP_KEY]),
        content_length=int(metadata[LENGTH_KEY]),
        etag=metadata[ETAG_KEY],
        content_type=metadata.get(CONTENT_TYPE_KEY, DEFAULT_CONTENT_TYPE),
        metadata={k: v for k, v in metadata.items() if k not in _INFO_KEYS},
    )


@dataclass(frozen=True)
class ObjectAddress:
    """Where an object lives: device, partition, policy, and its three names."""

    device: str
    partition: int
    account: str
    container: str
    obj: str
    policy: int


@dataclass
class ObjectRead:
    """An opened object: its info, the reader, and the chunks already read ahead."""

    info: ObjectInfo
    reader: Reader
    chunks: Iterator[bytes]
    prefetched: list[bytes]
    done: bool


class ObjectWork:
    """Object operations as synchronous steps (see the module docstring)."""

    def __init__(self, manager: DiskFileManager) -> None:
        self.manager = manager

    def _diskfile(self, address: ObjectAddress) -> DiskFile:
        return self.manager.get_diskfile(
            address.device,
            address.partition,
            address.account,
            address.container,
            address.obj,
            address.policy,
        )

    def head(self, address: ObjectAddress) -> ObjectInfo:
        diskfile = self._diskfile(address)
        metadata = diskfile.read_metadata()
        return object_info(address, metadata, diskfile.data_timestamp)

    def get(self, address: ObjectAddress, ranges: list[ByteRange] | None) -> ObjectRead:
        """Open, and read ahead up to one chunk's worth (all of a small object)."""
        diskfile = self._diskfile(address)
        with diskfile:
            metadata = diskfile.open()
            info = object_info(address, metadata, diskfile.data_timestamp)
            reader = diskfile.reader(ranges=ranges,
                                     chunk_size=READ_CHUNKS * self.manager.chunk_size)
        chunks = iter(reader)
        prefetched: list[bytes] = []
        total = 0
        try:
            while total < self.manager.chunk_size:
                chunk = next(chunks, None)
                if chunk is None:
                    return ObjectRead(info, reader, chunks, prefetched, True)
                prefetched.append(chunk)
                total += len(chunk)
        except BaseException:
            reader.close()
            raise
        return ObjectRead(info, reader, chunks, prefetched, False)

    def post(
        self, address: ObjectAddress, timestamp: Timestamp, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        diskfile = self._diskfile(address)
        diskfile.read_metadata()
        if diskfile.timestamp >= timestamp:
            raise Conflict(f"{diskfile.name} is newer", timestamp=diskfile.timestamp)
        meta = {k: v for k, v in canonical_metadata(metadata).items() if k.lower() not in _RESERVED}
        diskfile.write_metadata(timestamp, meta)
        meta.update({NAME_KEY: diskfile.name, TIMESTAMP_KEY: timestamp.internal})
        merged = merge_metadata(diskfile.get_datafile_metadata(), meta)
        return object_info(address, merged, diskfile.data_timestamp)

    def delete(self, address: ObjectAddress, timestamp: Timestamp) -> bool:
        diskfile = self._diskfile(address)
        existing, existed = _current_timestamp(diskfile, timestamp)
        if existing is not None and existing >= timestamp:
            raise Conflict(f"{diskfile.name} is newer", timestamp=existing)
        diskfile.delete(timestamp)
        return existed

    def begin_upload(
        self,
        address: ObjectAddress,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
        content_length: int | None,
        first: Sequence[bytes],
        digest: SharedDigest | None = None,
    ) -> Upload:
        """Check for newer versions, open a writer and write the first batch (``digest``:
        the body's md5, shared with the other replica writers of this process)."""
        upload = Upload(self._diskfile(address), address, timestamp, metadata)
        upload.start(content_length, digest)
        try:
            upload.write(first)
        except BaseException:
            upload.abort()
            raise
        return upload

    def put_small(
        self,
        address: ObjectAddress,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
        body: bytes,
        digest: SharedDigest | None = None,
    ) -> ObjectInfo:
        """A whole PUT in one step (the body is already in hand)."""
        upload = self.begin_upload(address, timestamp, metadata, len(body), (body,), digest)
        try:
            return upload.finish()
        except BaseException:
            upload.abort()
            raise


def _current_timestamp(diskfile: DiskFile, now: Timestamp) -> tuple[Timestamp | None, bool]:
    """(timestamp of the current data or tombstone, whether a live object is there)."""
    try:
        diskfile.read_metadata(now=float(now))
    except DiskFileDeleted as exc:  # also DiskFileExpired
        return exc.timestamp, False
    except DiskFileNotExist:  # also DiskFileQuarantined
        return None, False
    return diskfile.data_timestamp, True


class Upload:
    """One PUT in progress; its steps may run in different threads, one at a time."""

    def __init__(
        self,
        diskfile: DiskFile,
        address: ObjectAddress,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> None:
        self.diskfile = diskfile
        self.address = address
        self.timestamp = timestamp
        metadata = canonical_metadata(metadata)
        expected = metadata.pop(ETAG_KEY, "").strip('"').lower()
        self.expected_etag = expected or None
        self.metadata = {k: v for k, v in metadata.items() if k.lower() not in _RESERVED}
        self.metadata.setdefault(CONTENT_TYPE_KEY, DEFAULT_CONTENT_TYPE)
        self.metadata[TIMESTAMP_KEY] = timestamp.internal
        self.writer: DiskFileWriter | None = None
        self._lock = threading.Lock()

    def start(self, content_length: int | None, digest: SharedDigest | None = None) -> None:
        existing = self.diskfile.newest_timestamp()  # names suffice: nothing is opened
        if existing is not None and existing >= self.timestamp:
            raise Conflict(f"{self.diskfile.name} is newer", timestamp=existing)
        self.writer = self.diskfile.create(size=content_length)
        if digest is not None:
            self.writer.share_digest(digest.view())

    def write(self, parts: Sequence[bytes]) -> None:
        with self._lock:
            if self.writer is None:
                raise RuntimeError("upload aborted")
            self.writer.write_parts(parts)

    def finish(self) -> ObjectInfo:
        with self._lock:
            writer = self.writer
            if writer is None:
                raise RuntimeError("upload aborted")
            if self.expected_etag is not None and self.expected_etag != writer.etag:
                raise EtagMismatch(f"body md5 {writer.etag} != ETag {self.expected_etag}")
            writer.put(self.metadata)
            writer.commit(self.timestamp)
            writer.close()
            self.writer = None
            stored = dict(self.metadata)
            stored.update({LENGTH_KEY: str(writer.bytes_written), ETAG_KEY: writer.etag})
            return object_info(self.address, stored, self.timestamp)

    def abort(self) -> None:
        """Discard the upload (safe to call at any time, and more than once)."""
        with self._lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
