"""Hash directory rules: which file wins, what is obsolete, how .meta merges."""

from __future__ import annotations

import pytest

from pocketstack.objectstore.storage.exceptions import DiskFileCollision
from pocketstack.objectstore.storage.fileformat import CorruptObjectFile
from pocketstack.objectstore.storage.hashdir import (
    ObjectFileName,
    check_data_file,
    files_to_push,
    merge_metadata,
    resolve,
    suffix_hash,
)
from pocketstack.objectstore.timestamp import Timestamp


def name(seconds: int, ext: str) -> str:
    return Timestamp(seconds).internal + ext


def test_parse_file_names() -> None:
    parsed = ObjectFileName.parse(name(5, ".data"))
    assert parsed == ObjectFileName(Timestamp(5), ".data")
    offset = Timestamp(5, offset=3).internal + ".ts"
    assert ObjectFileName.parse(offset) == ObjectFileName(Timestamp(5, offset=3), ".ts")
    for junk in [
        "x.data",
        "5.data",
        name(5, ".tmp"),
        ".hidden.data.ab12cd",
        "",
        "data",
        "0000000005.00000.5.data",
        "0000000005.00000_1.data",
    ]:
        assert ObjectFileName.parse(junk) is None, junk


def test_newest_data_wins_and_older_files_are_obsolete() -> None:
    state = resolve([name(1, ".data"), name(3, ".data"), name(2, ".ts"), name(2, ".meta")])
    assert state.data == ObjectFileName(Timestamp(3), ".data")
    assert state.meta is None and state.tombstone is None
    assert sorted(state.obsolete) == sorted([name(1, ".data"), name(2, ".ts"), name(2, ".meta")])


def test_newest_tombstone_wins() -> None:
    state = resolve([name(1, ".data"), name(2, ".ts")])
    assert state.tombstone == ObjectFileName(Timestamp(2), ".ts")
    assert state.data is None
    assert state.obsolete == (name(1, ".data"),)


def test_only_the_newest_meta_newer_than_the_data_is_kept() -> None:
    state = resolve([name(1, ".data"), name(2, ".meta"), name(3, ".meta"), name(0, ".meta")])
    assert state.meta == ObjectFileName(Timestamp(3), ".meta")
    assert sorted(state.obsolete) == sorted([name(2, ".meta"), name(0, ".meta")])


def test_equal_timestamps_tombstone_beats_data() -> None:
    state = resolve([name(1, ".data"), name(1, ".ts")])
    assert state.tombstone is not None and state.data is None


def test_meta_newer_than_a_tombstone_is_kept_but_data_is_absent() -> None:
    state = resolve([name(1, ".ts"), name(2, ".meta")])
    assert state.tombstone is not None
    assert state.meta == ObjectFileName(Timestamp(2), ".meta")
    assert state.obsolete == ()


def test_unknown_names_are_ignored_not_removed() -> None:
    state = resolve(["junk", ".0000000001.00000.data.AbC123", name(1, ".data")])
    assert state.data is not None and state.obsolete == ()


def test_reclaim_drops_old_tombstones_and_orphan_metas() -> None:
    files = [name(10, ".ts"), name(11, ".meta")]
    assert resolve(files, reclaim_before=Timestamp(5)).tombstone is not None
    state = resolve(files, reclaim_before=Timestamp(100))
    assert state.tombstone is None and state.meta is None
    assert sorted(state.obsolete) == sorted(files)
    kept = resolve([name(10, ".data")], reclaim_before=Timestamp(100))
    assert kept.data is not None and kept.obsolete == ()


def test_merge_keeps_system_metadata_and_replaces_user_metadata() -> None:
    data = {
        "name": "/a/c/o",
        "X-Timestamp": "1",
        "Content-Length": "5",
        "ETag": "e",
        "Content-Type": "text/plain",
        "X-Object-Meta-Old": "x",
        "X-Object-Sysmeta-Keep": "s",
        "X-Static-Large-Object": "True",
        "Content-Encoding": "gzip",
    }
    meta = {"name": "/a/c/o", "X-Timestamp": "2", "X-Object-Meta-New": "y", "ETag": "forged"}
    merged = merge_metadata(data, meta)
    assert merged == {
        "name": "/a/c/o",
        "X-Timestamp": "2",
        "Content-Length": "5",
        "ETag": "e",
        "Content-Type": "text/plain",
        "X-Object-Meta-New": "y",
        "X-Object-Sysmeta-Keep": "s",
        "X-Static-Large-Object": "True",
    }
    assert merge_metadata(data, {**meta, "Content-Type": "a/b"})["Content-Type"] == "a/b"


def test_check_data_file() -> None:
    file = ObjectFileName(Timestamp(1), ".data")
    good = {
        "name": "/a/c/o",
        "X-Timestamp": file.timestamp.internal,
        "Content-Length": "3",
        "ETag": "e",
    }
    check_data_file("/a/c/o", file, 3, good)
    with pytest.raises(DiskFileCollision):
        check_data_file("/a/c/other", file, 3, good)
    with pytest.raises(CorruptObjectFile):
        check_data_file("/a/c/o", file, 4, good)
    with pytest.raises(CorruptObjectFile):
        check_data_file("/a/c/o", ObjectFileName(Timestamp(2), ".data"), 3, good)
    with pytest.raises(CorruptObjectFile):
        check_data_file("/a/c/o", file, 3, {**good, "ETag": ""})


def test_suffix_hash_depends_on_every_file_name_only() -> None:
    a = suffix_hash([("h1", ["1.data", "2.meta"]), ("h2", ["3.ts"])])
    assert a == suffix_hash([("h2", ["3.ts"]), ("h1", ["2.meta", "1.data"])])
    assert a != suffix_hash([("h1", ["1.data"]), ("h2", ["3.ts"])])
    assert a != suffix_hash([("h1", ["1.data", "2.meta"]), ("h3", ["3.ts"])])


@pytest.mark.parametrize(
    ("local", "remote", "pushed"),
    [
        ([name(1, ".data")], [], [name(1, ".data")]),  # missing: sent
        ([name(2, ".data")], [name(1, ".data")], [name(2, ".data")]),  # newer data
        ([name(1, ".data")], [name(2, ".data")], []),  # older: never sent
        ([name(2, ".ts")], [name(1, ".data")], [name(2, ".ts")]),  # tombstones replicate
        ([name(1, ".data")], [name(2, ".ts")], []),  # a delete beats older data
        ([name(1, ".data"), name(3, ".meta")], [name(1, ".data")], [name(3, ".meta")]),
        ([name(1, ".data"), name(3, ".meta")], [name(2, ".data")], [name(3, ".meta")]),
        ([name(1, ".data"), name(3, ".meta")], [], [name(1, ".data"), name(3, ".meta")]),
        ([name(1, ".data"), name(3, ".meta")], [name(4, ".ts")], []),
        ([name(1, ".data"), name(2, ".meta")], [name(1, ".data"), name(3, ".meta")], []),
        ([name(1, ".data")], [name(1, ".data")], []),  # in sync
    ],
)
def test_files_to_push(local: list[str], remote: list[str], pushed: list[str]) -> None:
    assert files_to_push(local, remote) == pushed
    after = [*remote, *pushed]  # and once sent, the two replicas agree on what wins
    kept = set(after) - set(resolve(after).obsolete)
    assert files_to_push(local, sorted(kept)) == []
