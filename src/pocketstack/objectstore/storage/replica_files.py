"""The object half of replication on this host: synchronous steps, run in worker threads.

`ReplicaFiles` lists what a partition holds (`stamps`), reads one object file with its
metadata (`open_file`: a ``.data`` is streamed through the verifying `DiskFileReader`,
which checks both its CRC-32 and its md5 here, so a corrupt replica is quarantined instead
of sent), receives one (`FileUpload`) and removes
replicas that other devices hold (`remove`).

A received file is checked before it is published: its name is ``<timestamp>.<ext>``, its
X-Timestamp is that timestamp, its ``name`` hashes to the hash dir it is sent to, and a
``.data`` body has the announced length and md5 (ETag). It is then written as body +
`fileformat` trailer of the same metadata (deterministic bytes: the copy is byte for
byte the original), synced, published with the rename of every write, and the hash dir
is cleaned up by `hashdir.resolve`, so the newest file wins whatever order files arrive in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import fsutil
from pocketstack.objectstore.storage.diskfile import DiskFile, DiskFileManager, check_hash
from pocketstack.objectstore.storage.diskfile_io import (
    BodyDigest,
    DiskFileReader,
    RawFile,
    preallocate,
)
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    ClientDisconnect,
    DiskFileNotExist,
    EtagMismatch,
)
from pocketstack.objectstore.storage.fileformat import (
    CorruptObjectFile,
    encode_metadata,
    encode_trailer,
    read_trailer,
)
from pocketstack.objectstore.storage.hashdir import (
    DATA,
    ETAG_KEY,
    LENGTH_KEY,
    NAME_KEY,
    ObjectFileName,
    check_data_file,
    check_timestamp,
    resolve,
)
from pocketstack.objectstore.storage.types import ObjectFile, ObjectStamp

_EMPTY: Final[tuple[bytes, ...]] = ()


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def parse_filename(filename: str) -> ObjectFileName:
    """The parsed ``<timestamp>.<ext>``; ValueError for anything else."""
    parsed = ObjectFileName.parse(filename) if isinstance(filename, str) else None
    if parsed is None:
        raise ValueError(f"not an object file name: {filename!r}")
    return parsed


def hash_of_name(hasher: PathHasher, name: str) -> str | None:
    """The hash dir of an object named ``/account/container/object``, None if malformed."""
    parts = name.split("/", 3) if isinstance(name, str) else []
    if len(parts) != 4 or parts[0] or not all(parts[1:]):
        return None
    return hasher.hexdigest(parts[1], parts[2], parts[3])


class ReplicaFiles:
    """Replication's file work on the devices of ``manager`` (see the module docstring)."""

    def __init__(self, manager: DiskFileManager) -> None:
        self.manager = manager

    def list_partitions(self, device: str, kind_dir: str) -> list[int]:
        """The partition dirs under ``<device>/<kind_dir>``, in numeric order."""
        path = os.path.join(self.manager.devices.path(device), kind_dir)
        with fsutil.map_os_errors("list_partitions"):
            return sorted(int(name) for name in _listdir(path) if name.isdigit())

    def stamps(
        self, device: str, partition: int, policy: int, suffixes: Iterable[str] | None
    ) -> list[ObjectStamp]:
        part_dir = self.manager.partition_dir(device, partition, policy)
        with fsutil.map_os_errors("list_object_stamps"):
            return [
                ObjectStamp(name_hash, tuple(files))
                for _suffix, entries in self.manager.iter_suffixes(part_dir, suffixes)
                for name_hash, files in entries
            ]

    def _hash_dir(self, device: str, partition: int, policy: int, name_hash: str) -> str:
        part_dir = self.manager.partition_dir(device, partition, policy)
        return os.path.join(part_dir, check_hash(name_hash)[-3:], name_hash)

    def open_file(
        self, device: str, partition: int, policy: int, name_hash: str, filename: str
    ) -> OpenedFile:
        """One file's metadata and body, its first ``chunk_size`` bytes read ahead (all of a
        small file: one thread hop).

        DiskFileNotExist if the file is gone (a newer one replaced it); a corrupt file is
        quarantined (DiskFileQuarantined), now or, for a body, before its last chunk."""
        parsed = parse_filename(filename)
        datadir = self._hash_dir(device, partition, policy, name_hash)
        diskfile = DiskFile(
            self.manager, self.manager.devices.path(device), datadir, name_hash, policy
        )
        with fsutil.map_os_errors(filename):
            try:
                fp = RawFile(os.path.join(datadir, filename))
            except FileNotFoundError as exc:
                raise DiskFileNotExist(f"{name_hash}/{filename}") from exc
        try:
            file, chunks, reader = self._checked_open(fp, diskfile, parsed)
        except BaseException:
            fp.close()
            raise
        opened = OpenedFile(file, chunks, reader)
        try:
            opened.read_ahead(self.manager.chunk_size)
        except BaseException:
            opened.close()
            raise
        return opened

    def _checked_open(
        self, fp: RawFile, diskfile: DiskFile, parsed: ObjectFileName
    ) -> tuple[ObjectFile, Iterator[bytes], DiskFileReader | None]:
        name_hash = diskfile.name
        try:
            length, metadata, body_crc = read_trailer(fp.fileno(), os.fstat(fp.fileno()).st_size)
            check_timestamp(parsed, metadata)
            if hash_of_name(self.manager.hasher, metadata.get(NAME_KEY, "")) != name_hash:
                raise CorruptObjectFile(f"name {metadata.get(NAME_KEY)!r} is not in this dir")
            if parsed.ext == DATA:
                check_data_file(metadata[NAME_KEY], parsed, length, metadata)
            elif length:
                raise CorruptObjectFile(f"a {parsed.ext} file with a body")
        except CorruptObjectFile as exc:
            fp.close()
            raise diskfile.quarantine(parsed.filename, str(exc)) from exc
        file = ObjectFile(name_hash, parsed.filename, length, metadata)
        if parsed.ext != DATA:
            fp.close()
            return file, iter(_EMPTY), None
        reader = DiskFileReader(
            fp, body_length=length, etag=metadata[ETAG_KEY], body_crc=body_crc,
            check_etag=True, ranges=None,
            chunk_size=self.manager.chunk_size, diskfile=diskfile, filename=parsed.filename,
        )  # fmt: skip
        return file, iter(reader), reader

    def put_whole(
        self, device: str, partition: int, policy: int, file: ObjectFile, body: bytes
    ) -> bool:
        """A whole received file in one step (its body is already in hand)."""
        upload = self.begin_upload(device, partition, policy, file)
        try:
            upload.write(body)
            return upload.finish()
        except BaseException:
            upload.abort()
            raise

    def begin_upload(
        self, device: str, partition: int, policy: int, file: ObjectFile
    ) -> FileUpload:
        datadir = self._hash_dir(device, partition, policy, file.name_hash)
        check_received(self.manager.hasher, file)
        return FileUpload(self.manager, self.manager.devices.path(device), datadir, file)

    def remove(
        self, device: str, partition: int, policy: int, stamps: Iterable[ObjectStamp]
    ) -> int:
        """Remove each object whose live files are still its stamp's; then the emptied
        suffix dirs and partition dir. Returns how many objects were removed."""
        part_dir = self.manager.partition_dir(device, partition, policy)
        removed = 0
        suffixes = set()
        with fsutil.map_os_errors("remove_objects"):
            for stamp in stamps:
                datadir = os.path.join(part_dir, check_hash(stamp.name_hash)[-3:], stamp.name_hash)
                suffixes.add(os.path.dirname(datadir))
                if _remove_if_unchanged(datadir, stamp.files):
                    removed += 1
                    self.manager.invalidate_hash(datadir)
            for suffix_dir in suffixes:
                fsutil.remove_empty_dir(suffix_dir)
            self.manager.remove_partition_if_empty(part_dir)
        return removed


