"""The streaming halves of a disk DiskFile: `DiskFileWriter` and `DiskFileReader`.

Their contract is in the docstring of `pocketstack.objectstore.storage.diskfile`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from pocketstack.objectstore.storage import fsutil
from pocketstack.objectstore.storage.exceptions import DiskFileError
from pocketstack.objectstore.storage.fileformat import encode_trailer
from pocketstack.objectstore.storage.hashdir import (
    DATA,
    ETAG_KEY,
    LENGTH_KEY,
    NAME_KEY,
    TIMESTAMP_KEY,
)
from pocketstack.objectstore.storage.types import Metadata
from pocketstack.objectstore.timestamp import Timestamp

if TYPE_CHECKING:
    from pocketstack.objectstore.storage.diskfile import DiskFile


def preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes now, so a full device fails before the body is streamed."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in fsutil.NO_SPACE_ERRNOS:
            raise
        # EOPNOTSUPP/EINVAL: the filesystem cannot preallocate; writing will tell.


class Digest(Protocol):
    """What a writer hashes its body with: a `BodyDigest`, or a `SharedDigestView`."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...

    def crc32(self) -> int: ...


class BodyDigest:
    """The two digests of a body: its MD5 (the ETag) and its CRC-32 (the file's footer,
    which a GET checks instead of the MD5: `fileformat`)."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._crc = 0

    def update(self, data: bytes, /) -> None:
        self._md5.update(data)
        self._crc = zlib.crc32(data, self._crc)

    def hexdigest(self) -> str:
        return self._md5.hexdigest()

    def crc32(self) -> int:
        return self._crc


class SharedDigest:
    """One `BodyDigest` of a body that several replica writers of this process write,
    chunk by chunk, in the same order: the first writer to reach chunk ``i`` hashes it,
    the others skip it, so a 3-replica PUT hashes its body once instead of three times.
    Sound because every writer gets the very same chunk objects (the proxy's `Tee`): each
    stored ETag and CRC is still that of exactly what that writer wrote. Thread-safe;
    `view` gives one writer its cursor."""

    def __init__(self) -> None:
        self._digest = BodyDigest()
        self._count = 0
        self._lock = threading.Lock()

    def view(self) -> SharedDigestView:
        return SharedDigestView(self)

    def update(self, index: int, chunk: bytes) -> None:
        with self._lock:
            if index == self._count:
                self._digest.update(chunk)
                self._count += 1
            elif index > self._count:  # a writer ran ahead of every other: a bug
                raise ValueError(f"chunk {index} before chunk {self._count}")

    def result(self, count: int) -> tuple[str, int]:
        """(md5 hex, CRC-32) of the first ``count`` chunks (the ones hashed so far: a
        writer asks after it has passed all of its own)."""
        with self._lock:
            if count != self._count:
                raise ValueError(f"digest of {count} chunks asked, {self._count} hashed")
            return self._digest.hexdigest(), self._digest.crc32()


class SharedDigestView:
    """One writer's cursor over a `SharedDigest` (a `Digest`)."""

    def __init__(self, shared: SharedDigest) -> None:
        self._shared = shared
        self._index = 0

    def update(self, data: bytes, /) -> None:
        self._shared.update(self._index, data)
        self._index += 1

    def hexdigest(self) -> str:
        return self._shared.result(self._index)[0]

    def crc32(self) -> int:
        return self._shared.result(self._index)[1]


def writev_all(fd: int, parts: Sequence[bytes]) -> None:
    """os.writev until every byte of ``parts`` is written (one syscall, no join)."""
    views = [memoryview(p) for p in parts if p]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


class RawFile:
    """An unbuffered read-only file (closed on garbage collection too)."""

    def __init__(self, path: str) -> None:
        self._fd: int | None = None  # set first: __del__ runs even if open fails
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("file is closed")
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class DiskFileWriter:
    """Streams one new version into a temp file; `commit` publishes it (module docstring)."""

    def __init__(self, diskfile: DiskFile, fd: int, tmp_path: str, *, preallocated: int = 0
                 ) -> None:
        self.diskfile = diskfile
        self._fd: int | None = fd
        self._tmp_path = tmp_path
        self._preallocated = preallocated  # the file's size before the first write
        self._digest: Digest = BodyDigest()
        self._written = 0
        self._metadata: Metadata | None = None
        self._committed = False

    def share_digest(self, digest: Digest) -> None:
        """Hash the body with ``digest`` (a `SharedDigestView`) instead of an own one."""
        if self._written:
            raise DiskFileError(f"{self.diskfile.name}: share_digest() after write()")
        self._digest = digest

    @property
    def bytes_written(self) -> int:
        return self._written

    @property
    def etag(self) -> str:
        return self._digest.hexdigest()

    def _require_fd(self) -> int:
        if self._fd is None:
            raise DiskFileError(f"{self.diskfile.name}: writer is closed")
        return self._fd

    def write(self, chunk: bytes) -> int:
        if self._metadata is not None:
            raise DiskFileError(f"{self.diskfile.name}: write() after put()")
        with fsutil.map_os_errors(self.diskfile.name):
            fsutil.write_all(self._require_fd(), chunk)
        self._digest.update(chunk)
        self._written += len(chunk)
        return self._written

    def write_parts(self, parts: Sequence[bytes]) -> int:
        """`write` each part, in one system call."""
        if self._metadata is not None:
            raise DiskFileError(f"{self.diskfile.name}: write() after put()")
        with fsutil.map_os_errors(self.diskfile.name):
            writev_all(self._require_fd(), parts)
        for part in parts:
            self._digest.update(part)
            self._written += len(part)
        return self._written

    def put(self, metadata: Mapping[str, str]) -> None:
        """Append the metadata (plus name, Content-Length, ETag) and sync; not yet visible."""
        if self._metadata is not None:
            raise DiskFileError(f"{self.diskfile.name}: put() twice")
        content = dict(metadata)
        Timestamp(content.get(TIMESTAMP_KEY, ""))  # ValueError if missing or bad
        content[NAME_KEY] = self.diskfile.name
        content[LENGTH_KEY] = str(self._written)
        content[ETAG_KEY] = self.etag
        fd = self._require_fd()
        trailer = encode_trailer(self._written, content, body_crc=self._digest.crc32())
        with fsutil.map_os_errors(self.diskfile.name):
            fsutil.write_all(fd, trailer)
            end = self._written + len(trailer)  # every write went to the end, whole
            if self._preallocated > end:  # preallocated more than the body needed
                os.ftruncate(fd, end)
            if self.diskfile.manager.fsync:
                os.fdatasync(fd)
        self._metadata = content

    def commit(self, timestamp: Timestamp) -> None:
        """Publish the version atomically as ``<timestamp>.data``, then clean up."""
        if self._metadata is None:
            raise DiskFileError(f"{self.diskfile.name}: commit() before put()")
        if self._metadata[TIMESTAMP_KEY] != timestamp.internal:
            raise ValueError(
                f"commit({timestamp.internal}) != X-Timestamp {self._metadata[TIMESTAMP_KEY]}"
            )
        manager = self.diskfile.manager
        with fsutil.map_os_errors(self.diskfile.name):
            os.close(self._require_fd())
            self._fd = None
            fsutil.publish_file(
                self._tmp_path,
                self.diskfile.datadir,
                timestamp.internal + DATA,
                fsync=manager.fsync,
            )
            self._committed = True
            manager.cleanup_hashdir(self.diskfile.datadir)

    def close(self) -> None:
        """Release the temp file; without a commit, the new version is discarded."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._committed:
            fsutil.unlink_quietly(self._tmp_path)

    def __enter__(self) -> DiskFileWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DiskFileReader:
    """Iterates an opened object's body (or ranges of it) in chunks; see module docstring."""

    def __init__(
        self,
        fp: RawFile,
        *,
        body_length: int,
        etag: str,
        body_crc: int | None,
        check_etag: bool = False,
        ranges: list[tuple[int, int]] | None,
        chunk_size: int,
        diskfile: DiskFile,
        filename: str,
    ) -> None:
        self._fp = fp
        self._filename = filename
        self.body_length = body_length
        self._etag = etag
        self._body_crc = body_crc
        # a whole read checks the body's CRC-32; its md5 when the file has no CRC (format
        # version 1) or when asked (the auditor and the replicator)
        self._check_md5 = check_etag or body_crc is None
        self.ranges = ranges
        self._chunk_size = chunk_size
        self._diskfile = diskfile

    @property
    def whole(self) -> bool:
        """True when the reader returns the whole body (and so verifies it)."""
        return self.ranges is None or self.ranges == [(0, self.body_length)]

    @property
    def content_length(self) -> int:
        """How many bytes iterating returns in total."""
        if self.ranges is None:
            return self.body_length
        return sum(stop - start for start, stop in self.ranges)

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self.whole:
                yield from self._read_whole()
            else:
                for start, stop in self.ranges or ():
                    yield from self._read_range(start, stop)
        finally:
            self.close()

    def _pread(self, size: int, offset: int) -> bytes:
        with fsutil.map_os_errors(self._diskfile.name):
            return os.pread(self._fp.fileno(), size, offset)

    def _read_range(self, start: int, stop: int) -> Iterator[bytes]:
        offset = start
        while offset < stop:
            chunk = self._pread(min(self._chunk_size, stop - offset), offset)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    def _read_whole(self) -> Iterator[bytes]:
        """Yield each chunk only once the next is read, so the last one can be withheld."""
        md5 = hashlib.md5(usedforsecurity=False) if self._check_md5 else None
        crc = 0
        offset = 0
        pending = b""
        while offset < self.body_length:
            chunk = self._pread(min(self._chunk_size, self.body_length - offset), offset)
            if not chunk:
                break
            if md5 is not None:
                md5.update(chunk)
            if self._body_crc is not None:
                crc = zlib.crc32(chunk, crc)
            offset += len(chunk)
            if pending:
                yield pending
            pending = chunk
        problem = self._check(offset, md5, crc)
        if problem:
            self.close()
            raise self._diskfile.quarantine(self._filename, problem)
        if pending:
            yield pending

    def _check(self, length: int, md5: hashlib._Hash | None, crc: int) -> str:
        """What is wrong with a whole body read ('' if nothing)."""
        if length != self.body_length:
            return f"read {length} bytes, expected {self.body_length}"
        if self._body_crc is not None and crc != self._body_crc:
            return f"body CRC-32 {crc:08x}, expected {self._body_crc:08x}"
        if md5 is not None and md5.hexdigest() != self._etag:
            return f"body md5 {md5.hexdigest()}, expected {self._etag}"
        return ""

    def close(self) -> None:
        self._fp.close()
