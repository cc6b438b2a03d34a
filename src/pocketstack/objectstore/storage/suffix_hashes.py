"""Cached suffix hashes of an object partition: Swift's ``hashes.pkl`` + ``hashes.invalid``.

Replication compares suffix digests every pass; recomputing them means listing every hash
dir of every suffix, which on a quiet cloud is all wasted work. So each partition dir keeps:

- ``hashes.json``: ``{"format", "version", "boot", "suffixes": {suffix: [digest, oldest]}}``,
  replaced atomically (``hashes.json.tmp``, then rename). ``oldest`` is the timestamp of the
  oldest file a tombstone reclaim could remove (a winning ``.ts``, or a ``.meta`` without
  data), or null: once it is older than ``reclaim_age`` the suffix is rehashed, so
  reclaiming needs no write to trigger it.
- ``hashes.invalid``: a journal, one suffix per line. Every write to a hash dir appends
  its suffix *after* publishing (`invalidate`), so a rehash that reads the journal sees the
  new file.

The reader (`DiskFileManager.get_hashes`) holds an exclusive ``flock`` on the partition
dir while it consolidates, so only one process or thread does at a time. It notes how many
journal bytes it read and rehashes those suffixes. Now and then (`Memo`: not every pass,
as a file write per dirty partition would cost more than the rehash) it saves the cache,
and only then drops those bytes (`trim_journal`), under the journal's own ``flock``, which
writers also take, briefly. So the saved cache plus the journal always tell every change;
a crash anywhere leaves the journal entries in place, and a missing or unreadable cache
means "rehash everything".

Neither file is fsynced (the journal is not in Swift either): a process that dies loses
nothing the kernel was given. Only a power failure or kernel crash can lose a journal entry
or roll a cache back, and that changes the kernel's boot id, which each cache records: a
cache written before the last boot is rebuilt.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from pocketstack.objectstore.storage import fsutil
from pocketstack.objectstore.storage.hashdir import DATA, ObjectFileName

HASHES_FILE: Final = "hashes.json"
JOURNAL_FILE: Final = "hashes.invalid"
TEMP_FILE: Final = "hashes.json.tmp"
CACHE_FILES: Final = (HASHES_FILE, JOURNAL_FILE, TEMP_FILE)
FORMAT: Final = "pocketstack-suffix-hashes"
VERSION: Final = 1
BOOT_ID_PATH: Final = "/proc/sys/kernel/random/boot_id"
SAVE_INTERVAL: Final = 300.0
"""Seconds a consolidated partition may go without its cache file being written."""
JOURNAL_LIMIT: Final = 16_384
"""Journal bytes that make a consolidation save the cache and trim the journal at once."""
MEMO_ENTRIES: Final = 65_536
"""Suffix hashes `Memo` keeps in memory (a few MB); beyond, caches are read from disk."""


def _boot_id() -> str:
    """This boot's id; without one (not Linux), a per-process id: no cache is trusted
    from an earlier process."""
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return f"process-{os.getpid()}-{os.urandom(8).hex()}"


BOOT_ID: Final = _boot_id()


@dataclass(frozen=True)
class SuffixHash:
    """A suffix's digest, and when a reclaim could first change it."""

    digest: str
    oldest_reclaimable: float | None = None

    def reclaimable(self, cutoff: float) -> bool:
        """True if a file in it is older than ``cutoff`` (now - reclaim_age)."""
        return self.oldest_reclaimable is not None and self.oldest_reclaimable < cutoff


def oldest_reclaimable(entries: Iterable[tuple[str, Iterable[str]]]) -> float | None:
    """The oldest timestamp among live files a reclaim may remove (see the module doc)."""
    oldest: float | None = None
    for _name_hash, filenames in entries:
        parsed = [f for n in filenames if (f := ObjectFileName.parse(n)) is not None]
        if any(f.ext == DATA for f in parsed):
            continue  # a live .data: only a newer tombstone can remove it, which is a write
        for file in parsed:
            stamp = float(file.timestamp)
            oldest = stamp if oldest is None else min(oldest, stamp)
    return oldest


