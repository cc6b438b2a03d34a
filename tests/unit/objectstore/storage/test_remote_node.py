"""RemoteNode beyond the shared contract: exceptions, streaming, hostile names, failures.

The contract itself runs in ``test_node_contract.py``; here a storage-node server (uvicorn,
in this process, on a real socket) serves a LocalNode, and a RemoteNode talks to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.ports import free_port

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.server import create_app
from pocketstack.objectstore.server.runner import running, running_app
from pocketstack.objectstore.storage import exceptions, wire
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    Conflict,
    DeviceUnavailable,
    DiskFileNotExist,
    NodeUnavailable,
    StorageError,
)
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.remote_node import RemoteNode
from pocketstack.objectstore.storage.types import ListingQuery, ObjectBody, ObjectInfo
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
DEV, PART = "sda", 7
MIB = 1 << 20


@pytest.fixture
async def local(devices: Path, hasher: PathHasher) -> AsyncIterator[LocalNode]:
    async with LocalNode(devices, hasher=hasher, fsync=False) as node:
        yield node


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # one loop for the module: the storage-node server outlives a test


class Switch:
    """The module's shared storage-node server serves each test's LocalNode in turn."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[tuple[Switch, str]]:
    switch = Switch()
    async with running_app(switch) as url:
        yield switch, url


@pytest.fixture
async def remote(local: LocalNode, server: tuple[Switch, str]) -> AsyncIterator[RemoteNode]:
    switch, url = server
    switch.app = create_app(local, access_log=False)
    async with RemoteNode(url, timeout=30) as node:
        yield node


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def put(node: Any, obj: str, data: bytes, **kwargs: Any) -> ObjectInfo:
    info: ObjectInfo = await node.put_object(
        DEV, PART, "a", "c", obj, policy=0, timestamp=kwargs.pop("timestamp", Timestamp.now()),
        metadata=kwargs.pop("metadata", {}), body=chunks(data), content_length=len(data),
        **kwargs,
    )  # fmt: skip
    return info


async def read(body: ObjectBody) -> bytes:
    return b"".join([chunk async for chunk in body])


# -- exceptions ------------------------------------------------------------------------


def _error_classes() -> list[type[Exception]]:
    found = [c for c in vars(exceptions).values()
             if inspect.isclass(c) and issubclass(c, StorageError)]  # fmt: skip
    return [*found, ValueError]


def _sample(cls: type[Exception]) -> Exception:
    params = inspect.signature(cls.__init__).parameters
    candidates = {"timestamp": Timestamp("1700000000.5_0000000000000001"),
                  "content_length": 77, "status_deleted": True, "delete_at": 1234}  # fmt: skip
    return cls(f"{cls.__name__} ☃", **{k: v for k, v in candidates.items() if k in params})


def _fields(error: BaseException) -> tuple[object, ...]:
    names = ("timestamp", "content_length", "status_deleted", "delete_at")
    return (type(error), str(error), *(getattr(error, n, None) for n in names))


class FailingNode(LocalNode):
    """A LocalNode whose reads fail with ``self.error`` (before or while streaming)."""

    error: Exception = StorageError()

    async def head_object(self, *args: Any, **kwargs: Any) -> ObjectInfo:
        raise self.error

    async def get_object(self, *args: Any, **kwargs: Any) -> tuple[ObjectInfo, ObjectBody]:
        info, body = await super().get_object(*args, **kwargs)
        failing = self

        class Failing:
            ranges = body.ranges

            def __aiter__(self) -> Failing:
                return self

            async def __anext__(self) -> bytes:
                await body.aclose()
                raise failing.error

            async def aclose(self) -> None:
                await body.aclose()

        return info, Failing()