@dataclass
class OpenedFile:
    """An object file open for reading: its description, its body's chunks (the first ones
    read ahead into ``prefetched``; ``done`` once the body is all there), and the reader to
    close if the body is abandoned."""

    file: ObjectFile
    chunks: Iterator[bytes]
    reader: DiskFileReader | None
    prefetched: list[bytes] = field(default_factory=list)
    done: bool = False

    def read_ahead(self, limit: int) -> None:
        total = 0
        while total < limit:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.done = True
                return
            self.prefetched.append(chunk)
            total += len(chunk)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _remove_if_unchanged(datadir: str, files: tuple[str, ...]) -> int:
    """Unlink the object files of ``datadir`` if its live ones are ``files``; 1 if done.

    Only names listed here are unlinked: a file published meanwhile stays (and keeps
    the directory), so a write that lands during the removal is never lost."""
    names = [n for n in _listdir(datadir) if ObjectFileName.parse(n) is not None]
    state = resolve(names)
    if tuple(sorted(n for n in names if n not in state.obsolete)) != tuple(files):
        return 0
    for name in names:
        fsutil.unlink_quietly(os.path.join(datadir, name))
    fsutil.remove_empty_dir(datadir)
    return 1


def check_received(hasher: PathHasher, file: ObjectFile) -> None:
    """BadRequest unless ``file`` describes a consistent object file (module docstring)."""
    try:
        parsed = parse_filename(file.filename)
        check_hash(file.name_hash)
        encode_metadata(file.metadata)
        check_timestamp(parsed, file.metadata)
    except (ValueError, TypeError) as exc:  # CorruptObjectFile is a ValueError
        raise BadRequest(f"bad object file: {exc}") from exc
    if hash_of_name(hasher, file.metadata.get(NAME_KEY, "")) != file.name_hash:
        raise BadRequest(f"{file.metadata.get(NAME_KEY)!r} does not hash to {file.name_hash}")
    if file.content_length < 0 or (parsed.ext != DATA and file.content_length):
        raise BadRequest(f"bad length {file.content_length} for {file.filename}")
    if parsed.ext == DATA and (
        file.metadata.get(LENGTH_KEY) != str(file.content_length) or not file.metadata.get(ETAG_KEY)
    ):
        raise BadRequest(f"{file.filename}: Content-Length or ETag missing or wrong")


