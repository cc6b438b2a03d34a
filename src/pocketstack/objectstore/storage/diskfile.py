"""Object files on disk: the backend contract of object storage, and its disk implementation.

The contract (also met by `mem_diskfile`, and checked by one test suite run against both)
is four classes used synchronously, from worker threads:

``Manager.get_diskfile(device, partition, account, container, obj, policy) -> DiskFile``
    Raises DeviceUnavailable if the device is missing (or not a mount point when checked).
``Manager.get_hashes(device, partition, policy, suffixes=None) -> {suffix: md5}``
    For replication: a digest per suffix of the object files it holds (reclaiming
    tombstones older than ``reclaim_age`` on the way), for every suffix or only those
    named. Empty suffixes are left out. ValueError for a name that is not a suffix.

``DiskFile``
    ``open(now=None) -> metadata``: the object's metadata (a .meta's applied, see
        `hashdir`). Raises DiskFileNotExist, DiskFileDeleted (``timestamp`` = tombstone),
        DiskFileExpired (X-Delete-At <= now), DiskFileQuarantined (corrupt files moved
        aside), DiskFileCollision (the hash dir holds another name). After a successful
        open: ``metadata``, ``data_timestamp``, ``timestamp`` (newest of data and .meta),
        ``content_length``, ``get_datafile_metadata()``, ``get_metafile_metadata()``.
        The opened version stays readable even if it is overwritten or deleted meanwhile.
    ``read_metadata(now=None)``: open, then close. ``close()`` releases the open file
        (the metadata and timestamps stay available); usable as ``with df:``.
    ``newest_timestamp()``: the current data file's or tombstone's timestamp (None: no
        such file), from the file names only: nothing is opened, checked or quarantined.
    ``reader(ranges=None, chunk_size=None) -> DiskFileReader`` (after open; it takes over
        the open file, so close() no longer affects it). DiskFileNotOpen before open(),
        after close(), or for a second reader. RangeNotSatisfiable if no range overlaps.
    ``create(size=None) -> DiskFileWriter``: a new version, invisible until committed.
    ``write_metadata(timestamp, metadata)``: a .meta (POST), replacing user metadata.
    ``delete(timestamp)``: a .ts (tombstone).
    All writes: a newer timestamp wins, whatever the order writes land in.

``DiskFileWriter`` (a context manager: leaving it without commit discards everything)
    ``write(chunk) -> bytes so far``; ``bytes_written``; ``etag`` (md5 hex so far);
    ``put(metadata)`` (needs X-Timestamp; fills in name, Content-Length and ETag from what
    was written, and the body's CRC-32 in the file's footer); ``commit(timestamp)``
    publishes atomically; ``close()``.

``DiskFileReader``: iterate for chunks of at most ``chunk_size`` bytes; ``close()``.
    A whole read checks the size and the body's CRC-32 (the md5 against the ETag for a
    file without a CRC, and also when ``check_etag``, as the auditor and the replicator
    read); on mismatch the object is
    quarantined and DiskFileQuarantined raised *before* the last chunk is yielded, so a
    consumer never receives a complete-looking corrupt body. Ranged reads are not checked.

Errors everywhere: ENOSPC/EDQUOT -> DiskFileNoSpace; other OS errors -> DiskFileError.

Disk layout and durability (this implementation): ``<dev>/objects[-N]/<part>/<suffix>/
<hash>/<timestamp>.data|.meta|.ts``, each file in the `fileformat` layout (body, JSON
metadata, footer). Every write goes to a temp file in ``<dev>/tmp``, is fdatasync'ed,
renamed into the hash dir, and the hash dir (plus any directory it had to create) is
fsync'ed; then obsolete files are removed. A crash therefore leaves the old version or the
new one; a stray temp file is never looked at (see `clean_tmp`). Obsolete files left by a
crash before cleanup lose to the newest file and are removed by the next write or
`get_hashes`. ``fsync=False`` skips the syncs (tests, throwaway clusters).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import fsutil, suffix_hashes
from pocketstack.objectstore.storage.diskfile_io import (
    DiskFileReader,
    DiskFileWriter,
    RawFile,
    preallocate,
)
from pocketstack.objectstore.storage.exceptions import (
    DiskFileDeleted,
    DiskFileError,
    DiskFileExpired,
    DiskFileNotExist,
    DiskFileNotOpen,
    DiskFileQuarantined,
    RangeNotSatisfiable,
)
from pocketstack.objectstore.storage.fileformat import (
    CorruptObjectFile,
    Trailer,
    encode_file,
    read_trailer,
)
from pocketstack.objectstore.storage.hashdir import (
    ETAG_KEY,
    META,
    NAME_KEY,
    TIMESTAMP_KEY,
    TOMBSTONE,
    HashDirState,
    ObjectFileName,
    check_data_file,
    check_timestamp,
    delete_at,
    merge_metadata,
    resolve,
    suffix_hash,
)
from pocketstack.objectstore.storage.suffix_hashes import SuffixHash
from pocketstack.objectstore.storage.types import ByteRange, Metadata, resolve_ranges
from pocketstack.objectstore.timestamp import Timestamp

DEFAULT_CHUNK_SIZE: Final = 65_536
ONE_WEEK: Final = 7 * 24 * 3600
_OPEN_ATTEMPTS: Final = 5


class DiskFileManager:
    """Object files under ``<devices_root>/<dev>/objects[-N]/`` (see the module docstring)."""

    def __init__(
        self,
        devices_root: str | os.PathLike[str],
        *,
        hasher: PathHasher,
        fsync: bool = True,
        check_mount: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        reclaim_age: float = ONE_WEEK,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.devices = fsutil.Devices(devices_root, check_mount=check_mount)
        self.hasher = hasher
        self.fsync = fsync
        self.chunk_size = chunk_size
        self.reclaim_age = reclaim_age
        self._memo = suffix_hashes.Memo()
        self.hash_save_interval = suffix_hashes.SAVE_INTERVAL

    def get_diskfile(
        self, device: str, partition: int, account: str, container: str, obj: str, policy: int = 0
    ) -> DiskFile:
        fsutil.check_partition(partition)
        if not (account and container and obj):
            raise ValueError("an object needs an account, a container and a name")
        device_path = self.devices.path(device)
        name_hash = self.hasher.hexdigest(account, container, obj)
        datadir = os.path.join(
            device_path,
            fsutil.policy_dir(fsutil.OBJECTS_DIR, policy),
            str(partition),
            fsutil.suffix_of(name_hash),
            name_hash,
        )
        return DiskFile(self, device_path, datadir, f"/{account}/{container}/{obj}", policy)

    def reclaim_before(self) -> Timestamp:
        return Timestamp(max(0.0, time.time() - self.reclaim_age))

    def cleanup_hashdir(self, datadir: str, *, reclaim: bool = True) -> list[str]:
        """After a write to ``datadir``: mark its suffix for rehashing, then remove obsolete
        files (and the dir if nothing is left); returns the live names."""
        self.invalidate_hash(datadir)
        return self._cleanup(datadir, reclaim)[0]

    def remove_partition_if_empty(self, part_dir: str) -> bool:
        """rmdir a partition dir left with nothing but its hash cache; True if it went."""
        self._memo.forget(part_dir)
        return suffix_hashes.remove_partition_if_empty(part_dir)

    def invalidate_hash(self, datadir: str) -> None:
        """Journal the suffix of ``datadir`` (a hash dir) as changed; see `suffix_hashes`."""
        suffix_dir = os.path.dirname(datadir)
        suffix_hashes.invalidate(os.path.dirname(suffix_dir), os.path.basename(suffix_dir))

    def _cleanup(self, datadir: str, reclaim: bool) -> tuple[list[str], bool]:
        """(live names, whether any file was removed)."""
        try:
            names = os.listdir(datadir)
        except (FileNotFoundError, NotADirectoryError):
            return [], False
        state = resolve(names, reclaim_before=self.reclaim_before() if reclaim else None)
        for filename in state.obsolete:
            fsutil.unlink_quietly(os.path.join(datadir, filename))
        live = [n for n in names if n not in state.obsolete]
        if not live:
            fsutil.remove_empty_dir(datadir)
        return live, bool(state.obsolete)

    def partition_dir(self, device: str, partition: int, policy: int = 0) -> str:
        fsutil.check_partition(partition)
        return os.path.join(
            self.devices.path(device), fsutil.policy_dir(fsutil.OBJECTS_DIR, policy), str(partition)
        )

    def get_hashes(
        self,
        device: str,
        partition: int,
        policy: int = 0,
        suffixes: Iterable[str] | None = None,
    ) -> dict[str, str]:
        """{suffix: md5 of its files} for one partition (see `hashdir.suffix_hash`).

        All suffixes come from the partition's cache (`suffix_hashes`), rehashing only
        those written to since, those with a reclaimable tombstone, and those whose dir
        appeared or vanished behind the cache's back (a partition without a valid cache is
        rehashed whole). Named ``suffixes`` are always rehashed, and the cache left alone."""
        part_dir = self.partition_dir(device, partition, policy)
        with fsutil.map_os_errors("get_hashes"):
            if suffixes is not None:
                return {
                    suffix: suffix_hash(entries)
                    for suffix, entries in self.iter_suffixes(part_dir, suffixes)
                    if entries
                }
            quiet = self._memo.quiet(part_dir, time.time() - self.reclaim_age)
            if quiet is not None:
                return {suffix: cached.digest for suffix, cached in quiet.items()}
            with suffix_hashes.consolidating(part_dir) as exists:
                if not exists:
                    return {}
                hashes = self._consolidate(part_dir)
        return {suffix: cached.digest for suffix, cached in hashes.items()}

    def save_hashes(self) -> int:
        """Write the cache files of the partitions consolidated since their last save, and
        trim their journals (at shutdown: what is only in memory would otherwise be
        rehashed from the journal by the next start's first replication pass). Skips a
        partition whose cache file or journal is no longer the one consolidated against.
        Returns how many were saved."""
        saved = 0
        for part_dir in self._memo.unsaved():
            with fsutil.map_os_errors("save_hashes"), \
                    suffix_hashes.consolidating(part_dir) as exists:
                memo = self._memo.current(part_dir) if exists else None
                if memo is None or not (memo.unsaved or memo.offset):
                    continue
                if not suffix_hashes.same_journal(part_dir, memo.journal, memo.offset):
                    continue  # not the journal that was read: the next pass decides
                if memo.unsaved:
                    suffix_hashes.save(part_dir, memo.hashes)
                suffix_hashes.trim_journal(part_dir, memo.offset)
                self._memo.remember(part_dir, suffix_hashes.Remembered(
                    suffix_hashes.stat_key(os.path.join(part_dir, suffix_hashes.HASHES_FILE)),
                    memo.hashes, 0, memo.journal, time.monotonic(), False))
                saved += 1
        return saved

    def _consolidate(self, part_dir: str) -> dict[str, SuffixHash]:
        """The partition's suffix hashes, brought up to date (lock held); the cache file
        is written only every ``hash_save_interval`` (see `suffix_hashes.Memo`)."""
        on_disk = {name for name in _listdir(part_dir) if SUFFIX_RE.fullmatch(name)}
        now = time.monotonic()
        memo = self._memo.current(part_dir)
        loaded: dict[str, SuffixHash] | None
        if memo is not None:
            loaded, offset, inode = memo.hashes, memo.offset, memo.journal
        else:
            loaded, offset, inode = suffix_hashes.load(part_dir), 0, None
        journaled, end, inode = suffix_hashes.read_journal(part_dir, offset, inode)
        cached = {} if loaded is None else loaded
        if loaded is None:
            stale = on_disk
        else:
            cutoff = time.time() - self.reclaim_age
            stale = (journaled | (on_disk - cached.keys())) & on_disk
            stale |= {s for s, h in cached.items() if s in on_disk and h.reclaimable(cutoff)}
        hashes = {s: h for s, h in cached.items() if s in on_disk and s not in stale}
        for suffix, entries in self.iter_suffixes(part_dir, stale, scanning=False):
            if entries:
                hashes[suffix] = SuffixHash(
                    suffix_hash(entries), suffix_hashes.oldest_reclaimable(entries)
                )
        hashes = dict(sorted(hashes.items()))
        unsaved = hashes != loaded or (memo is not None and memo.unsaved)
        saved = now if memo is None else memo.saved
        if (unsaved or end) and (now - saved >= self.hash_save_interval
                                 or end >= suffix_hashes.JOURNAL_LIMIT):
            if unsaved:
                suffix_hashes.save(part_dir, hashes)
            suffix_hashes.trim_journal(part_dir, end)
            unsaved, saved, end = False, now, 0
        key = suffix_hashes.stat_key(os.path.join(part_dir, suffix_hashes.HASHES_FILE))
        self._memo.remember(
            part_dir, suffix_hashes.Remembered(key, hashes, end, inode, saved, unsaved)
        )
        return hashes

    def iter_suffixes(
        self, part_dir: str, suffixes: Iterable[str] | None = None, *, scanning: bool = True
    ) -> Iterator[tuple[str, list[tuple[str, list[str]]]]]:
        """(suffix, [(hash, live object file names)]) for each suffix dir of a partition
        (all, or those named), cleaning up on the way; emptied suffix dirs are removed.

        A ``scanning`` caller (not `get_hashes`, which rehashes what it cleans) has the
        suffixes where cleanup removed files (reclaimed tombstones) journaled as changed."""
        names = _listdir(part_dir) if suffixes is None else [check_suffix(s) for s in suffixes]
        for suffix in sorted(set(names)):
            suffix_dir = os.path.join(part_dir, suffix)
            if not SUFFIX_RE.fullmatch(suffix) or not os.path.isdir(suffix_dir):
                continue
            entries = []
            changed = False
            for name_hash in sorted(_listdir(suffix_dir)):
                live, removed = self._cleanup(os.path.join(suffix_dir, name_hash), True)
                changed |= removed
                files = sorted(n for n in live if ObjectFileName.parse(n) is not None)
                if files:
                    entries.append((name_hash, files))
            if not entries:
                fsutil.remove_empty_dir(suffix_dir)
            if changed and scanning:
                suffix_hashes.invalidate(part_dir, suffix)
            yield suffix, entries

    def clean_tmp(self, device: str, *, older_than: float = 3600.0) -> int:
        """Remove temp files older than ``older_than`` seconds (left by crashes); a count."""
        tmp_dir = os.path.join(self.devices.path(device), fsutil.TMP_DIR)
        cutoff = time.time() - older_than
        removed = 0
        for name in _listdir(tmp_dir):
            path = os.path.join(tmp_dir, name)
            try:
                if os.path.isfile(path) and os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


SUFFIX_RE: Final = re.compile(r"[0-9a-f]{3}")
HASH_RE: Final = re.compile(r"[0-9a-f]{32}")


def check_suffix(suffix: str) -> str:
    """``suffix`` if it names a suffix dir (three hex digits); ValueError otherwise."""
    if not isinstance(suffix, str) or not SUFFIX_RE.fullmatch(suffix):
        raise ValueError(f"not a suffix: {suffix!r}")
    return suffix


def check_hash(name_hash: str) -> str:
    """``name_hash`` if it names a hash dir (32 hex digits); ValueError otherwise."""
    if not isinstance(name_hash, str) or not HASH_RE.fullmatch(name_hash):
        raise ValueError(f"not an object hash: {name_hash!r}")
    return name_hash


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


class _Vanished(Exception):
    """A file listed a moment ago was removed by a concurrent cleanup: list again."""


class DiskFile:
    """One object (the newest of its versions) on one device; see the module docstring."""

    def __init__(
        self, manager: DiskFileManager, device_path: str, datadir: str, name: str, policy: int
    ) -> None:
        self.manager = manager
        self.device_path = device_path
        self.datadir = datadir
        self.name = name
        self.policy = policy
        self._fp: RawFile | None = None
        self._opened = False
        self._body_length = 0
        self._body_crc: int | None = None
        self._data_metadata: Metadata = {}
        self._meta_metadata: Metadata | None = None
        self._metadata: Metadata = {}
        self._data_timestamp = Timestamp(0)
        self._data_filename = ""

    # -- reading -----------------------------------------------------------------------

    def open(self, *, now: float | None = None) -> Metadata:
        self.close()
        self._opened = False
        with fsutil.map_os_errors(self.name):
            for _attempt in range(_OPEN_ATTEMPTS):
                try:
                    state = resolve(_listdir(self.datadir))
                    return self._open_state(state, time.time() if now is None else now)
                except _Vanished:
                    continue
        raise DiskFileError(f"{self.name}: files kept vanishing while opening")

    def _open_state(self, state: HashDirState, now: float) -> Metadata:
        if state.tombstone is not None:
            raise DiskFileDeleted(self.name, timestamp=state.tombstone.timestamp)
        if state.data is None:
            raise DiskFileNotExist(self.name)
        fp, (body_length, data_md, body_crc) = self._load(state.data)
        try:
            check_data_file(self.name, state.data, body_length, data_md)
            meta_md = None
            if state.meta is not None:
                meta_md = self._load(state.meta, keep_open=False)[1].metadata
                check_timestamp(state.meta, meta_md)
        except CorruptObjectFile as exc:
            fp.close()
            raise self.quarantine(state.data.filename, str(exc)) from exc
        except BaseException:
            fp.close()
            raise
        merged = merge_metadata(data_md, meta_md) if meta_md is not None else dict(data_md)
        expires = delete_at(merged)
        if expires is not None and expires <= now:
            fp.close()
            raise DiskFileExpired(self.name, timestamp=state.data.timestamp, delete_at=expires)
        self._fp, self._opened = fp, True
        self._body_length, self._body_crc = body_length, body_crc
        self._data_metadata, self._meta_metadata, self._metadata = data_md, meta_md, merged
        self._data_timestamp = state.data.timestamp
        self._data_filename = state.data.filename
        return dict(merged)

    def _load(
        self, file: ObjectFileName, *, keep_open: bool = True
    ) -> tuple[RawFile, Trailer]:
        path = os.path.join(self.datadir, file.filename)
        try:
            fp = RawFile(path)
        except FileNotFoundError as exc:
            raise _Vanished() from exc
        try:
            trailer = read_trailer(fp.fileno(), os.fstat(fp.fileno()).st_size)
        except CorruptObjectFile as exc:
            fp.close()
            raise self.quarantine(file.filename, str(exc)) from exc
        except BaseException:
            fp.close()
            raise
        if not keep_open:
            fp.close()
        return fp, trailer

    def quarantine(self, filename: str, reason: str) -> DiskFileQuarantined:
        """Move one corrupt file aside; returns the exception to raise."""
        with fsutil.map_os_errors("quarantine"):
            try:
                target = fsutil.quarantine_file(
                    self.device_path,
                    os.path.join(self.datadir, filename),
                    fsutil.policy_dir(fsutil.OBJECTS_DIR, self.policy),
                )
            except FileNotFoundError:
                target = "(already gone)"
            self.manager.invalidate_hash(self.datadir)
        return DiskFileQuarantined(f"{self.name}/{filename} quarantined to {target}: {reason}")

    def newest_timestamp(self) -> Timestamp | None:
        """The timestamp of the current data file or tombstone, from the file names alone
        (no file is opened: what a write needs to know whether it is newer)."""
        with fsutil.map_os_errors(self.name):
            state = resolve(_listdir(self.datadir))
        current = state.tombstone or state.data
        return None if current is None else current.timestamp

    def read_metadata(self, *, now: float | None = None) -> Metadata:
        try:
            return self.open(now=now)
        finally:
            self.close()

    def _require_open(self) -> None:
        if not self._opened:
            raise DiskFileNotOpen(self.name)

    @property
    def metadata(self) -> Metadata:
        self._require_open()
        return dict(self._metadata)

    def get_datafile_metadata(self) -> Metadata:
        self._require_open()
        return dict(self._data_metadata)

    def get_metafile_metadata(self) -> Metadata | None:
        self._require_open()
        return None if self._meta_metadata is None else dict(self._meta_metadata)

    @property
    def data_timestamp(self) -> Timestamp:
        self._require_open()
        return self._data_timestamp

    @property
    def timestamp(self) -> Timestamp:
        """The newest of the data and the applied .meta (Last-Modified)."""
        self._require_open()
        return Timestamp(self._metadata[TIMESTAMP_KEY])

    @property
    def content_length(self) -> int:
        self._require_open()
        return self._body_length

    def reader(
        self, *, ranges: list[ByteRange] | None = None, chunk_size: int | None = None
    ) -> DiskFileReader:
        self._require_open()
        if self._fp is None:
            raise DiskFileNotOpen(f"{self.name}: closed, or its reader() already taken")
        resolved = None
        if ranges:
            resolved = resolve_ranges(ranges, self._body_length)
            if not resolved:
                raise RangeNotSatisfiable(self.name, content_length=self._body_length)
        fp, self._fp = self._fp, None
        return DiskFileReader(
            fp,
            body_length=self._body_length,
            etag=self._data_metadata[ETAG_KEY],
            body_crc=self._body_crc,
            ranges=resolved,
            chunk_size=chunk_size or self.manager.chunk_size,
            diskfile=self,
            filename=self._data_filename,
        )

    def close(self) -> None:
        """Release the open file (metadata and timestamps stay readable)."""
        if self._fp is not None:
            self._fp.close()
            self._fp = None

    def __enter__(self) -> DiskFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------

    def create(self, size: int | None = None) -> DiskFileWriter:
        """A writer for a new version; ``size`` (if known) is preallocated up front."""
        tmp_dir = self.manager.devices.tmp_dir(self.device_path)
        with fsutil.map_os_errors(self.name):
            fd, tmp_path = fsutil.make_temp_file(tmp_dir)
            try:
                if size:
                    preallocate(fd, size)
            except BaseException:
                os.close(fd)
                fsutil.unlink_quietly(tmp_path)
                raise
        return DiskFileWriter(self, fd, tmp_path, preallocated=size or 0)

    def write_metadata(self, timestamp: Timestamp, metadata: Mapping[str, str]) -> None:
        """Write a .meta: ``metadata`` replaces the user metadata (see `hashdir`)."""
        self._write_marker(timestamp, META, metadata)

    def delete(self, timestamp: Timestamp) -> None:
        """Write a tombstone; the object reads as deleted unless a newer .data exists."""
        self._write_marker(timestamp, TOMBSTONE, {})

    def _write_marker(self, timestamp: Timestamp, ext: str, metadata: Mapping[str, str]) -> None:
        content = dict(metadata)
        content[NAME_KEY] = self.name
        content[TIMESTAMP_KEY] = timestamp.internal
        tmp_dir = self.manager.devices.tmp_dir(self.device_path)
        fsync = self.manager.fsync
        with fsutil.map_os_errors(self.name):
            tmp_path = fsutil.write_new_file(tmp_dir, encode_file(b"", content), fsync=fsync)
            try:
                fsutil.publish_file(tmp_path, self.datadir, timestamp.internal + ext, fsync=fsync)
            except BaseException:
                fsutil.unlink_quietly(tmp_path)
                raise
            self.manager.cleanup_hashdir(self.datadir)
