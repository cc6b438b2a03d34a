"""The suffix hash cache (`suffix_hashes`) as `DiskFileManager.get_hashes` uses it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import suffix_hashes
from pocketstack.objectstore.storage.diskfile import DiskFile, DiskFileManager
from pocketstack.objectstore.storage.suffix_hashes import SuffixHash
from pocketstack.objectstore.timestamp import Timestamp

PART = 5
NOW = time.time()


def ts(offset: float) -> Timestamp:
    """Recent timestamps: a week's reclaim age keeps their tombstones."""
    return Timestamp(NOW + offset)


def make_manager(devices: Path, hasher: PathHasher) -> DiskFileManager:
    """A manager that saves its caches at every consolidation (the default defers it)."""
    manager = DiskFileManager(devices, hasher=hasher, fsync=False)
    manager.hash_save_interval = 0
    return manager


@pytest.fixture
def manager(devices: Path, hasher: PathHasher) -> DiskFileManager:
    return make_manager(devices, hasher)


def put(diskfile: DiskFile, body: bytes, timestamp: Timestamp) -> None:
    with diskfile.create(size=len(body)) as writer:
        writer.write(body)
        writer.put({"X-Timestamp": timestamp.internal})
        writer.commit(timestamp)


def part_dir(devices: Path) -> Path:
    return devices / "sda" / "objects" / str(PART)


def sneak_in(diskfile: DiskFile, timestamp: Timestamp) -> None:
    """A live file written behind the cache's back (no journal entry)."""
    os.makedirs(diskfile.datadir, exist_ok=True)
    other = Path(diskfile.datadir) / f"{timestamp.internal}.ts"
    other.write_bytes(b"")


