"""The DiskFile contract, run against every implementation (disk and memory).

Capability flags: ``on_disk`` (durability, temp files and quarantine directories are
checked in test_diskfile.py, not here).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage.diskfile import DiskFileManager
from pocketstack.objectstore.storage.exceptions import (
    DeviceUnavailable,
    DiskFileCollision,
    DiskFileDeleted,
    DiskFileError,
    DiskFileExpired,
    DiskFileNotExist,
    DiskFileNotOpen,
    DiskFileQuarantined,
    NotFound,
    RangeNotSatisfiable,
)
from pocketstack.objectstore.storage.mem_diskfile import MemDiskFileManager, MemFile
from pocketstack.objectstore.timestamp import Timestamp


@dataclass(frozen=True)
class CollidingHasher(PathHasher):
    """Every object hashes alike: a forced md5 collision."""

    def hexdigest(self, account: str, container: str | None = None, obj: str | None = None) -> str:
        return "0" * 29 + "abc"


@dataclass
class Harness:
    manager: Any
    corrupt: Callable[[Any], None]
    on_disk: bool

    def diskfile(self, obj: str = "o", *, device: str = "sda", policy: int = 0) -> Any:
        return self.manager.get_diskfile(device, 1, "a", "c", obj, policy)


def _corrupt_disk(diskfile: Any) -> None:
    (data,) = [n for n in os.listdir(diskfile.datadir) if n.endswith(".data")]
    with open(os.path.join(diskfile.datadir, data), "r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))


def _corrupt_mem(diskfile: Any) -> None:
    files = diskfile.manager.stored_files(diskfile.key)
    (data,) = [n for n in files if n.endswith(".data")]
    body = files[data].body
    stored = MemFile(bytes([body[0] ^ 0xFF]) + body[1:], files[data].metadata)
    diskfile.manager.replace_file(diskfile.key, data, stored)


def _make(kind: str, devices: Path, hasher: PathHasher, **options: Any) -> Harness:
    manager: Any
    if kind == "disk":
        manager = DiskFileManager(devices, hasher=hasher, fsync=False, **options)
        return Harness(manager, _corrupt_disk, True)
    manager = MemDiskFileManager(hasher=hasher, devices=["sda", "sdb"], **options)
    return Harness(manager, _corrupt_mem, False)


@pytest.fixture(params=["disk", "mem"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def harness(kind: str, devices: Path, hasher: PathHasher) -> Harness:
    return _make(kind, devices, hasher)


def put(
    diskfile: Any,
    body: bytes,
    timestamp: Timestamp,
    metadata: dict[str, str] | None = None,
    chunk: int = 7,
) -> None:
    with diskfile.create(size=len(body)) as writer:
        for offset in range(0, len(body), chunk):
            writer.write(body[offset : offset + chunk])
        writer.put(
            {"X-Timestamp": timestamp.internal, "Content-Type": "text/plain", **(metadata or {})}
        )
        writer.commit(timestamp)


def read(diskfile: Any, **kwargs: Any) -> bytes:
    diskfile.open()
    return b"".join(diskfile.reader(**kwargs))


def test_put_then_open_and_read(harness: Harness) -> None:
    df = harness.diskfile()
    ts = Timestamp.now()
    put(df, b"hello world", ts, {"X-Object-Meta-Color": "blue"})
    metadata = harness.diskfile().open()
    assert metadata == {
        "name": "/a/c/o",
        "X-Timestamp": ts.internal,
        "Content-Length": "11",
        "ETag": hashlib.md5(b"hello world").hexdigest(),
        "Content-Type": "text/plain",
        "X-Object-Meta-Color": "blue",
    }
    df = harness.diskfile()
    assert read(df) == b"hello world"
    assert df.data_timestamp == ts == df.timestamp
    assert df.content_length == 11
    assert df.get_metafile_metadata() is None


def test_writer_reports_size_and_etag(harness: Harness) -> None:
    with harness.diskfile().create() as writer:
        assert writer.write(b"abc") == 3
        assert writer.write(b"de") == 5
        assert writer.bytes_written == 5
        assert writer.etag == hashlib.md5(b"abcde").hexdigest()


def test_missing_object(harness: Harness) -> None:
    df = harness.diskfile()
    with pytest.raises(DiskFileNotExist) as caught:
        df.open()
    assert not isinstance(caught.value, DiskFileDeleted)
    assert caught.value.status == 404


def test_reader_needs_an_open_file(harness: Harness) -> None:
    df = harness.diskfile()
    with pytest.raises(DiskFileNotOpen):
        df.reader()
    with pytest.raises(DiskFileNotOpen):
        _ = df.metadata
    put(df, b"x", Timestamp.now())
    df.open()
    reader = df.reader()
    with pytest.raises(DiskFileNotOpen):
        df.reader()
    assert b"".join(reader) == b"x"
    metadata = df.read_metadata()
    assert df.metadata == metadata and df.content_length == 1
    with pytest.raises(DiskFileNotOpen):
        df.reader()


def test_chunks_have_the_configured_size(kind: str, devices: Path, hasher: PathHasher) -> None:
    harness = _make(kind, devices, hasher, chunk_size=32)
    df = harness.diskfile()
    put(df, bytes(range(100)), Timestamp.now())
    df.open()
    assert [len(c) for c in df.reader()] == [32, 32, 32, 4]
    df.open()
    assert [len(c) for c in df.reader(chunk_size=50)] == [50, 50]


def test_large_object_streams_in_many_chunks(harness: Harness) -> None:
    body = os.urandom(1 << 20)
    df = harness.diskfile()
    put(df, body, Timestamp.now(), chunk=100_000)
    df.open()
    chunks = list(df.reader())
    assert len(chunks) == 16
    assert b"".join(chunks) == body


def test_empty_object(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"", Timestamp.now())
    assert read(df) == b""
    assert df.metadata["ETag"] == hashlib.md5(b"").hexdigest()


def test_delete_writes_a_tombstone(harness: Harness) -> None:
    base = Timestamp.now()
    df = harness.diskfile()
    put(df, b"x", base)
    df.delete(Timestamp(base, delta=200))
    with pytest.raises(DiskFileDeleted) as caught:
        df.open()
    assert caught.value.timestamp == Timestamp(base, delta=200)
    put(df, b"older", Timestamp(base, delta=150))
    with pytest.raises(DiskFileDeleted):
        df.open()
    put(df, b"newer", Timestamp(base, delta=300))
    assert read(df) == b"newer"


def test_newest_timestamp_is_the_current_data_or_tombstone(harness: Harness) -> None:
    base = Timestamp.now()
    df = harness.diskfile()
    assert df.newest_timestamp() is None
    put(df, b"x", base, {"X-Delete-At": str(int(base) - 10)})  # expired: still the newest
    assert df.newest_timestamp() == base
    df.write_metadata(Timestamp(base, delta=100), {})  # a .meta is not a new version
    assert df.newest_timestamp() == base
    df.delete(Timestamp(base, delta=200))
    assert df.newest_timestamp() == Timestamp(base, delta=200)
    put(df, b"older", Timestamp(base, delta=150))  # loses to the tombstone
    assert df.newest_timestamp() == Timestamp(base, delta=200)
    put(df, b"newer", Timestamp(base, delta=300))
    assert df.newest_timestamp() == Timestamp(base, delta=300)
    harness.corrupt(df)  # names only: a corrupt file is neither opened nor moved aside
    assert df.newest_timestamp() == Timestamp(base, delta=300)


def test_newest_write_wins_whatever_the_order(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"two", Timestamp(2))
    put(df, b"one", Timestamp(1))
    assert read(df) == b"two"
    put(df, b"three", Timestamp(2, offset=1))
    assert read(df) == b"three"


def test_post_replaces_user_metadata_and_keeps_system_metadata(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"x", Timestamp(1), {"X-Object-Meta-A": "1", "X-Object-Sysmeta-S": "s"})
    df.write_metadata(Timestamp(2), {"X-Object-Meta-B": "2"})
    metadata = df.read_metadata()
    assert metadata["X-Object-Meta-B"] == "2"
    assert "X-Object-Meta-A" not in metadata
    assert metadata["X-Object-Sysmeta-S"] == "s"
    assert metadata["Content-Type"] == "text/plain"
    assert metadata["X-Timestamp"] == Timestamp(2).internal
    assert df.timestamp == Timestamp(2) and df.data_timestamp == Timestamp(1)
    assert df.get_datafile_metadata()["X-Object-Meta-A"] == "1"
    df.write_metadata(Timestamp(3), {"X-Object-Meta-C": "3", "Content-Type": "a/b"})
    metadata = df.read_metadata()
    assert "X-Object-Meta-B" not in metadata
    assert metadata["Content-Type"] == "a/b"
    assert df.get_metafile_metadata() == {
        "name": "/a/c/o",
        "X-Timestamp": Timestamp(3).internal,
        "X-Object-Meta-C": "3",
        "Content-Type": "a/b",
    }


def test_meta_older_than_the_data_does_not_apply(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"x", Timestamp(1))
    df.write_metadata(Timestamp(2), {"X-Object-Meta-A": "1"})
    put(df, b"y", Timestamp(3))
    assert "X-Object-Meta-A" not in df.read_metadata()


def test_expired_objects(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"x", Timestamp(1), {"X-Delete-At": "1000"})
    with pytest.raises(DiskFileExpired) as caught:
        df.open()
    assert caught.value.delete_at == 1000
    assert caught.value.timestamp == Timestamp(1)
    assert isinstance(caught.value, DiskFileDeleted)
    assert df.read_metadata(now=999.0)["X-Delete-At"] == "1000"
    df.write_metadata(Timestamp(2), {})
    assert "X-Delete-At" not in df.read_metadata()
    df.write_metadata(Timestamp(3), {"X-Delete-At": str(int(time.time()) + 3600)})
    df.read_metadata()
    with pytest.raises(DiskFileExpired):
        df.open(now=time.time() + 7200)


def test_collision(kind: str, devices: Path) -> None:
    harness = _make(kind, devices, CollidingHasher())
    put(harness.diskfile("one"), b"1", Timestamp(1))
    with pytest.raises(DiskFileCollision) as caught:
        harness.diskfile("two").open()
    assert caught.value.status == 403
    assert read(harness.diskfile("one")) == b"1"


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        ([(0, 3)], b"012"),
        ([(5, None)], b"56789"),
        ([(-3, None)], b"789"),
        ([(8, 100)], b"89"),
        ([(0, 2), (4, 6), (-1, None)], b"01459"),
        ([(0, 10)], b"0123456789"),
        ([(20, None), (1, 2)], b"1"),
        ([(-100, None)], b"0123456789"),
    ],
)
def test_ranges(harness: Harness, ranges: list[tuple[int, int | None]], expected: bytes) -> None:
    df = harness.diskfile()
    put(df, b"0123456789", Timestamp.now())
    df.open()
    reader = df.reader(ranges=ranges, chunk_size=2)
    assert reader.content_length == len(expected)
    assert b"".join(reader) == expected


@pytest.mark.parametrize("ranges", [[(10, None)], [(20, 30)], [(3, 3)], [(5, 2)]])
def test_unsatisfiable_ranges(harness: Harness, ranges: list[tuple[int, int | None]]) -> None:
    df = harness.diskfile()
    put(df, b"0123456789", Timestamp.now())
    df.open()
    with pytest.raises(RangeNotSatisfiable) as caught:
        df.reader(ranges=ranges)
    assert caught.value.content_length == 10 and caught.value.status == 416


def test_corrupt_body_is_quarantined_on_a_full_read(
    kind: str, devices: Path, hasher: PathHasher
) -> None:
    harness = _make(kind, devices, hasher, chunk_size=4)
    df = harness.diskfile()
    put(df, b"0123456789", Timestamp.now())
    harness.corrupt(df)
    df.open()
    received = []
    with pytest.raises(DiskFileQuarantined) as caught:
        for chunk in df.reader():
            received.append(chunk)
    assert b"".join(received) == b"\xcf1234567"  # the last chunk is withheld
    assert caught.value.status == 404
    with pytest.raises(DiskFileNotExist):
        harness.diskfile().open()


def test_ranged_reads_are_not_verified(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"0123456789", Timestamp.now())
    harness.corrupt(df)
    df.open()
    assert b"".join(df.reader(ranges=[(1, 3)])) == b"12"
    assert harness.diskfile().open()["Content-Length"] == "10"


def test_small_corrupt_object_fails_before_any_byte(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"tiny", Timestamp.now())
    harness.corrupt(df)
    df.open()
    chunks: Iterator[bytes] = iter(df.reader())
    with pytest.raises(DiskFileQuarantined):
        next(chunks)


def test_unfinished_writes_are_invisible(harness: Harness) -> None:
    df = harness.diskfile()
    with df.create() as writer:
        writer.write(b"abandoned")
    with pytest.raises(DiskFileNotExist):
        df.open()
    with pytest.raises(RuntimeError), df.create() as writer:
        writer.write(b"x")
        writer.put({"X-Timestamp": Timestamp(1).internal})
        raise RuntimeError("client went away")
    with pytest.raises(DiskFileNotExist):
        df.open()


def test_writer_misuse(harness: Harness) -> None:
    df = harness.diskfile()
    with df.create() as writer:
        with pytest.raises(DiskFileError):
            writer.commit(Timestamp(1))
        with pytest.raises(ValueError):
            writer.put({})
        writer.put({"X-Timestamp": Timestamp(1).internal})
        with pytest.raises(DiskFileError):
            writer.write(b"late")
        with pytest.raises(DiskFileError):
            writer.put({"X-Timestamp": Timestamp(1).internal})
        with pytest.raises(ValueError):
            writer.commit(Timestamp(2))


def test_an_open_object_stays_readable_when_replaced(harness: Harness) -> None:
    df = harness.diskfile()
    put(df, b"first", Timestamp(1))
    df.open()
    put(harness.diskfile(), b"second", Timestamp(2))
    harness.diskfile().delete(Timestamp(3))
    assert b"".join(df.reader()) == b"first"


@pytest.mark.parametrize(
    "obj",
    [
        "../../../etc/passwd",
        "a/b/c",
        "..",
        ".",
        "nul\x00byte",
        "ü/日本/😀",
        "x" * 1024,
        "/leading",
        "trailing/",
        "%2e%2e",
        "\\..\\",
    ],
)
def test_any_name_round_trips(harness: Harness, obj: str) -> None:
    df = harness.diskfile(obj)
    put(df, obj.encode("utf-8"), Timestamp.now())
    df = harness.diskfile(obj)
    assert read(df) == obj.encode("utf-8")
    assert df.metadata["name"] == "/a/c/" + obj
    with pytest.raises(DiskFileNotExist):
        harness.diskfile(obj + "x").open()


def test_unavailable_devices(harness: Harness) -> None:
    for device in ["nope", "..", ".", "", "sda/../sdb"]:
        with pytest.raises(DeviceUnavailable) as caught:
            harness.diskfile(device=device)
        assert caught.value.status == 507


def test_invalid_arguments(harness: Harness) -> None:
    with pytest.raises(ValueError):
        harness.manager.get_diskfile("sda", -1, "a", "c", "o")
    with pytest.raises(ValueError):
        harness.manager.get_diskfile("sda", 1, "a", "c", "")
    with pytest.raises(ValueError):
        harness.manager.get_diskfile("sda", 1, "a", "c", "o", -1)


def test_policies_are_separate(harness: Harness) -> None:
    put(harness.diskfile(policy=0), b"zero", Timestamp(1))
    put(harness.diskfile(policy=1), b"one", Timestamp(1))
    assert read(harness.diskfile(policy=0)) == b"zero"
    assert read(harness.diskfile(policy=1)) == b"one"
    with pytest.raises(DiskFileNotExist):
        harness.diskfile(policy=2).open()


def test_get_hashes(harness: Harness, hasher: PathHasher) -> None:
    manager = harness.manager
    assert manager.get_hashes("sda", 1) == {}
    put(harness.diskfile("o", device="sda"), b"x", Timestamp(5))
    put(harness.diskfile("o", device="sdb"), b"x", Timestamp(5))
    first = manager.get_hashes("sda", 1)
    suffix = hasher.hexdigest("a", "c", "o")[-3:]
    assert list(first) == [suffix]
    assert manager.get_hashes("sdb", 1) == first
    harness.diskfile("o", device="sda").delete(Timestamp.now())
    assert manager.get_hashes("sda", 1) != first
    assert manager.get_hashes("sda", 2) == {}
    assert manager.get_hashes("sda", 1, 1) == {}


def test_get_hashes_reclaims_old_tombstones(kind: str, devices: Path, hasher: PathHasher) -> None:
    harness = _make(kind, devices, hasher, reclaim_age=3600)
    df = harness.diskfile()
    df.delete(Timestamp(time.time() - 7200))
    harness.diskfile("recent").delete(Timestamp.now())
    hashes = harness.manager.get_hashes("sda", 1)
    assert len(hashes) == 1
    with pytest.raises(NotFound) as caught:
        df.open()
    assert not isinstance(caught.value, DiskFileDeleted)