async def test_every_exception_round_trips(devices: Path, hasher: PathHasher) -> None:
    failing = FailingNode(devices, hasher=hasher, fsync=False)
    async with failing, running(failing) as url, RemoteNode(url) as remote:
        await put(failing, "o", b"data")
        for cls in _error_classes():
            failing.error = _sample(cls)
            with pytest.raises(cls) as before_body:  # HEAD: the document is a header
                await remote.head_object(DEV, PART, "a", "c", "o", policy=0)
            _info, body = await remote.get_object(DEV, PART, "a", "c", "o", policy=0)
            with pytest.raises(cls) as in_body:  # an E frame
                await read(body)
            assert _fields(before_body.value) == _fields(in_body.value)
            assert _fields(in_body.value) == _fields(failing.error), cls


async def test_unexpected_server_errors_are_500s(devices: Path, hasher: PathHasher) -> None:
    async with FailingNode(devices, hasher=hasher, fsync=False) as failing:
        failing.error = RuntimeError("boom")  # type: ignore[assignment]
        async with running(failing) as url, RemoteNode(url) as remote:
            with pytest.raises(StorageError) as caught:
                await remote.head_object(DEV, PART, "a", "c", "o", policy=0)
    assert type(caught.value) is StorageError and caught.value.status == 500
    assert "RuntimeError: boom" in str(caught.value)


# -- streaming -------------------------------------------------------------------------