class FileUpload:
    """One received object file in progress (steps may run in different threads, in turn)."""

    def __init__(
        self, manager: DiskFileManager, device_path: str, datadir: str, file: ObjectFile
    ) -> None:
        self.manager = manager
        self.datadir = datadir
        self.file = file
        self._digest = BodyDigest()
        self._written = 0
        self._lock = threading.Lock()
        tmp_dir = manager.devices.tmp_dir(device_path)
        with fsutil.map_os_errors(file.filename):
            self._fd: int | None
            self._fd, self._tmp_path = fsutil.make_temp_file(tmp_dir)
            try:
                if file.content_length:
                    preallocate(self._fd, file.content_length)
            except BaseException:
                self.abort()
                raise

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._fd is None:
                raise RuntimeError("upload aborted")
            if self._written + len(data) > self.file.content_length:
                raise BadRequest(f"body longer than {self.file.content_length}")
            with fsutil.map_os_errors(self.file.filename):
                fsutil.write_all(self._fd, data)
            self._digest.update(data)
            self._written += len(data)

    def finish(self) -> bool:
        """Check, sync and publish; True if the file counts (is live) afterwards."""
        with self._lock:
            fd = self._fd
            if fd is None:
                raise RuntimeError("upload aborted")
            self._check_body()
            with fsutil.map_os_errors(self.file.filename):
                fsutil.write_all(fd, encode_trailer(self._written, self.file.metadata,
                                                    body_crc=self._digest.crc32()))
                if self.manager.fsync:
                    os.fdatasync(fd)
                os.close(fd)
                self._fd = None
                fsutil.publish_file(
                    self._tmp_path, self.datadir, self.file.filename,
                    fsync=self.manager.fsync, replace=False,
                )  # fmt: skip
                live = self.manager.cleanup_hashdir(self.datadir)
        return self.file.filename in live

    def _check_body(self) -> None:
        if self._written != self.file.content_length:
            raise ClientDisconnect(
                f"body ended after {self._written} of {self.file.content_length} bytes"
            )
        etag = self.file.metadata.get(ETAG_KEY)
        if self.file.filename.endswith(DATA) and self._digest.hexdigest() != etag:
            raise EtagMismatch(f"body md5 {self._digest.hexdigest()} != ETag {etag}")

    def abort(self) -> None:
        """Discard the upload (safe at any time, and more than once)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            fsutil.unlink_quietly(self._tmp_path)