def rehashed(manager: DiskFileManager, monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """Records which suffixes each get_hashes call of ``manager`` rehashes."""
    calls: list[set[str]] = []
    original = manager.iter_suffixes

    def spy(part: str, suffixes=None, *, scanning=True):  # type: ignore[no-untyped-def]
        if not scanning:
            calls.append(set(suffixes))
        return original(part, suffixes, scanning=scanning)

    monkeypatch.setattr(manager, "iter_suffixes", spy)
    return calls


def test_a_quiet_partition_is_served_from_the_cache(
    manager: DiskFileManager, devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = manager.get_diskfile("sda", PART, "a", "c", "o")
    put(df, b"x", ts(10))
    first = manager.get_hashes("sda", PART)
    assert (part_dir(devices) / suffix_hashes.HASHES_FILE).is_file()
    calls = rehashed(manager, monkeypatch)
    sneak_in(manager.get_diskfile("sda", PART, "a", "c", "o"), ts(20))
    assert manager.get_hashes("sda", PART) == first  # the unjournaled change is not seen
    assert calls == []  # not even consolidated: the memo answered
    # another process trusts the cache too (the change stays unseen), unless the machine
    # rebooted since the cache was written: a power failure may have lost journal entries
    fresh = make_manager(devices, manager.hasher)
    assert fresh.get_hashes("sda", PART) == first
    monkeypatch.setattr(suffix_hashes, "BOOT_ID", "another boot")
    rebooted = make_manager(devices, manager.hasher)
    assert rebooted.get_hashes("sda", PART) != first


@pytest.mark.parametrize("write", ["put", "post", "delete"])
def test_writes_invalidate_only_their_suffix(
    manager: DiskFileManager, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    objects = [manager.get_diskfile("sda", PART, "a", "c", f"o{i}") for i in range(20)]
    for df in objects:
        put(df, b"x", ts(10))
    before = manager.get_hashes("sda", PART)
    assert len(before) > 2
    calls = rehashed(manager, monkeypatch)
    target = manager.get_diskfile("sda", PART, "a", "c", "o3")
    if write == "put":
        put(target, b"y", ts(11))
    elif write == "post":
        target.write_metadata(ts(11), {"X-Object-Meta-K": "v"})
    else:
        target.delete(ts(11))
    after = manager.get_hashes("sda", PART)
    suffix = os.path.basename(os.path.dirname(target.datadir))
    assert calls == [{suffix}]
    assert {s for s in before if before[s] != after[s]} == {suffix}
    assert manager.get_hashes("sda", PART) == after and calls[1:] == []  # consumed


def test_old_tombstones_are_rehashed_without_a_write(manager: DiskFileManager) -> None:
    df = manager.get_diskfile("sda", PART, "a", "c", "o")
    df.delete(Timestamp(time.time() - 7200))
    assert len(manager.get_hashes("sda", PART)) == 1  # a week's reclaim age: it stays
    manager.reclaim_age = 3600
    assert manager.get_hashes("sda", PART) == {}
    assert not os.path.exists(df.datadir)


def test_quarantine_invalidates(manager: DiskFileManager, devices: Path) -> None:
    df = manager.get_diskfile("sda", PART, "a", "c", "o")
    put(df, b"x", ts(10))
    assert len(manager.get_hashes("sda", PART)) == 1
    [name] = os.listdir(df.datadir)
    df.quarantine(name, "test")
    assert manager.get_hashes("sda", PART) == {}


def test_an_unreadable_cache_means_a_full_rehash(
    manager: DiskFileManager, devices: Path
) -> None:
    df = manager.get_diskfile("sda", PART, "a", "c", "o")
    put(df, b"x", ts(10))
    first = manager.get_hashes("sda", PART)
    sneak_in(manager.get_diskfile("sda", PART, "a", "c", "o"), ts(20))
    (part_dir(devices) / suffix_hashes.HASHES_FILE).write_bytes(b'{"torn')
    assert manager.get_hashes("sda", PART) != first


def test_suffix_dirs_appearing_or_vanishing_are_noticed(
    manager: DiskFileManager, devices: Path
) -> None:
    put(manager.get_diskfile("sda", PART, "a", "c", "o"), b"x", ts(10))
    first = manager.get_hashes("sda", PART)
    other = next(
        df for i in range(100)
        if (df := manager.get_diskfile("sda", PART, "a", "c", f"x{i}")).datadir[-36:-33]
        not in first
    )  # fmt: skip
    sneak_in(other, ts(20))
    assert len(manager.get_hashes("sda", PART)) == 2
    (part_dir(devices) / next(iter(first))).rename(devices / "sda" / "moved")
    assert list(manager.get_hashes("sda", PART)) == [other.datadir[-36:-33]]


def test_journal_appends_during_a_rehash_are_kept(devices: Path) -> None:
    path = str(part_dir(devices))
    os.makedirs(path)
    suffix_hashes.invalidate(path, "abc")
    seen, consumed, inode = suffix_hashes.read_journal(path)
    suffix_hashes.invalidate(path, "def")  # written while "abc" is being rehashed
    assert suffix_hashes.read_journal(path, consumed, inode)[0] == {"def"}
    suffix_hashes.trim_journal(path, consumed)
    assert seen == {"abc"}
    assert suffix_hashes.read_journal(path)[0] == {"def"}
    # a journal made anew (the partition removed and made again) is read from its start,
    # whether it is another file or (its inode reused) shorter than what was read
    os.unlink(os.path.join(path, suffix_hashes.JOURNAL_FILE))
    suffix_hashes.invalidate(path, "fed")
    assert suffix_hashes.read_journal(path, 4, -1)[0] == {"fed"}
    assert suffix_hashes.read_journal(path, 8, inode)[0] == {"fed"}


def test_a_partial_journal_line_waits(devices: Path) -> None:
    path = part_dir(devices)
    path.mkdir(parents=True)
    (path / suffix_hashes.JOURNAL_FILE).write_bytes(b"abc\nde")
    assert suffix_hashes.read_journal(str(path))[:2] == ({"abc"}, 4)


def test_the_cache_format_is_versioned_and_deterministic(devices: Path) -> None:
    path = part_dir(devices)
    path.mkdir(parents=True)
    hashes = {"fff": SuffixHash("d" * 32), "abc": SuffixHash("e" * 32, 12.5)}
    suffix_hashes.save(str(path), hashes)
    raw = (path / suffix_hashes.HASHES_FILE).read_bytes()
    assert raw == suffix_hashes.encode(dict(reversed(hashes.items())))
    assert json.loads(raw)["version"] == suffix_hashes.VERSION
    assert suffix_hashes.load(str(path)) == hashes
    (path / suffix_hashes.HASHES_FILE).write_bytes(raw.replace(b'"version":1', b'"version":9'))
    assert suffix_hashes.load(str(path)) is None
    assert os.listdir(path) == [suffix_hashes.HASHES_FILE]  # no temp file left behind


def test_an_emptied_partition_goes_with_its_cache(devices: Path) -> None:
    path = part_dir(devices)
    path.mkdir(parents=True)
    suffix_hashes.invalidate(str(path), "abc")
    suffix_hashes.save(str(path), {})
    (path / "abc").mkdir()
    assert not suffix_hashes.remove_partition_if_empty(str(path))  # a suffix dir: kept
    (path / "abc").rmdir()
    assert suffix_hashes.remove_partition_if_empty(str(path))
    assert not path.exists()


def test_oldest_reclaimable() -> None:
    data, ts, meta = "0000000010.00000.data", "0000000020.00000.ts", "0000000030.00000.meta"
    assert suffix_hashes.oldest_reclaimable([("h1", [data, meta])]) is None
    assert suffix_hashes.oldest_reclaimable([("h1", [ts, meta]), ("h2", [meta])]) == 20.0
    assert suffix_hashes.oldest_reclaimable([("h1", [data]), ("h2", [meta])]) == 30.0


def test_writes_of_another_process_are_seen(
    manager: DiskFileManager, devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(manager.get_diskfile("sda", PART, "a", "c", "o"), b"x", ts(10))
    first = manager.get_hashes("sda", PART)
    other = make_manager(devices, manager.hasher)  # another worker
    other.get_diskfile("sda", PART, "a", "c", "o").delete(ts(20))
    assert manager.get_hashes("sda", PART) != first
    # and a consolidation by the other process replaces the cache file under the memo
    put(other.get_diskfile("sda", PART, "a", "c", "o"), b"y", ts(30))
    theirs = other.get_hashes("sda", PART)
    assert manager.get_hashes("sda", PART) == theirs


def test_the_memo_is_bounded(devices: Path) -> None:
    memo = suffix_hashes.Memo(max_entries=3)
    parts = []
    for index in range(3):
        path = devices / "sda" / "objects" / str(index)
        path.mkdir(parents=True)
        hashes = {f"{index:03x}": SuffixHash("d" * 32), f"f{index:02x}": SuffixHash("e" * 32)}
        for suffix in hashes:
            (path / suffix).mkdir()
        suffix_hashes.save(str(path), hashes)
        key = suffix_hashes.stat_key(str(path / suffix_hashes.HASHES_FILE))
        memo.remember(str(path), suffix_hashes.Remembered(key, hashes, 0, None, 0.0, False))
        parts.append((str(path), hashes))
    assert memo.quiet(parts[0][0], 0) is None  # evicted: 2 + 2 + 2 > 3
    assert memo.quiet(parts[2][0], 0) == parts[2][1]
    assert memo.quiet(parts[2][0], time.time() + 1) == parts[2][1]  # nothing reclaimable
    suffix_hashes.invalidate(parts[2][0], "002")
    assert memo.quiet(parts[2][0], 0) is None  # a journal entry: consolidate


def test_dirty_partitions_save_their_cache_only_now_and_then(
    devices: Path, hasher: PathHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = DiskFileManager(devices, hasher=hasher, fsync=False)  # the default interval
    df = manager.get_diskfile("sda", PART, "a", "c", "o")
    put(df, b"x", ts(10))
    first = manager.get_hashes("sda", PART)
    cache = part_dir(devices) / suffix_hashes.HASHES_FILE
    journal = part_dir(devices) / suffix_hashes.JOURNAL_FILE
    assert not cache.exists() and journal.stat().st_size == 4  # deferred: nothing written
    df.delete(ts(20))
    second = manager.get_hashes("sda", PART)
    assert second != first and not cache.exists()
    assert make_manager(devices, hasher).get_hashes("sda", PART) == second  # another process
    assert manager.get_hashes("sda", PART) == second  # its save did not confuse the memo
    put(df, b"y", ts(30))
    monkeypatch.setattr(manager, "hash_save_interval", 0)
    third = manager.get_hashes("sda", PART)
    assert third != second and cache.exists() and journal.stat().st_size == 0
    sneak_in(manager.get_diskfile("sda", PART, "a", "c", "o"), ts(40))  # no journal entry
    assert DiskFileManager(devices, hasher=hasher, fsync=False).get_hashes("sda", PART) == third


def test_unsaved_hashes_are_saved_at_shutdown(
    devices: Path, hasher: PathHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = DiskFileManager(devices, hasher=hasher, fsync=False)  # the default interval
    for number in range(20):
        put(manager.get_diskfile("sda", PART, "a", "c", f"o{number}"), b"x", ts(number))
    hashes = manager.get_hashes("sda", PART)
    journal = part_dir(devices) / suffix_hashes.JOURNAL_FILE
    assert journal.stat().st_size > 0  # consolidated in memory only
    put(manager.get_diskfile("sda", PART, "a", "c", "late"), b"y", ts(30))  # after it
    assert manager.save_hashes() == 1
    assert journal.read_bytes() == manager.get_diskfile(  # only the later write is left
        "sda", PART, "a", "c", "late").datadir.split("/")[-2].encode() + b"\n"
    assert manager.save_hashes() == 0  # nothing more to save
    restarted = DiskFileManager(devices, hasher=hasher, fsync=False)
    calls = rehashed(restarted, monkeypatch)
    after = restarted.get_hashes("sda", PART)
    late_suffix = journal.read_bytes().decode().strip()
    assert calls == [{late_suffix}]  # the next start rehashes what came after the save only
    assert {s: d for s, d in after.items() if s != late_suffix} == {
        s: d for s, d in hashes.items() if s != late_suffix}


def test_another_journal_than_the_one_read_is_not_trimmed(devices: Path,
                                                          hasher: PathHasher) -> None:
    manager = DiskFileManager(devices, hasher=hasher, fsync=False)
    df = manager.get_diskfile("sda", PART, "a", "c", "o")
    put(df, b"x", ts(1))
    manager.get_hashes("sda", PART)
    journal = part_dir(devices) / suffix_hashes.JOURNAL_FILE
    other = journal.with_name("other")  # another file (inode) than the one read
    other.write_bytes(b"abc\n")
    other.rename(journal)
    assert manager.save_hashes() == 0
    assert not (part_dir(devices) / suffix_hashes.HASHES_FILE).exists()
    assert journal.read_bytes() == b"abc\n"