async def _generated(size: int, digest: Any) -> AsyncIterator[bytes]:
    block = os.urandom(65536)
    for index in range(size // len(block)):
        chunk = index.to_bytes(8, "big") + block[8:]
        digest.update(chunk)
        yield chunk


async def test_large_object_streams_without_holding_it(remote: RemoteNode) -> None:
    size, sent = 64 * MIB, hashlib.md5()
    tracemalloc.start()
    try:
        info = await remote.put_object(
            DEV, PART, "a", "c", "big", policy=0, timestamp=Timestamp.now(), metadata={},
            body=_generated(size, sent), content_length=size,
        )  # fmt: skip
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        _info, body = await remote.get_object(DEV, PART, "a", "c", "big", policy=0)
        received, count, total = hashlib.md5(), 0, 0
        async for chunk in body:
            received.update(chunk)
            count, total = count + 1, total + len(chunk)
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.etag == sent.hexdigest() == received.hexdigest() and total == size
    assert count >= size // (4 * 65536)  # streamed in reads of 4 chunks, not as one blob
    assert put_peak < 8 * MIB and get_peak < 8 * MIB, (put_peak, get_peak)


async def test_ranges_stream(remote: RemoteNode) -> None:
    data = os.urandom(200_000)
    await put(remote, "o", data)
    _info, body = await remote.get_object(
        DEV, PART, "a", "c", "o", policy=0, ranges=[(10, 20), (-100_000, None)]
    )
    assert body.ranges == [(10, 20), (100_000, 200_000)]
    assert await read(body) == data[10:20] + data[-100_000:]


async def test_abandoned_bodies_leave_the_pool_usable(remote: RemoteNode) -> None:
    await put(remote, "o", os.urandom(2 * MIB))
    for _ in range(5):
        _info, body = await remote.get_object(DEV, PART, "a", "c", "o", policy=0)
        await anext(body)
        await body.aclose()
    assert (await remote.head_object(DEV, PART, "a", "c", "o", policy=0)).content_length == 2 * MIB


async def test_early_error_on_a_large_put_keeps_its_class(remote: RemoteNode) -> None:
    newer = Timestamp.now()
    await put(remote, "o", b"new", timestamp=newer)
    with pytest.raises(Conflict) as caught:
        await put(remote, "o", os.urandom(4 * MIB), timestamp=Timestamp(newer, delta=-1))
    assert caught.value.timestamp == newer
    with pytest.raises(DeviceUnavailable):
        await remote.put_object(
            "nope", PART, "a", "c", "o", policy=0, timestamp=Timestamp.now(), metadata={},
            body=chunks(os.urandom(4 * MIB)),
        )  # fmt: skip
    assert (await remote.head_object(DEV, PART, "a", "c", "o", policy=0)).timestamp == newer


async def test_body_one_chunk_too_long_never_completes(
    remote: RemoteNode, local: LocalNode
) -> None:
    async def exact_then_more() -> AsyncIterator[bytes]:
        yield b"abcd"  # all the declared bytes ...
        await asyncio.sleep(0.05)  # ... long enough for a server to commit them
        yield b"e"

    with pytest.raises(BadRequest):
        await remote.put_object(
            DEV, PART, "a", "c", "o", policy=0, timestamp=Timestamp.now(), metadata={},
            body=exact_then_more(), content_length=4,
        )  # fmt: skip
    await asyncio.sleep(0.05)
    with pytest.raises(DiskFileNotExist):
        await local.head_object(DEV, PART, "a", "c", "o", policy=0)


async def test_cancelled_put_leaves_nothing(
    remote: RemoteNode, local: LocalNode, devices: Path
) -> None:
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        started.set()
        await asyncio.sleep(30)
        yield b"never"

    task = asyncio.ensure_future(
        remote.put_object(
            DEV, PART, "a", "c", "o", policy=0, timestamp=Timestamp.now(), metadata={},
            body=slow(), content_length=200_000,
        )  # fmt: skip
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    with pytest.raises(DiskFileNotExist):
        await local.head_object(DEV, PART, "a", "c", "o", policy=0)
    assert list((devices / DEV / "tmp").glob("*")) == []  # the upload's temp file is gone
    await put(remote, "o", b"fine")


# -- names -----------------------------------------------------------------------------

HOSTILE = ["..", ".", "../../etc/passwd", "a/../b", "/lead", "trail/", "a//b", "%2F%2e%2E",
           "?x=1#f", "é ü ☃ 😀", "+plus+", "semi;colon", "tab\tnl\n", "\\back"]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_are_data(name: str, remote: RemoteNode, local: LocalNode) -> None:
    data = name.encode() + b"!"
    ts = Timestamp.now()
    info = await remote.put_object(
        DEV, PART, name, name, name, policy=0, timestamp=ts,
        metadata={"X-Object-Meta-Name": name}, body=chunks(data),
    )  # fmt: skip
    assert (info.account, info.container, info.obj) == (name, name, name)
    here, body = await local.get_object(DEV, PART, name, name, name, policy=0)
    assert here == info and await read(body) == data
    assert here.metadata["X-Object-Meta-Name"] == name
    assert await remote.put_container(DEV, PART, name, name, timestamp=ts)
    await remote.update_container_listing(
        DEV, PART, name, name, name, timestamp=ts, size=1, content_type=name, etag="e"
    )
    listing = await local.list_objects(DEV, PART, name, name)
    assert [(e.name, getattr(e, "content_type", None)) for e in listing.entries] == [(name, name)]
    listing = await remote.list_objects(DEV, PART, name, name, prefix=name, marker="")
    assert [e.name for e in listing.entries] == [name]


async def test_hostile_devices_stay_unavailable(remote: RemoteNode) -> None:
    for device in ["..", ".", "../sda", "sda/../sda", ""]:
        with pytest.raises(DeviceUnavailable):
            await remote.head_object(device, PART, "a", "c", "o", policy=0)


async def test_bad_arguments_raise_value_error(remote: RemoteNode) -> None:
    with pytest.raises(ValueError):
        await remote.head_object(DEV, -1, "a", "c", "o", policy=0)
    with pytest.raises(ValueError):
        await remote.remove_async_pending(DEV, "async_pending/../../x")


# -- failures --------------------------------------------------------------------------


async def test_node_down_is_unavailable_quickly() -> None:
    async with RemoteNode(f"http://127.0.0.1:{free_port()}") as remote:
        started = time.monotonic()
        with pytest.raises(NodeUnavailable) as caught:
            await remote.head_object(DEV, PART, "a", "c", "o", policy=0)
        assert time.monotonic() - started < 1.0
    assert caught.value.status == 503 and isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_silent_node_times_out_as_unavailable() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        async with RemoteNode(url, timeout=0.3) as remote:
            started = time.monotonic()
            with pytest.raises(NodeUnavailable) as caught:
                await remote.head_account(DEV, PART, "a")
            assert time.monotonic() - started < 2.0
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


async def _half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that dies in the middle of an object's body."""
    await reader.readuntil(b"\r\n\r\n")
    info = ObjectInfo("a", "c", "o", 0, Timestamp(1), Timestamp(1), 10, "e", "t")
    head = (f"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n{wire.INFO_HEADER}: "
            f"{wire.encode(info).decode()}\r\n\r\n").encode()  # fmt: skip
    writer.write(head + wire.frame(wire.FRAME_DATA, b"0123456789")[:12])
    await writer.drain()
    writer.close()


async def test_answer_cut_off_mid_body_is_unavailable() -> None:
    server = await asyncio.start_server(_half_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, RemoteNode(f"http://127.0.0.1:{port}") as remote:
        info, body = await remote.get_object(DEV, PART, "a", "c", "o", policy=0)
        assert info.content_length == 10
        with pytest.raises(NodeUnavailable):
            await read(body)


def _mock(handler: Any) -> RemoteNode:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RemoteNode("http://node", client=client)


async def test_answers_without_documents() -> None:
    statuses = {"/accounts/sda/7/gateway": 502, "/accounts/sda/7/missing": 404}

    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses.get(request.url.path, 200)
        return httpx.Response(status, headers={wire.INFO_HEADER: "{not json"})

    async with _mock(handler) as remote:
        with pytest.raises(NodeUnavailable):
            await remote.head_account(DEV, PART, "gateway")
        with pytest.raises(exceptions.NotFound):
            await remote.head_account(DEV, PART, "missing")
        with pytest.raises(StorageError) as caught:
            await remote.head_account(DEV, PART, "garbled")
    assert caught.value.status == 500 and "malformed" in str(caught.value)


async def test_a_server_that_knows_no_rendered_pages_is_declined() -> None:
    """An older storage server answers ``?rendered=json`` with its plain listing document
    (no info header): the page is declined, and the proxy asks for the rows."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params.get("rendered", ""))
        return httpx.Response(200, content=b'{"info": {}, "entries": []}')

    async with _mock(handler) as remote:
        assert await remote.list_objects_json(DEV, PART, "a", "c", ListingQuery(10)) is None
    assert asked == ["json"]


# -- pooling and replication reads ----------------------------------------------------


async def test_connections_are_reused(local: LocalNode) -> None:
    connects: list[str] = []

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            connects.append(event)

    async def hook(request: httpx.Request) -> None:
        request.extensions["trace"] = trace

    client = httpx.AsyncClient(event_hooks={"request": [hook]})
    async with running(local) as url, RemoteNode(url, client=client) as remote:
        for index in range(20):
            await put(remote, f"o{index}", b"x" * index)
            _info, body = await remote.get_object(DEV, PART, "a", "c", f"o{index}", policy=0)
            await read(body)
        with pytest.raises(DiskFileNotExist):
            await remote.head_object(DEV, PART, "a", "c", "missing", policy=0)
    await client.aclose()
    assert len(connects) == 1


async def test_suffix_hashes_match_the_local_ones(remote: RemoteNode, local: LocalNode) -> None:
    assert await remote.get_hashes(DEV, PART) == {}
    for index in range(5):
        await put(remote, f"o{index}", b"x")
    hashes = await remote.get_hashes(DEV, PART)
    assert hashes == local.diskfiles.get_hashes(DEV, PART) and len(hashes) >= 1
    await remote.delete_object(DEV, PART, "a", "c", "o0", policy=0, timestamp=Timestamp.now())
    assert await remote.get_hashes(DEV, PART) != hashes
    assert await remote.get_hashes(DEV, PART, policy=1) == {}
    with pytest.raises(DeviceUnavailable):
        await remote.get_hashes("nope", PART)
