"""The replication operations of the StorageNode contract, on every implementation (the
``node`` fixture of ``conftest``: a LocalNode, and a RemoteNode to a storage-node server
serving a LocalNode on the same devices). Two devices play two replicas: ``sda`` and
``sdb``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    ClientDisconnect,
    ContainerNotFound,
    DeviceUnavailable,
    DiskFileNotExist,
    DiskFileQuarantined,
    EtagMismatch,
    NotFound,
)
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import (
    ContainerRecord,
    DatabaseRef,
    ObjectFile,
    ObjectRecord,
    ObjectStamp,
    StampedValue,
)
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
PART = 7
BASE = Timestamp.now()
CONTAINER = DatabaseRef("a", "c")
ACCOUNT = DatabaseRef("a")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # one loop for the module: the storage-node server outlives a test


def ts(seconds: float = 0) -> Timestamp:
    return Timestamp(BASE, delta=int(seconds * 100_000))


async def body_of(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def put(node: StorageNode, obj: str, data: bytes, when: Timestamp, dev: str = "sda") -> None:
    await node.put_object(
        dev, PART, "a", "c", obj, policy=0, timestamp=when,
        metadata={"Content-Type": "text/plain", "X-Object-Meta-Color": "blue"},
        body=body_of(data), content_length=len(data),
    )  # fmt: skip


async def copy_file(node: StorageNode, stamp: ObjectStamp, filename: str) -> bool:
    """Replicate one file from sda to sdb, as the replicator does."""
    file, body = await node.get_object_file("sda", PART, stamp.name_hash, filename)
    return await node.put_object_file("sdb", PART, file, body)


async def collect(body: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in body])


def files_of(devices: Path, dev: str) -> dict[str, bytes]:
    root = devices / dev / "objects"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- objects -----------------------------------------------------------------------------


async def test_partitions_hashes_and_stamps(node: StorageNode, hasher: PathHasher) -> None:
    assert await node.list_partitions("sda", "objects") == []
    await put(node, "o1", b"one", ts())
    await put(node, "o2", b"two", ts(1))
    await node.put_container("sda", 3, "a", "c", timestamp=ts())
    assert await node.list_partitions("sda", "objects") == [PART]
    assert await node.list_partitions("sda", "containers") == [3]
    assert await node.list_partitions("sda", "objects", policy=1) == []
    hashes = await node.get_hashes("sda", PART)
    stamps = await node.list_object_stamps("sda", PART)
    h1 = hasher.hexdigest("a", "c", "o1")
    assert {s.name_hash for s in stamps} == {h1, hasher.hexdigest("a", "c", "o2")}
    assert set(hashes) == {s.suffix for s in stamps}
    one = next(s for s in stamps if s.name_hash == h1)
    assert one.files == (ts().internal + ".data",)
    assert await node.get_hashes("sda", PART, suffixes=[one.suffix]) == {
        one.suffix: hashes[one.suffix]
    }
    assert await node.list_object_stamps("sda", PART, suffixes=[one.suffix]) == [one]
    assert await node.get_hashes("sda", PART, suffixes=[]) == {}
    assert await node.get_hashes("sdb", PART) == {}  # nothing there


async def test_stamps_follow_posts_and_deletes(node: StorageNode, hasher: PathHasher) -> None:
    await put(node, "o", b"data", ts())
    before = await node.get_hashes("sda", PART)
    await node.post_object("sda", PART, "a", "c", "o", policy=0, timestamp=ts(1), metadata={})
    (stamp,) = await node.list_object_stamps("sda", PART)
    assert stamp.files == (ts().internal + ".data", ts(1).internal + ".meta")
    assert await node.get_hashes("sda", PART) != before
    await node.delete_object("sda", PART, "a", "c", "o", policy=0, timestamp=ts(2))
    (stamp,) = await node.list_object_stamps("sda", PART)
    assert stamp.files == (ts(2).internal + ".ts",)


async def test_bad_suffix_is_rejected(node: StorageNode) -> None:
    with pytest.raises(ValueError):
        await node.get_hashes("sda", PART, suffixes=["../x"])


async def test_files_copy_byte_for_byte(node: StorageNode, devices: Path) -> None:
    data = os.urandom(5000)  # several chunks of 1024
    await put(node, "o", data, ts())
    await node.post_object(
        "sda", PART, "a", "c", "o", policy=0, timestamp=ts(1), metadata={"X-Object-Meta-N": "é"}
    )
    (stamp,) = await node.list_object_stamps("sda", PART)
    file, body = await node.get_object_file("sda", PART, stamp.name_hash, stamp.files[0])
    assert (file.filename, file.content_length) == (stamp.files[0], 5000)
    assert file.metadata["ETag"] == hashlib.md5(data).hexdigest()
    assert await collect(body) == data
    for filename in stamp.files:
        assert await copy_file(node, stamp, filename)
    assert files_of(devices, "sdb") == files_of(devices, "sda")
    assert await node.get_hashes("sdb", PART) == await node.get_hashes("sda", PART)
    info, got = await node.get_object("sdb", PART, "a", "c", "o", policy=0)
    assert await collect(got) == data and info.metadata == {"X-Object-Meta-N": "é"}


async def test_tombstones_copy_and_newest_wins(node: StorageNode) -> None:
    await put(node, "o", b"old", ts())
    (old,) = await node.list_object_stamps("sda", PART)
    await node.delete_object("sda", PART, "a", "c", "o", policy=0, timestamp=ts(1))
    (tomb,) = await node.list_object_stamps("sda", PART)
    assert await copy_file(node, tomb, tomb.files[0])
    with pytest.raises(DiskFileNotExist):  # the tombstone replaced the .data
        await node.get_object_file("sda", PART, old.name_hash, old.files[0])
    # a newer version on sdb beats an older one arriving late
    await put(node, "p", b"new", ts(5), dev="sdb")
    await put(node, "p", b"older", ts(4))
    (p_old,) = [
        s for s in await node.list_object_stamps("sda", PART) if s.name_hash != tomb.name_hash
    ]
    assert not await copy_file(node, p_old, p_old.files[0])  # sdb keeps its newer version
    stamps = {s.name_hash: s.files for s in await node.list_object_stamps("sdb", PART)}
    assert stamps == {tomb.name_hash: tomb.files, p_old.name_hash: (ts(5).internal + ".data",)}
    with pytest.raises(DiskFileNotExist):
        await node.head_object("sdb", PART, "a", "c", "o", policy=0)


async def test_a_copy_that_fails_its_checks_is_not_stored(
    node: StorageNode, hasher: PathHasher
) -> None:
    await put(node, "o", b"data", ts())
    (stamp,) = await node.list_object_stamps("sda", PART)
    file, body = await node.get_object_file("sda", PART, stamp.name_hash, stamp.files[0])
    await body.aclose()
    with pytest.raises(EtagMismatch):
        await node.put_object_file("sdb", PART, file, body_of(b"dat4"))
    with pytest.raises(ClientDisconnect):
        await node.put_object_file("sdb", PART, file, body_of(b"dat"))
    other = hasher.hexdigest("a", "c", "other")
    with pytest.raises(BadRequest):
        await node.put_object_file(
            "sdb", PART, ObjectFile(other, file.filename, 4, file.metadata), body_of(b"data")
        )
    wrong_time = dict(file.metadata, **{"X-Timestamp": ts(9).internal})
    with pytest.raises(BadRequest):
        await node.put_object_file(
            "sdb", PART, ObjectFile(file.name_hash, file.filename, 4, wrong_time), body_of(b"data")
        )
    assert await node.list_object_stamps("sdb", PART) == []


async def test_reading_a_corrupt_file_quarantines_it(node: StorageNode, devices: Path) -> None:
    await put(node, "o", b"x" * 3000, ts())
    (stamp,) = await node.list_object_stamps("sda", PART)
    (path,) = (devices / "sda" / "objects").rglob("*.data")
    with path.open("r+b") as handle:
        handle.write(b"y")
    _file, body = await node.get_object_file("sda", PART, stamp.name_hash, stamp.files[0])
    with pytest.raises(DiskFileQuarantined):
        await collect(body)
    assert await node.list_object_stamps("sda", PART) == []
    assert list((devices / "sda" / "quarantined" / "objects").rglob("*.data"))
    with pytest.raises(DiskFileNotExist):
        await node.get_object_file("sda", PART, stamp.name_hash, stamp.files[0])


async def test_remove_objects_only_takes_what_is_unchanged(
    node: StorageNode, devices: Path
) -> None:
    await put(node, "o1", b"one", ts())
    await put(node, "o2", b"two", ts())
    stamps = await node.list_object_stamps("sda", PART)
    await put(node, "o2", b"two, again", ts(1))  # lands after the stamps were taken
    assert await node.remove_objects("sda", PART, stamps) == 1
    (left,) = await node.list_object_stamps("sda", PART)
    assert left.files == (ts(1).internal + ".data",)
    assert await node.remove_objects("sda", PART, [left]) == 1
    assert not (devices / "sda" / "objects" / str(PART)).exists()
    assert await node.list_partitions("sda", "objects") == []


async def test_unavailable_device(node: StorageNode) -> None:
    with pytest.raises(DeviceUnavailable):
        await node.get_hashes("nope", PART)
    with pytest.raises(DeviceUnavailable):
        await node.list_partitions("nope", "containers")


# -- databases ---------------------------------------------------------------------------


async def container_with_rows(node: StorageNode, dev: str = "sda") -> None:
    await node.put_container(
        dev, PART, "a", "c", timestamp=ts(), metadata={"X-Container-Meta-K": "v"}
    )
    for i in range(3):
        await node.update_container_listing(
            dev, PART, "a", "c", f"o{i}", timestamp=ts(i), size=i, content_type="t", etag="e"
        )


async def test_list_databases_and_state(node: StorageNode) -> None:
    await container_with_rows(node)
    await node.put_account("sda", PART, "a", timestamp=ts())
    assert await node.list_databases("sda", PART, "containers") == [CONTAINER]
    assert await node.list_databases("sda", PART, "accounts") == [ACCOUNT]
    state = await node.get_db_state("sda", PART, CONTAINER, remote_id="someone")
    assert (state.max_row, state.sync_point) == (3, -1)
    assert state.status.put_timestamp == ts()
    assert state.status.metadata == {"X-Container-Meta-K": StampedValue("v", ts())}
    rows = await node.get_db_rows("sda", PART, CONTAINER, since=1, limit=10)
    assert [(rowid, r.name) for rowid, r in rows] == [(2, "o1"), (3, "o2")]
    assert isinstance(rows[0][1], ObjectRecord)
    with pytest.raises(NotFound):
        await node.get_db_state("sdb", PART, CONTAINER)


async def test_merge_creates_merges_and_records_the_sync_point(node: StorageNode) -> None:
    await container_with_rows(node)
    source = await node.get_db_state("sda", PART, CONTAINER)
    rows = [r for _, r in await node.get_db_rows("sda", PART, CONTAINER, since=-1, limit=2)]
    merged = await node.merge_db(
        "sdb", PART, CONTAINER, source_id=source.db_id, status=source.status, rows=rows,
        sync_point=2,
    )  # fmt: skip
    assert merged.sync_point == 2 and merged.max_row == 2 and merged.db_id != source.db_id
    assert merged.status.metadata == source.status.metadata
    listing = await node.list_objects("sdb", PART, "a", "c")
    assert [e.name for e in listing.entries] == ["o0", "o1"]
    # newer metadata on sdb goes back the other way; an older value does not win
    await node.post_container(
        "sdb", PART, "a", "c", timestamp=ts(5), metadata={"X-Container-Meta-K": "w"}
    )
    back = await node.get_db_state("sdb", PART, CONTAINER)
    again = await node.merge_db(
        "sda", PART, CONTAINER, source_id=back.db_id, status=back.status, rows=[], sync_point=0
    )
    assert again.status.metadata["X-Container-Meta-K"] == StampedValue("w", ts(5))
    assert again.status.put_timestamp == ts(5)
    info = await node.head_container("sda", PART, "a", "c")
    assert info.metadata == {"X-Container-Meta-K": "w"} and info.object_count == 3
    assert (await node.get_db_state("sdb", PART, CONTAINER, remote_id=source.db_id)).sync_point == 2


async def test_deleted_containers_replicate(node: StorageNode) -> None:
    await node.put_container("sda", PART, "a", "c", timestamp=ts())
    await node.delete_container("sda", PART, "a", "c", timestamp=ts(1))
    state = await node.get_db_state("sda", PART, CONTAINER)
    await node.merge_db(
        "sdb",
        PART,
        CONTAINER,
        source_id=state.db_id,
        status=state.status,
        rows=[],
        sync_point=state.max_row,
    )
    with pytest.raises(ContainerNotFound):
        await node.head_container("sdb", PART, "a", "c")


async def test_account_rows_merge(node: StorageNode) -> None:
    await node.put_account("sda", PART, "a", timestamp=ts())
    await node.update_account_listing(
        "sda",
        PART,
        "a",
        "c",
        put_timestamp=ts(),
        delete_timestamp=Timestamp(0),
        object_count=2,
        bytes_used=9,
    )
    state = await node.get_db_state("sda", PART, ACCOUNT)
    rows = await node.get_db_rows("sda", PART, ACCOUNT, since=-1, limit=10)
    assert isinstance(rows[0][1], ContainerRecord)
    await node.merge_db(
        "sdb",
        PART,
        ACCOUNT,
        source_id=state.db_id,
        status=state.status,
        rows=[r for _, r in rows],
        sync_point=rows[-1][0],
    )
    info = await node.head_account("sdb", PART, "a")
    assert (info.container_count, info.object_count, info.bytes_used) == (1, 2, 9)


async def test_remove_db_only_when_unchanged(node: StorageNode) -> None:
    await container_with_rows(node)
    state = await node.get_db_state("sda", PART, CONTAINER)
    await node.update_container_listing(
        "sda", PART, "a", "c", "late", timestamp=ts(9), size=1, content_type="t", etag="e"
    )
    assert not await node.remove_db("sda", PART, CONTAINER, expected=state)
    state = await node.get_db_state("sda", PART, CONTAINER)
    assert await node.remove_db("sda", PART, CONTAINER, expected=state)
    assert await node.list_databases("sda", PART, "containers") == []
    assert await node.list_partitions("sda", "containers") == []


async def test_reclaim_db(node: StorageNode) -> None:
    await node.put_container("sda", PART, "a", "c", timestamp=ts())
    assert not await node.reclaim_db("sda", PART, CONTAINER, before=ts(100))  # alive
    await node.delete_container("sda", PART, "a", "c", timestamp=ts(1))
    assert not await node.reclaim_db("sda", PART, CONTAINER, before=ts(1))  # too recent
    assert await node.reclaim_db("sda", PART, CONTAINER, before=ts(2))
    assert await node.list_databases("sda", PART, "containers") == []
