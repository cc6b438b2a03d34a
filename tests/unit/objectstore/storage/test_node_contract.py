"""The StorageNode contract, run against every implementation: ``local`` is a LocalNode,
``remote`` a RemoteNode talking over a real socket to a storage-node server (uvicorn, in
this process) that serves a LocalNode on the same devices."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from pocketstack.objectstore.proxy.listing import render_stored_listing
from pocketstack.objectstore.storage.exceptions import (
    AccountNotFound,
    BadRequest,
    ClientDisconnect,
    Conflict,
    ContainerNotFound,
    DeviceUnavailable,
    DiskFileDeleted,
    DiskFileExpired,
    DiskFileNotExist,
    DiskFileQuarantined,
    EtagMismatch,
    Forbidden,
    RangeNotSatisfiable,
)
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import (
    ContainerUpdate,
    ListedObject,
    ListingQuery,
    ObjectBody,
    ObjectInfo,
    PolicyStats,
    Subdir,
)
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
DEV, PART = "sda", 3
CAPABILITIES = {
    "local": {"corrupt_on_disk": True},
    "remote": {"corrupt_on_disk": True},  # the server's devices are this test's
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # one loop for the module: the storage-node server outlives a test


def capability(request: pytest.FixtureRequest, name: str) -> bool:
    return CAPABILITIES[request.node.callspec.params["node"]][name]


async def body_of(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def collect(body: ObjectBody) -> bytes:
    return b"".join([chunk async for chunk in body])


BASE = Timestamp.now()


def ts(seconds: int = 0) -> Timestamp:
    """A fixed recent time plus ``seconds`` (recent, so tombstones are not reclaimed)."""
    return Timestamp(BASE, delta=seconds * 100_000)


async def put(
    node: StorageNode,
    obj: str,
    data: bytes | Iterable[bytes],
    timestamp: Timestamp | None = None,
    **metadata: str,
) -> None:
    chunks = [data] if isinstance(data, bytes) else list(data)
    await node.put_object(
        DEV,
        PART,
        "a",
        "c",
        obj,
        policy=0,
        timestamp=timestamp or ts(),
        metadata={"Content-Type": "text/plain", **metadata},
        body=body_of(*chunks),
        content_length=sum(map(len, chunks)),
    )


# -- objects ---------------------------------------------------------------------------


async def test_put_get_head(node: StorageNode) -> None:
    when = ts()
    info = await node.put_object(
        DEV,
        PART,
        "a",
        "c",
        "o",
        policy=0,
        timestamp=when,
        metadata={"content-type": "text/plain", "x-object-meta-color": "blue"},
        body=body_of(b"hello ", b"world"),
        content_length=11,
    )
    assert info.etag == hashlib.md5(b"hello world").hexdigest()
    assert (info.content_length, info.content_type) == (11, "text/plain")
    assert info.timestamp == info.last_modified == when
    assert info.metadata == {"X-Object-Meta-Color": "blue"}
    got, body = await node.get_object(DEV, PART, "a", "c", "o", policy=0)
    assert got == info and body.ranges is None
    assert await collect(body) == b"hello world"
    assert await node.head_object(DEV, PART, "a", "c", "o", policy=0) == info


async def test_large_object_streams(node: StorageNode) -> None:
    data = os.urandom(300_000)
    chunks = [data[i : i + 999] for i in range(0, len(data), 999)]
    await put(node, "big", chunks)
    info, body = await node.get_object(DEV, PART, "a", "c", "big", policy=0)
    received = [chunk async for chunk in body]
    assert len(received) > 10 and b"".join(received) == data  # streamed, not one blob
    assert info.etag == hashlib.md5(data).hexdigest()


async def test_unknown_length_body(node: StorageNode) -> None:
    info = await node.put_object(
        DEV,
        PART,
        "a",
        "c",
        "o",
        policy=0,
        timestamp=ts(),
        metadata={},
        body=body_of(b"a" * 5000, b"b"),
    )
    assert info.content_length == 5001 and info.content_type == "application/octet-stream"


async def test_missing_objects(node: StorageNode) -> None:
    for call in (node.head_object, node.get_object):
        with pytest.raises(DiskFileNotExist) as caught:
            await call(DEV, PART, "a", "c", "nope", policy=0)
        assert caught.value.status == 404


async def test_etag_mismatch_discards_the_body(node: StorageNode) -> None:
    with pytest.raises(EtagMismatch) as caught:
        await put(node, "o", b"data", ETag='"0123456789abcdef0123456789abcdef"')
    assert caught.value.status == 422
    with pytest.raises(DiskFileNotExist):
        await node.head_object(DEV, PART, "a", "c", "o", policy=0)
    good = hashlib.md5(b"data").hexdigest()
    await put(node, "o", [b"d", b"ata"], ETag=good.upper())


@pytest.mark.parametrize("chunks", [[b"short"], [b"x" * 3000]])
async def test_short_body_is_a_client_disconnect(node: StorageNode, chunks: list[bytes]) -> None:
    with pytest.raises(ClientDisconnect) as caught:
        await node.put_object(
            DEV,
            PART,
            "a",
            "c",
            "o",
            policy=0,
            timestamp=ts(),
            metadata={},
            body=body_of(*chunks),
            content_length=10_000,
        )
    assert caught.value.status == 499
    with pytest.raises(DiskFileNotExist):
        await node.head_object(DEV, PART, "a", "c", "o", policy=0)


@pytest.mark.parametrize("chunks", [[b"toolong"], [b"x" * 3000, b"y" * 3000]])
async def test_long_body_is_a_bad_request(node: StorageNode, chunks: list[bytes]) -> None:
    with pytest.raises(BadRequest):
        await node.put_object(
            DEV,
            PART,
            "a",
            "c",
            "o",
            policy=0,
            timestamp=ts(),
            metadata={},
            body=body_of(*chunks),
            content_length=4,
        )
    with pytest.raises(DiskFileNotExist):
        await node.head_object(DEV, PART, "a", "c", "o", policy=0)


async def test_failing_body_aborts_and_propagates(node: StorageNode) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 5000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await node.put_object(
            DEV, PART, "a", "c", "o", policy=0, timestamp=ts(), metadata={}, body=broken()
        )
    with pytest.raises(DiskFileNotExist):
        await node.head_object(DEV, PART, "a", "c", "o", policy=0)


async def test_newer_versions_conflict(node: StorageNode) -> None:
    await put(node, "o", b"new", ts(10))
    with pytest.raises(Conflict) as caught:
        await put(node, "o", b"old", ts(5))
    assert caught.value.status == 409 and caught.value.timestamp is not None
    with pytest.raises(Conflict):
        await node.post_object(DEV, PART, "a", "c", "o", policy=0, timestamp=ts(5), metadata={})
    with pytest.raises(Conflict):
        await node.delete_object(DEV, PART, "a", "c", "o", policy=0, timestamp=ts(5))
    info, body = await node.get_object(DEV, PART, "a", "c", "o", policy=0)
    assert await collect(body) == b"new"


async def test_post_replaces_user_metadata(node: StorageNode) -> None:
    await put(node, "o", b"x", ts(), **{"X-Object-Meta-A": "1", "X-Object-Sysmeta-S": "s"})
    when = ts(10)
    info = await node.post_object(
        DEV,
        PART,
        "a",
        "c",
        "o",
        policy=0,
        timestamp=when,
        metadata={"X-Object-Meta-B": "2", "Content-Length": "999", "ETag": "forged"},
    )
    assert info.metadata == {"X-Object-Meta-B": "2", "X-Object-Sysmeta-S": "s"}
    assert info.last_modified == when and info.timestamp < when
    assert info.content_length == 1 and info.content_type == "text/plain"
    assert await node.head_object(DEV, PART, "a", "c", "o", policy=0) == info


async def test_post_to_missing_object(node: StorageNode) -> None:
    with pytest.raises(DiskFileNotExist):
        await node.post_object(DEV, PART, "a", "c", "o", policy=0, timestamp=ts(), metadata={})


async def test_delete(node: StorageNode) -> None:
    await put(node, "o", b"x", ts())
    assert await node.delete_object(DEV, PART, "a", "c", "o", policy=0, timestamp=ts(10))
    with pytest.raises(DiskFileDeleted) as caught:
        await node.head_object(DEV, PART, "a", "c", "o", policy=0)
    assert caught.value.status == 404
    assert not await node.delete_object(DEV, PART, "a", "c", "o", policy=0, timestamp=ts(20))
    assert not await node.delete_object(DEV, PART, "a", "c", "never", policy=0, timestamp=ts())
    with pytest.raises(Conflict):
        await put(node, "o", b"late", ts(15))
    await put(node, "o", b"again", ts(30))


async def test_the_same_write_on_several_devices(node: StorageNode) -> None:
    """Each device succeeds or fails on its own, in the order asked."""
    await put(node, "o", b"newer", ts(10))  # on DEV (sda) only
    infos = await node.put_object_replicas(
        ["sdb", DEV, "nope"], PART, "a", "c", "o", policy=0, timestamp=ts(5),
        metadata={"Content-Type": "text/plain", "X-Object-Meta-Color": "blue"}, body=b"older",
        content_length=5)
    assert isinstance(infos[0], ObjectInfo) and infos[0].etag == hashlib.md5(b"older").hexdigest()
    assert infos[0].metadata["X-Object-Meta-Color"] == "blue"
    assert isinstance(infos[1], Conflict) and isinstance(infos[2], DeviceUnavailable)
    short = await node.put_object_replicas(
        ["sdb"], PART, "a", "c", "o", policy=0, timestamp=ts(20), metadata={}, body=b"x",
        content_length=2)
    assert isinstance(short[0], ClientDisconnect)
    _info, body = await node.get_object("sdb", PART, "a", "c", "o", policy=0)
    assert await collect(body) == b"older"
    posted = await node.post_object_replicas(
        [DEV, "sdb", "nope"], PART, "a", "c", "o", policy=0, timestamp=ts(25),
        metadata={"X-Object-Meta-Color": "red"})
    assert [p.metadata.get("X-Object-Meta-Color") for p in posted[:2]] == ["red", "red"]
    assert isinstance(posted[2], DeviceUnavailable)
    info = await node.head_object("sdb", PART, "a", "c", "o", policy=0)
    assert info.metadata.get("X-Object-Meta-Color") == "red"
    gone = await node.delete_object_replicas(
        [DEV, "sdb", "nope"], PART, "a", "c", "o", policy=0, timestamp=ts(30))
    assert gone[:2] == [True, True] and isinstance(gone[2], DeviceUnavailable)
    again = await node.delete_object_replicas([DEV], PART, "a", "c", "o", policy=0,
                                              timestamp=ts(40))
    assert again == [False]
    with pytest.raises(DiskFileDeleted):
        await node.head_object("sdb", PART, "a", "c", "o", policy=0)


async def test_expired_objects(node: StorageNode) -> None:
    await put(node, "o", b"x", ts(), **{"X-Delete-At": "1000"})
    with pytest.raises(DiskFileExpired):
        await node.get_object(DEV, PART, "a", "c", "o", policy=0)
    with pytest.raises(DiskFileExpired):
        await node.post_object(DEV, PART, "a", "c", "o", policy=0, timestamp=ts(5), metadata={})
    assert not await node.delete_object(DEV, PART, "a", "c", "o", policy=0, timestamp=ts(10))
    future = str(int(Timestamp.now()) + 3600)
    await put(node, "p", b"x", ts(), **{"X-Delete-At": future})
    assert (await node.head_object(DEV, PART, "a", "c", "p", policy=0)).delete_at == int(future)


async def test_ranges(node: StorageNode) -> None:
    data = bytes(range(256)) * 20
    await put(node, "o", data)
    info, body = await node.get_object(
        DEV, PART, "a", "c", "o", policy=0, ranges=[(0, 10), (-5, None), (6000, None)]
    )
    assert body.ranges == [(0, 10), (5115, 5120)]
    assert await collect(body) == data[:10] + data[-5:]
    assert info.content_length == len(data)
    with pytest.raises(RangeNotSatisfiable) as caught:
        await node.get_object(DEV, PART, "a", "c", "o", policy=0, ranges=[(6000, None)])
    assert caught.value.content_length == len(data)


async def test_abandoned_body_can_be_closed(node: StorageNode) -> None:
    await put(node, "o", os.urandom(100_000))
    _info, body = await node.get_object(DEV, PART, "a", "c", "o", policy=0)
    assert len(await anext(body)) > 0
    await body.aclose()
    assert [chunk async for chunk in body] == []


async def test_corrupt_object_fails_the_read(
    node: StorageNode, devices: Path, request: pytest.FixtureRequest
) -> None:
    if not capability(request, "corrupt_on_disk"):
        pytest.skip("cannot corrupt this implementation's storage")
    await put(node, "o", os.urandom(10_000))
    (data_file,) = [p for p in (devices / DEV).rglob("*.data")]
    raw = bytearray(data_file.read_bytes())
    raw[100] ^= 0xFF
    data_file.write_bytes(bytes(raw))
    _info, body = await node.get_object(DEV, PART, "a", "c", "o", policy=0)
    received = bytearray()
    with pytest.raises(DiskFileQuarantined):
        async for chunk in body:
            received += chunk
    assert len(received) < 10_000
    with pytest.raises(DiskFileNotExist):
        await node.head_object(DEV, PART, "a", "c", "o", policy=0)


async def test_unavailable_device(node: StorageNode) -> None:
    with pytest.raises(DeviceUnavailable) as caught:
        await node.head_object("nope", PART, "a", "c", "o", policy=0)
    assert caught.value.status == 507
    with pytest.raises(DeviceUnavailable):
        await node.put_container("nope", PART, "a", "c", timestamp=ts())
    with pytest.raises(DeviceUnavailable):
        await node.put_object(
            "nope",
            PART,
            "a",
            "c",
            "o",
            policy=0,
            timestamp=ts(),
            metadata={},
            body=body_of(b"x"),
        )


# -- containers ------------------------------------------------------------------------


async def test_container_lifecycle(node: StorageNode) -> None:
    created = await node.put_container(
        DEV,
        PART,
        "a",
        "c",
        timestamp=ts(),
        policy_index=1,
        metadata={"x-container-meta-color": "red"},
    )
    assert created
    assert not await node.put_container(DEV, PART, "a", "c", timestamp=ts(1))
    info = await node.head_container(DEV, PART, "a", "c")
    assert info.storage_policy_index == 1 and info.metadata == {"X-Container-Meta-Color": "red"}
    with pytest.raises(Conflict):
        await node.put_container(DEV, PART, "a", "c", timestamp=ts(2), policy_index=0)
    await node.post_container(
        DEV,
        PART,
        "a",
        "c",
        timestamp=ts(3),
        metadata={"X-Container-Meta-Color": "", "X-Container-Read": ".r:*"},
    )
    info = await node.head_container(DEV, PART, "a", "c")
    assert info.metadata == {"X-Container-Read": ".r:*"}
    assert info.put_timestamp == ts(3)  # a POST moves Last-Modified, as in Swift
    await node.delete_container(DEV, PART, "a", "c", timestamp=ts(4))
    with pytest.raises(ContainerNotFound) as caught:
        await node.head_container(DEV, PART, "a", "c")
    assert caught.value.timestamp is not None
    with pytest.raises(ContainerNotFound):
        await node.delete_container(DEV, PART, "a", "c", timestamp=ts(5))
    with pytest.raises(ContainerNotFound):
        await node.post_container(DEV, PART, "a", "c", timestamp=ts(5), metadata={})
    with pytest.raises(Conflict):  # older than the DELETE
        await node.put_container(DEV, PART, "a", "c", timestamp=ts(3))
    assert await node.put_container(DEV, PART, "a", "c", timestamp=ts(6), policy_index=0)
    assert (await node.head_container(DEV, PART, "a", "c")).storage_policy_index == 0


async def test_missing_container(node: StorageNode) -> None:
    with pytest.raises(ContainerNotFound):
        await node.head_container(DEV, PART, "a", "nope")
    with pytest.raises(ContainerNotFound):
        await node.list_objects(DEV, PART, "a", "nope")
    with pytest.raises(ContainerNotFound):
        await node.update_container_listing(
            DEV, PART, "a", "nope", "o", timestamp=ts(), size=1, content_type="t", etag="e"
        )


async def test_container_listing_updates(node: StorageNode) -> None:
    await node.put_container(DEV, PART, "a", "c", timestamp=ts())
    for index, name in enumerate(["b/1", "b/2", "a", "é", "😀"]):
        await node.update_container_listing(
            DEV,
            PART,
            "a",
            "c",
            name,
            timestamp=ts(index),
            size=index,
            content_type="t",
            etag="e",
        )
    await node.update_container_listing(
        DEV,
        PART,
        "a",
        "c",
        "a",
        timestamp=ts(50),
        size=0,
        content_type="",
        etag="",
        deleted=True,
    )
    with pytest.raises(Conflict):
        await node.delete_container(DEV, PART, "a", "c", timestamp=ts(60))
    listing = await node.list_objects(DEV, PART, "a", "c", delimiter="/")
    assert [e.name for e in listing.entries] == ["b/", "é", "😀"]
    assert isinstance(listing.entries[0], Subdir)
    assert listing.info.object_count == 4 and listing.info.bytes_used == 1 + 3 + 4 + 0
    listing = await node.list_objects(DEV, PART, "a", "c", prefix="b/", reverse=True, limit=1)
    (entry,) = listing.entries
    assert isinstance(entry, ListedObject) and entry.name == "b/2"
    listing = await node.list_objects(DEV, PART, "a", "c", path="b", marker="b/1")
    assert [e.name for e in listing.entries] == ["b/2"]
    listing = await node.list_objects(DEV, PART, "a", "c", end_marker="b/2")
    assert [e.name for e in listing.entries] == ["b/1"]


async def test_a_rendered_listing_is_the_rows_rendering(node: StorageNode) -> None:
    """``list_objects_json``: the bytes the proxy renders from ``list_objects``; declined
    (None) for a page with a delimiter or text only Python escapes right."""
    await node.put_container(DEV, PART, "a", "json", timestamp=ts())
    for index, name in enumerate(["x", "y", "z", "\u00e9"]):
        await node.update_container_listing(DEV, PART, "a", "json", name, timestamp=ts(index),
                                            size=index, content_type="t/p", etag="e")
    page = ListingQuery(5, marker="x", end_marker="\u00e9")
    rendered = await node.list_objects_json(DEV, PART, "a", "json", page)
    assert rendered is not None
    listing = await node.list_objects(DEV, PART, "a", "json", marker="x", end_marker="\u00e9",
                                      limit=5)
    assert rendered.json == render_stored_listing("json", listing.entries,
                                                  "application/json")[0]
    assert rendered.info == listing.info and b'"name": "y"' in rendered.json
    for declined in (ListingQuery(5), ListingQuery(5, delimiter="/")):
        assert await node.list_objects_json(DEV, PART, "a", "json", declined) is None
    with pytest.raises(ContainerNotFound):
        await node.list_objects_json(DEV, PART, "a", "nope", page)


async def test_empty_container_delete(node: StorageNode) -> None:
    await node.put_container(DEV, PART, "a", "c", timestamp=ts())
    await node.update_container_listing(
        DEV, PART, "a", "c", "o", timestamp=ts(1), size=1, content_type="t", etag="e"
    )
    await node.update_container_listing(
        DEV,
        PART,
        "a",
        "c",
        "o",
        timestamp=ts(2),
        size=0,
        content_type="",
        etag="",
        deleted=True,
    )
    await node.delete_container(DEV, PART, "a", "c", timestamp=ts(3))
    with pytest.raises(ContainerNotFound):
        await node.list_objects(DEV, PART, "a", "c")


# -- accounts --------------------------------------------------------------------------


async def test_account_lifecycle(node: StorageNode) -> None:
    assert await node.put_account(
        DEV, PART, "a", timestamp=ts(), metadata={"X-Account-Meta-Quota": "10"}
    )
    assert not await node.put_account(DEV, PART, "a", timestamp=ts(1))
    info = await node.head_account(DEV, PART, "a")
    assert info.metadata == {"X-Account-Meta-Quota": "10"} and info.container_count == 0
    await node.post_account(DEV, PART, "a", timestamp=ts(2), metadata={"X-Account-Meta-B": "b"})
    assert (await node.head_account(DEV, PART, "a")).metadata["X-Account-Meta-B"] == "b"
    await node.delete_account(DEV, PART, "a", timestamp=ts(3))
    with pytest.raises(AccountNotFound) as caught:
        await node.head_account(DEV, PART, "a")
    assert caught.value.status_deleted
    with pytest.raises(Forbidden):
        await node.put_account(DEV, PART, "a", timestamp=ts(4))
    with pytest.raises(AccountNotFound):
        await node.delete_account(DEV, PART, "a", timestamp=ts(5))
    with pytest.raises(AccountNotFound):
        await node.list_containers(DEV, PART, "a")


async def test_missing_account(node: StorageNode) -> None:
    with pytest.raises(AccountNotFound) as caught:
        await node.head_account(DEV, PART, "nope")
    assert not caught.value.status_deleted
    with pytest.raises(AccountNotFound):
        await node.update_account_listing(
            DEV,
            PART,
            "nope",
            "c",
            put_timestamp=ts(),
            delete_timestamp=Timestamp(0),
            object_count=0,
            bytes_used=0,
        )


async def test_account_listing_and_totals(node: StorageNode) -> None:
    await node.put_account(DEV, PART, "a", timestamp=ts())
    zero = Timestamp(0)
    for index, (name, policy) in enumerate([("c1", 0), ("c2", 1), ("d", 1)]):
        await node.update_account_listing(
            DEV,
            PART,
            "a",
            name,
            put_timestamp=ts(),
            delete_timestamp=zero,
            object_count=index + 1,
            bytes_used=10 * (index + 1),
            policy_index=policy,
        )
    await node.update_account_listing(
        DEV,
        PART,
        "a",
        "d",
        put_timestamp=ts(),
        delete_timestamp=ts(10),
        object_count=0,
        bytes_used=0,
        policy_index=1,
    )
    listing = await node.list_containers(DEV, PART, "a", prefix="c", limit=10)
    assert [e.name for e in listing.entries] == ["c1", "c2"]
    assert (listing.info.container_count, listing.info.object_count) == (2, 3)
    assert listing.info.policy_stats[1] == PolicyStats(1, 2, 20)
    listing = await node.list_containers(DEV, PART, "a", reverse=True, marker="c2")
    assert [e.name for e in listing.entries] == ["c1"]


# -- async pendings --------------------------------------------------------------------


async def test_async_pendings(node: StorageNode) -> None:
    update = ContainerUpdate("a", "c", "o/../x", ts(), 5, "text/plain", "e", False, 1)
    await node.write_async_pending(DEV, 1, update)
    await node.write_async_pending(DEV, 1, update)  # same object and time: one pending
    other = ContainerUpdate("a", "c", "p", ts(), 0, "", "", True, 0)
    await node.write_async_pending(DEV, 0, other)
    pendings = [p async for p in node.iter_async_pendings(DEV)]
    assert sorted((p.policy, p.update.obj) for p in pendings) == [(0, "p"), (1, "o/../x")]
    assert [p.update for p in pendings if p.policy == 1] == [update]
    assert [p.update async for p in node.iter_async_pendings(DEV, 0)] == [other]
    for pending in pendings:
        await node.remove_async_pending(DEV, pending.pending_id)
    assert [p async for p in node.iter_async_pendings(DEV)] == []
    with pytest.raises(ValueError):
        await node.remove_async_pending(DEV, "../../etc/passwd")


async def test_zero_byte_object(node: StorageNode) -> None:
    info = await node.put_object(
        DEV,
        PART,
        "a",
        "c",
        "empty",
        policy=0,
        timestamp=ts(),
        metadata={},
        body=body_of(),
        content_length=0,
    )
    assert info.content_length == 0 and info.etag == hashlib.md5(b"").hexdigest()
    _info, body = await node.get_object(DEV, PART, "a", "c", "empty", policy=0)
    assert await collect(body) == b""