def invalidate(part_dir: str, suffix: str) -> None:
    """Journal ``suffix`` as changed (call after the change is published)."""
    try:
        fd = os.open(os.path.join(part_dir, JOURNAL_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except FileNotFoundError:
        return  # the partition dir was removed: no cache left to be stale
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fsutil.write_all(fd, suffix.encode() + b"\n")
    finally:
        os.close(fd)


@contextmanager
def consolidating(part_dir: str) -> Iterator[bool]:
    """Hold the partition's consolidation lock; yields False if the dir is gone."""
    try:
        fd = os.open(part_dir, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)


def read_journal(
    part_dir: str, offset: int = 0, inode: int | None = None
) -> tuple[set[str], int, int | None]:
    """The suffixes journaled after byte ``offset`` of the journal file ``inode`` (all of
    them if the file is another one now), the offset read up to (for the next call and
    for `trim_journal`), and the file's inode (None: there is no journal)."""
    try:
        with open(os.path.join(part_dir, JOURNAL_FILE), "rb") as fh:
            stat = os.fstat(fh.fileno())
            current = stat.st_ino
            if current != inode or stat.st_size < offset:
                offset = 0  # a new journal: the partition dir was removed and made again
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return set(), 0, None
    complete = data[: data.rfind(b"\n") + 1]  # a line being appended counts next time
    suffixes = {line.decode("ascii", "replace") for line in complete.split()}
    return suffixes, offset + len(complete), current


def same_journal(part_dir: str, inode: int | None, offset: int) -> bool:
    """The journal is still file ``inode`` (None: there is none), at least ``offset`` long."""
    key = stat_key(os.path.join(part_dir, JOURNAL_FILE))
    if key is None:
        return inode is None and offset == 0
    return key[0] == inode and key[2] >= offset


def trim_journal(part_dir: str, consumed: int) -> None:
    """Drop the first ``consumed`` bytes (read by `read_journal`), keeping later appends."""
    if consumed <= 0:
        return
    try:
        fd = os.open(os.path.join(part_dir, JOURNAL_FILE), os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        rest = os.pread(fd, size - consumed, consumed) if size > consumed else b""
        os.ftruncate(fd, 0)
        if rest:
            os.pwrite(fd, rest, 0)
    finally:
        os.close(fd)


def load(part_dir: str) -> dict[str, SuffixHash] | None:
    """The cached hashes, or None if there are none (or they are unreadable, or from
    before the last boot: rehash)."""
    try:
        with open(os.path.join(part_dir, HASHES_FILE), "rb") as fh:
            document = json.loads(fh.read())
        if (document.get("format"), document.get("version")) != (FORMAT, VERSION):
            return None
        if document.get("boot") != BOOT_ID:
            return None
        return {
            suffix: SuffixHash(str(digest), None if oldest is None else float(oldest))
            for suffix, (digest, oldest) in document["suffixes"].items()
        }
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # torn or foreign: recomputing is always safe


def encode(hashes: Mapping[str, SuffixHash]) -> bytes:
    """Deterministic bytes: sorted keys, no spaces."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "boot": BOOT_ID,
        "suffixes": {s: [h.digest, h.oldest_reclaimable] for s, h in sorted(hashes.items())},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def save(part_dir: str, hashes: Mapping[str, SuffixHash]) -> None:
    """Replace the cache atomically (the consolidation lock makes the temp name ours)."""
    tmp_path = os.path.join(part_dir, TEMP_FILE)
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fsutil.write_all(fd, encode(hashes))
    finally:
        os.close(fd)
    os.replace(tmp_path, os.path.join(part_dir, HASHES_FILE))


def remove_partition_if_empty(part_dir: str) -> bool:
    """rmdir a partition dir holding nothing but its cache files; True if it went.

    The cache goes first, so a writer racing with the removal leaves a partition without
    a cache (rehashed in full), never one with a stale cache."""
    try:
        names = os.listdir(part_dir)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if any(name not in CACHE_FILES for name in names):
        return False
    for name in CACHE_FILES:
        fsutil.unlink_quietly(os.path.join(part_dir, name))
    try:
        os.rmdir(part_dir)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            return False
        raise
    return True


def stat_key(path: str) -> tuple[int, int, int] | None:
    """What tells one version of a file from another (a rename makes a new inode)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


@dataclass
class Remembered:
    """One partition's consolidated hashes, as this process last left them."""

    key: tuple[int, int, int] | None
    """The cache file they were consolidated against (None: there was none)."""
    hashes: dict[str, SuffixHash]
    offset: int
    """Journal bytes already applied to ``hashes`` (the journal is trimmed only on save)."""
    journal: int | None
    """The journal file's inode (None: there was none)."""
    saved: float
    """When the cache file was last written (monotonic; first consolidation: when)."""
    unsaved: bool
    """``hashes`` differ from the cache file's."""


class Memo:
    """In-memory copies of the partitions this process consolidated last, so that a quiet
    partition costs three syscalls and no JSON (the journal holds no more than was
    applied, the cache file is the one consolidated against, the suffix dirs are the
    cached ones), and a dirty one needs no file written: the cache file is saved and the
    journal trimmed only now and then (`DiskFileManager`), and until then every change
    since the last save is still in the journal for any other reader.

    The journal is looked at before the cache file: a save always comes before a trim, so
    if the cache file seen after it is unchanged, no trim came before either. Least
    recently used partitions go first once the memo holds more than ``max_entries``
    suffixes."""

    def __init__(self, max_entries: int = MEMO_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._parts: OrderedDict[str, Remembered] = OrderedDict()
        self._size = 0

    def remember(self, part_dir: str, entry: Remembered) -> None:
        """Keep ``entry`` for ``part_dir`` (consolidation lock held)."""
        with self._lock:
            self._forget(part_dir)
            if len(entry.hashes) > self.max_entries:
                return
            self._parts[part_dir] = entry
            self._size += len(entry.hashes)
            while self._size > self.max_entries:
                self._forget(next(iter(self._parts)))

    def forget(self, part_dir: str) -> None:
        """Drop ``part_dir`` (its dir is being removed)."""
        with self._lock:
            self._forget(part_dir)

    def _forget(self, part_dir: str) -> None:
        old = self._parts.pop(part_dir, None)
        if old is not None:
            self._size -= len(old.hashes)

    def unsaved(self) -> list[str]:
        """The partitions whose cache file or journal trim is still to be written."""
        with self._lock:
            return [part for part, entry in self._parts.items()
                    if entry.unsaved or entry.offset]

    def current(self, part_dir: str) -> Remembered | None:
        """The remembered entry if the cache file is still the one it was consolidated
        against (one ``stat``)."""
        with self._lock:
            entry = self._parts.get(part_dir)
        if entry is None or stat_key(os.path.join(part_dir, HASHES_FILE)) != entry.key:
            return None
        return entry

    def quiet(self, part_dir: str, cutoff: float) -> dict[str, SuffixHash] | None:
        """The remembered hashes if nothing changed since (see the class docstring) and no
        reclaim is due (files older than ``cutoff``); None means: consolidate."""
        with self._lock:
            entry = self._parts.get(part_dir)
            if entry is not None:
                self._parts.move_to_end(part_dir)
        if entry is None:
            return None
        try:
            journal = os.stat(os.path.join(part_dir, JOURNAL_FILE))
        except FileNotFoundError:
            if entry.journal is not None:
                return None
        else:
            if (journal.st_ino, journal.st_size) != (entry.journal, entry.offset):
                return None
        if stat_key(os.path.join(part_dir, HASHES_FILE)) != entry.key:
            return None
        try:
            names = os.listdir(part_dir)
        except (FileNotFoundError, NotADirectoryError):
            return None
        hashes = entry.hashes
        if len(names) - sum(n in CACHE_FILES for n in names) != len(hashes) or any(
            n not in hashes and n not in CACHE_FILES for n in names
        ):
            return None
        if any(h.reclaimable(cutoff) for h in hashes.values()):
            return None
        return hashes
