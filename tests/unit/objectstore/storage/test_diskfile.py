"""What only the disk DiskFile does: layout, durability, crash safety, quarantine, ENOSPC."""

from __future__ import annotations

import errno
import os
import re
import shutil
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import diskfile_io, fsutil, suffix_hashes
from pocketstack.objectstore.storage.diskfile import DiskFile, DiskFileManager
from pocketstack.objectstore.storage.exceptions import (
    DeviceUnavailable,
    DiskFileError,
    DiskFileNoSpace,
    DiskFileNotExist,
    DiskFileQuarantined,
)
from pocketstack.objectstore.storage.fileformat import (
    MAGIC,
    encode_file,
    encode_metadata,
    read_trailer,
)
from pocketstack.objectstore.storage.replica_files import ReplicaFiles
from pocketstack.objectstore.timestamp import Timestamp


@pytest.fixture
def manager(devices: Path, hasher: PathHasher) -> DiskFileManager:
    return DiskFileManager(devices, hasher=hasher, fsync=False)


def put(diskfile: DiskFile, body: bytes, timestamp: Timestamp) -> None:
    with diskfile.create(size=len(body)) as writer:
        writer.write(body)
        writer.put({"X-Timestamp": timestamp.internal})
        writer.commit(timestamp)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_layout(manager: DiskFileManager, devices: Path, hasher: PathHasher) -> None:
    ts = Timestamp.now()
    put(manager.get_diskfile("sda", 7, "a", "c", "o"), b"body", ts)
    put(manager.get_diskfile("sda", 7, "a", "c", "o", policy=2), b"two", ts)
    name_hash = hasher.hexdigest("a", "c", "o")
    data = devices / "sda" / "objects" / "7" / name_hash[-3:] / name_hash / f"{ts.internal}.data"
    data2 = devices / "sda" / "objects-2" / "7" / name_hash[-3:] / name_hash / f"{ts.internal}.data"
    journals = [devices / "sda" / d / "7" / "hashes.invalid" for d in ("objects", "objects-2")]
    assert files_under(devices) == sorted([data, data2, *journals])  # writes mark suffixes
    raw = data.read_bytes()
    assert raw[:4] == b"body"  # the body is the first N bytes
    fd = os.open(data, os.O_RDONLY)
    try:
        body_length, metadata, body_crc = read_trailer(fd, len(raw))
    finally:
        os.close(fd)
    assert body_length == 4 and metadata["name"] == "/a/c/o"
    assert body_crc == zlib.crc32(b"body")


def test_meta_and_tombstone_files(manager: DiskFileManager) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    now = Timestamp.now()
    put(df, b"x", now)
    df.write_metadata(Timestamp(now, delta=1), {"X-Object-Meta-A": "1"})
    assert sorted(os.listdir(df.datadir)) == [
        now.internal + ".data",
        Timestamp(now, delta=1).internal + ".meta",
    ]
    df.delete(Timestamp(now, delta=2))
    assert os.listdir(df.datadir) == [Timestamp(now, delta=2).internal + ".ts"]


def test_writes_go_through_tmp_and_appear_only_on_commit(
    manager: DiskFileManager, devices: Path
) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    ts = Timestamp.now()
    with df.create() as writer:
        writer.write(b"data")
        writer.put({"X-Timestamp": ts.internal})
        assert len(os.listdir(devices / "sda" / "tmp")) == 1
        assert not os.path.exists(df.datadir)
        writer.commit(ts)
    assert os.listdir(devices / "sda" / "tmp") == []
    assert os.listdir(df.datadir) == [ts.internal + ".data"]


def test_crash_before_rename_leaves_nothing_visible(
    manager: DiskFileManager, devices: Path
) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    writer = df.create()
    writer.write(b"half")
    writer.put({"X-Timestamp": Timestamp.now().internal})
    del writer  # the process dies here: no commit, no close
    with pytest.raises(DiskFileNotExist):
        manager.get_diskfile("sda", 0, "a", "c", "o").open()
    (leftover,) = os.listdir(devices / "sda" / "tmp")
    put(manager.get_diskfile("sda", 0, "a", "c", "o"), b"whole", Timestamp.now())
    assert manager.get_diskfile("sda", 0, "a", "c", "o").open()["Content-Length"] == "5"
    assert manager.clean_tmp("sda") == 0  # too young to be sure it is abandoned
    old = time.time() - 7200
    os.utime(devices / "sda" / "tmp" / leftover, (old, old))
    assert manager.clean_tmp("sda") == 1
    assert os.listdir(devices / "sda" / "tmp") == []


def test_failed_rename_discards_the_temp_file(
    manager: DiskFileManager, devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")

    def broken_rename(src: Any, dst: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "rename", broken_rename)
    ts = Timestamp.now()
    with pytest.raises(DiskFileError) as caught, df.create() as writer:
        writer.write(b"x")
        writer.put({"X-Timestamp": ts.internal})
        writer.commit(ts)
    assert caught.value.status == 500
    assert isinstance(caught.value.__cause__, OSError)
    monkeypatch.undo()
    assert os.listdir(devices / "sda" / "tmp") == []
    with pytest.raises(DiskFileNotExist):
        df.open()


def test_crash_before_cleanup_newest_still_wins(manager: DiskFileManager) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    old, new = Timestamp.now(), Timestamp.now(delta=10)
    put(df, b"new", new)
    # an older version left behind, as if the process died between rename and cleanup
    with open(os.path.join(df.datadir, old.internal + ".data"), "wb") as handle:
        handle.write(
            encode_file(
                b"old",
                {"name": "/a/c/o", "X-Timestamp": old.internal, "Content-Length": "3", "ETag": "x"},
            )
        )
    df.open()
    assert b"".join(df.reader()) == b"new"
    df.write_metadata(Timestamp.now(delta=20), {})
    assert not os.path.exists(os.path.join(df.datadir, old.internal + ".data"))


def test_junk_in_the_hash_dir_is_ignored(manager: DiskFileManager) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    ts = Timestamp.now()
    put(df, b"x", ts)
    Path(df.datadir, f".{ts.internal}.data.Ab12Cd").write_bytes(b"rsync temp")
    Path(df.datadir, "notes.txt").write_bytes(b"junk")
    assert df.read_metadata()["Content-Length"] == "1"
    before = manager.get_hashes("sda", 0)
    os.unlink(os.path.join(df.datadir, "notes.txt"))
    assert manager.get_hashes("sda", 0) == before


def _data_path(df: DiskFile) -> Path:
    (name,) = [n for n in os.listdir(df.datadir) if n.endswith(".data")]
    return Path(df.datadir, name)


def test_quarantine_moves_the_file_under_quarantined(
    manager: DiskFileManager, devices: Path, hasher: PathHasher
) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    put(df, b"0123456789", Timestamp.now())
    path = _data_path(df)
    raw = bytearray(path.read_bytes())
    raw[3] ^= 1
    path.write_bytes(bytes(raw))
    df.open()
    with pytest.raises(DiskFileQuarantined):
        b"".join(df.reader())
    name_hash = hasher.hexdigest("a", "c", "o")
    assert os.listdir(devices / "sda" / "quarantined" / "objects" / name_hash) == [path.name]
    assert not path.exists()


def _rewrite(path: Path, *, version: int = 2, **changes: str) -> None:
    """Rewrite an object file in format ``version`` (1: without the body's CRC), with
    ``changes`` to its metadata, as a file written that way would be."""
    raw = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        length, metadata, _crc = read_trailer(fd, len(raw))
    finally:
        os.close(fd)
    metadata.update(changes)
    body = raw[:length]
    if version == 2:
        path.write_bytes(encode_file(body, metadata))
        return
    blob = encode_metadata(metadata)
    path.write_bytes(body + blob + struct.pack(">QIIHH4s", length, len(blob),
                                                   zlib.crc32(blob), 0, 1, MAGIC))


def test_a_version_1_file_is_read_and_checked_against_its_md5(manager: DiskFileManager) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    put(df, b"0123456789", Timestamp.now())
    path = _data_path(df)
    _rewrite(path, version=1)
    df.open()
    assert b"".join(df.reader()) == b"0123456789"
    raw = bytearray(path.read_bytes())
    raw[3] ^= 1
    path.write_bytes(bytes(raw))
    df.open()
    with pytest.raises(DiskFileQuarantined, match="md5"):
        b"".join(df.reader())
    assert not path.exists()


def test_a_get_checks_the_crc_and_the_auditor_also_the_md5(
    manager: DiskFileManager, hasher: PathHasher
) -> None:
    """A body whose CRC-32 holds but whose ETag does not (only a bug could write one): a
    GET's read passes it, the replica reader of the auditor and the replicator does not."""
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    put(df, b"0123456789", Timestamp.now())
    path = _data_path(df)
    _rewrite(path, ETag="0" * 32)
    df.open()
    assert b"".join(df.reader()) == b"0123456789"
    name_hash = hasher.hexdigest("a", "c", "o")
    with pytest.raises(DiskFileQuarantined, match="md5"):  # the whole body is read ahead
        ReplicaFiles(manager).open_file("sda", 0, 0, name_hash, path.name)
    assert not path.exists()


@pytest.mark.parametrize("truncate_to", [0, 5, 12, -1])
def test_damaged_files_are_quarantined_on_open(
    manager: DiskFileManager, devices: Path, truncate_to: int
) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    put(df, b"0123456789", Timestamp.now())
    path = _data_path(df)
    raw = path.read_bytes()
    path.write_bytes(raw[:truncate_to])
    with pytest.raises(DiskFileQuarantined):
        df.open()
    assert not path.exists()
    assert len(files_under(devices / "sda" / "quarantined")) == 1


def test_damaged_meta_file_is_quarantined(manager: DiskFileManager, devices: Path) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    put(df, b"x", Timestamp.now())
    meta_ts = Timestamp.now(delta=5)
    df.write_metadata(meta_ts, {"X-Object-Meta-A": "1"})
    Path(df.datadir, meta_ts.internal + ".meta").write_bytes(b"garbage")
    with pytest.raises(DiskFileQuarantined):
        df.open()
    assert df.read_metadata()["Content-Length"] == "1"  # the .data itself is fine


def test_a_stale_reader_never_quarantines_a_newer_version(manager: DiskFileManager) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    put(df, b"version one", Timestamp.now())
    df.open()
    with open(_data_path(df), "r+b") as handle:
        handle.write(b"V")  # rot in the version the reader holds
    put(manager.get_diskfile("sda", 0, "a", "c", "o"), b"version two", Timestamp.now(delta=1))
    with pytest.raises(DiskFileQuarantined):
        b"".join(df.reader())
    fresh = manager.get_diskfile("sda", 0, "a", "c", "o")
    fresh.open()
    assert b"".join(fresh.reader()) == b"version two"


def test_preallocated_space_is_trimmed(manager: DiskFileManager) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    ts = Timestamp.now()
    with df.create(size=100_000) as writer:
        writer.write(b"short")
        writer.put({"X-Timestamp": ts.internal})
        writer.commit(ts)
    df.open()
    assert b"".join(df.reader()) == b"short"


def test_a_removed_tmp_dir_is_made_again_but_never_a_removed_device(
    manager: DiskFileManager, devices: Path
) -> None:
    put(manager.get_diskfile("sda", 0, "a", "c", "o1"), b"one", Timestamp.now())
    (devices / "sda" / "tmp").rmdir()  # by hand, while the process remembers it made it
    put(manager.get_diskfile("sda", 0, "a", "c", "o2"), b"two", Timestamp.now())
    df = manager.get_diskfile("sda", 0, "a", "c", "o2")
    df.open()
    assert b"".join(df.reader()) == b"two"
    shutil.rmtree(devices / "sda")  # the device went away after its path was checked
    with pytest.raises(DiskFileError):
        df.create(size=3)
    assert not (devices / "sda").exists()  # nothing was written on the parent filesystem


def _raise(code: int) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_full_device_on_write(
    manager: DiskFileManager, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    with df.create() as writer:
        monkeypatch.setattr(fsutil, "write_all", _raise(code))
        with pytest.raises(DiskFileNoSpace) as caught:
            writer.write(b"x")
    assert caught.value.status == 507
    with pytest.raises(DiskFileNoSpace):
        df.write_metadata(Timestamp.now(), {})
    with pytest.raises(DiskFileNoSpace):
        df.delete(Timestamp.now())


def test_full_device_on_preallocate_and_temp_file(
    manager: DiskFileManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = manager.get_diskfile("sda", 0, "a", "c", "o")
    monkeypatch.setattr(os, "posix_fallocate", _raise(errno.ENOSPC))
    with pytest.raises(DiskFileNoSpace):
        df.create(size=10)
    assert df.create() is not None  # no size: nothing to preallocate
    monkeypatch.setattr(os, "posix_fallocate", _raise(errno.EOPNOTSUPP))
    df.create(size=10).close()  # unsupported preallocation is not an error
    monkeypatch.setattr(fsutil, "make_temp_file", _raise(errno.ENOSPC))
    with pytest.raises(DiskFileNoSpace):
        df.create()


def test_syncs_only_when_asked(
    devices: Path, hasher: PathHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        calls.append("fdatasync")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    put(
        DiskFileManager(devices, hasher=hasher, fsync=False).get_diskfile("sda", 0, "a", "c", "o"),
        b"x",
        Timestamp.now(),
    )
    assert calls == []
    synced = DiskFileManager(devices, hasher=hasher, fsync=True)
    put(synced.get_diskfile("sda", 9, "a", "c", "new"), b"x", Timestamp.now())
    # the file's data, its hash dir, and the parents of the 3 dirs created for it
    # (objects/9, its suffix dir and the hash dir)
    assert calls.count("fdatasync") == 1 and calls.count("fsync") == 4
    calls.clear()
    put(synced.get_diskfile("sda", 9, "a", "c", "new"), b"y", Timestamp.now())
    assert calls == ["fdatasync", "fsync"]


def test_check_mount(devices: Path, hasher: PathHasher, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = DiskFileManager(devices, hasher=hasher, check_mount=True)
    with pytest.raises(DeviceUnavailable):
        manager.get_diskfile("sda", 0, "a", "c", "o")
    monkeypatch.setattr(os.path, "ismount", lambda path: str(path).endswith("sda"))
    manager.get_diskfile("sda", 0, "a", "c", "o")
    with pytest.raises(DeviceUnavailable):
        manager.get_diskfile("sdb", 0, "a", "c", "o")


def test_a_removed_device_is_unavailable(manager: DiskFileManager, devices: Path) -> None:
    df = manager.get_diskfile("sdb", 0, "a", "c", "o")
    shutil.rmtree(devices / "sdb")
    with pytest.raises(DeviceUnavailable):
        manager.get_diskfile("sdb", 0, "a", "c", "o")
    with pytest.raises(DiskFileNotExist):
        df.open()


EVIL_NAMES = [
    "../../../escape",
    "..",
    "a/../../b",
    "\x00",
    "/",
    "//",
    "x" * 4096,
    "\U0010ffff",
    "\udcff",
    "tmp",
    "../tmp/x",
    "~",
    "$HOME",
    "*",
    "\n",
]


def test_names_never_become_paths(manager: DiskFileManager, devices: Path) -> None:
    for index, name in enumerate(EVIL_NAMES):
        for account, container, obj in [(name, "c", "o"), ("a", name, "o"), ("a", "c", name)]:
            ts = Timestamp.now(offset=index + 1)
            put(manager.get_diskfile("sda", 3, account, container, obj), b"x", ts)
            manager.get_diskfile("sda", 3, account, container, obj).delete(Timestamp(ts, offset=1))
    pattern = re.compile(
        r"sda/objects/3/([0-9a-f]{3}/[0-9a-f]{32}/[0-9]{10}\.[0-9]{5}(_[0-9a-f]{16})?\.ts"
        r"|hashes\.invalid)"
    )
    for path in files_under(devices):
        relative = path.relative_to(devices).as_posix()
        assert pattern.fullmatch(relative), relative
    assert os.listdir(devices) == ["sda", "sdb"] or sorted(os.listdir(devices)) == ["sda", "sdb"]


def test_get_hashes_removes_empty_dirs(manager: DiskFileManager, devices: Path) -> None:
    old = Timestamp(time.time() - 30 * 86400)
    df = manager.get_diskfile("sda", 4, "a", "c", "o")
    df.delete(old)  # reclaimed at once: older than reclaim_age
    os.makedirs(os.path.join(devices, "sda", "objects", "4", "fff", "f" * 32))
    assert manager.get_hashes("sda", 4) == {}
    left = os.listdir(devices / "sda" / "objects" / "4")
    assert [name for name in left if name not in suffix_hashes.CACHE_FILES] == []


def test_raw_file_closes_itself() -> None:
    raw = diskfile_io.RawFile(os.devnull)
    fd = raw.fileno()
    del raw
    with pytest.raises(OSError):
        os.fstat(fd)


@pytest.mark.parametrize("vanishing", ["suffix", "hash"])
def test_a_dir_removed_by_a_concurrent_scan_while_publishing_is_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vanishing: str) -> None:
    """Replication's suffix scan removes empty suffix and hash dirs. One may go between
    the mkdirs of a write, or between the last mkdir and the rename: the write makes them
    again, and every directory it made, in any attempt, has its parent fsync'd."""
    part = tmp_path / "objects" / "7"
    suffix, hash_dir = part / "abc", part / "abc" / "0123abc"
    tmp = tmp_path / "tmp.file"
    tmp.write_bytes(b"data")
    real_mkdir, real_rename = os.mkdir, os.rename
    raced: list[str] = []

    def mkdir(path: Any, *args: Any) -> None:
        if vanishing == "suffix" and os.fspath(path) == str(hash_dir) and not raced:
            raced.append("suffix")
            os.rmdir(suffix)  # the scan found it empty, just after it was made
        real_mkdir(path, *args)

    def rename(src: Any, dst: Any) -> None:
        if vanishing == "hash" and not raced:
            raced.append("hash")
            os.rmdir(hash_dir)
        real_rename(src, dst)

    synced: list[str] = []
    monkeypatch.setattr(fsutil.os, "mkdir", mkdir)
    monkeypatch.setattr(fsutil.os, "rename", rename)
    monkeypatch.setattr(fsutil, "fsync_dir", lambda path: synced.append(os.fspath(path)))
    assert fsutil.publish_file(str(tmp), str(hash_dir), "1.data", fsync=True)
    assert raced == [vanishing]
    assert (hash_dir / "1.data").read_bytes() == b"data" and not tmp.exists()
    assert set(synced) == {str(p) for p in (hash_dir, suffix, part, part.parent,
                                            part.parent.parent)}
