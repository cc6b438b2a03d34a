"""What only LocalNode does: threads, hop batching, executors, error mapping, caching."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import fsutil
from pocketstack.objectstore.storage.container_broker import ContainerBroker
from pocketstack.objectstore.storage.diskfile import DiskFileManager
from pocketstack.objectstore.storage.diskfile_io import SharedDigest
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    ClientDisconnect,
    Conflict,
    DatabaseError,
    DeviceUnavailable,
    DiskFileError,
    DiskFileNoSpace,
    DiskFileNotExist,
)
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.local_objects import ObjectWork
from pocketstack.objectstore.storage.types import ContainerUpdate
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
CHUNK = 1024


@pytest.fixture
async def node(devices: Path, hasher: PathHasher) -> AsyncIterator[LocalNode]:
    async with LocalNode(devices, hasher=hasher, fsync=False, chunk_size=CHUNK) as local:
        yield local


def count_hops(node: LocalNode) -> list[str]:
    """The names of the steps ``node`` runs on its threads (either pool), in order."""
    hops: list[str] = []

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        async def run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            hops.append(getattr(func, "__name__", repr(func)))
            return await real(func, *args, **kwargs)

        return run

    node._run = counting(node._run)  # type: ignore[method-assign]
    node._read = counting(node._read)  # type: ignore[method-assign]
    return hops


async def body_of(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def put(node: LocalNode, obj: str, *chunks: bytes, when: Timestamp | None = None) -> None:
    await node.put_object(
        "sda",
        0,
        "a",
        "c",
        obj,
        policy=0,
        timestamp=when or Timestamp.now(),
        metadata={},
        body=body_of(*chunks),
        content_length=sum(map(len, chunks)),
    )


async def test_small_objects_take_one_hop_each_way(node: LocalNode) -> None:
    hops = count_hops(node)
    await put(node, "small", b"a" * 100, b"b" * 100)
    assert hops == ["put_small"]
    hops.clear()
    _info, body = await node.get_object("sda", 0, "a", "c", "small", policy=0)
    assert b"".join([chunk async for chunk in body]) == b"a" * 100 + b"b" * 100
    assert hops == ["get"]


async def test_large_objects_hop_once_per_batch(node: LocalNode) -> None:
    hops = count_hops(node)
    pieces = [os.urandom(100) for _ in range(100)]  # 10_000 bytes in small network reads
    await put(node, "large", *pieces)
    assert hops[0] == "begin_upload" and hops[-1] == "finish"
    # one 1 KiB chunk first, then batches of 4 chunks: 1 KiB + 3 x 4 KiB (plus the finish)
    assert len(hops) == 5
    hops.clear()
    _info, body = await node.get_object("sda", 0, "a", "c", "large", policy=0)
    assert b"".join([chunk async for chunk in body]) == b"".join(pieces)
    # open + the first 4 KiB read (4 chunks), then one per read and the end
    assert hops == ["get", "_next_chunk", "_next_chunk", "_next_chunk"]


async def test_a_body_tells_when_its_last_chunk_is_out(node: LocalNode) -> None:
    """``exhausted`` (what lets the proxy end the response with the last chunk): at once
    after a small object's only chunk; for a large one only once it read past the end."""
    await put(node, "one", b"x" * 100)
    _info, body = await node.get_object("sda", 0, "a", "c", "one", policy=0)
    assert not body.exhausted  # type: ignore[attr-defined]
    assert await anext(aiter(body)) == b"x" * 100 and body.exhausted  # type: ignore[attr-defined]
    assert [chunk async for chunk in body] == []
    await put(node, "many", os.urandom(10_000))
    _info, body = await node.get_object("sda", 0, "a", "c", "many", policy=0)
    seen = []
    async for chunk in body:
        seen.append((len(chunk), body.exhausted))  # type: ignore[attr-defined]
    assert sum(n for n, _ in seen) == 10_000 and not any(done for _, done in seen)
    assert body.exhausted  # type: ignore[attr-defined]


async def test_closing_a_body_waits_for_its_read_ahead(node: LocalNode) -> None:
    await put(node, "ahead", os.urandom(40_000))
    _info, body = await node.get_object("sda", 0, "a", "c", "ahead", policy=0)
    first = await anext(aiter(body))  # the prefetched read; the next one is under way
    assert len(first) == 4 * 1024
    await body.aclose()
    assert [chunk async for chunk in body] == []


async def test_local_replicas_share_one_md5(node: LocalNode) -> None:
    pieces = [os.urandom(700) for _ in range(30)]
    digest = SharedDigest()
    infos = await asyncio.gather(*(
        node.put_object("sda", 0, "a", "c", f"r{i}", policy=0, timestamp=Timestamp.now(),
                        metadata={}, body=body_of(*pieces), body_digest=digest)
        for i in range(3)))
    assert {info.etag for info in infos} == {hashlib.md5(b"".join(pieces)).hexdigest()}
    _info, body = await node.get_object("sda", 0, "a", "c", "r2", policy=0)
    assert b"".join([chunk async for chunk in body]) == b"".join(pieces)  # and verified


def count_pool_hops(node: LocalNode) -> list[str]:
    """The pools of the hops ``node`` takes, whatever asks for them."""
    pools: list[str] = []
    real = node.threads.run

    async def run(name: str, call: Callable[[], Any]) -> Any:
        pools.append(name)
        return await real(name, call)

    node.threads.run = run  # type: ignore[method-assign]
    return pools


async def read_back(node: LocalNode, device: str, obj: str) -> bytes:
    _info, body = await node.get_object(device, 0, "a", "c", obj, policy=0)
    return b"".join([chunk async for chunk in body])


async def put_replicas(node: LocalNode, devices: list[str], obj: str, data: bytes,
                       **kwargs: Any) -> list[Any]:
    return await node.put_object_replicas(
        devices, 0, "a", "c", obj, policy=0, timestamp=Timestamp.now(), metadata={},
        body=data, **kwargs)


@pytest.mark.parametrize("io_threads", [1, 3])
async def test_replicas_on_one_node_each_succeed_or_fail_alone(
    devices: Path, hasher: PathHasher, io_threads: int
) -> None:
    """With free threads (3 for 3 devices) one hop per device; with every thread busy (1
    for 3) one hop for all. Either way each device gives its own outcome."""
    (devices / "sdc").mkdir()
    wanted = ["sda", "nope", "sdc"]
    async with LocalNode(devices, hasher=hasher, fsync=False, chunk_size=CHUNK,
                         io_threads=io_threads) as node:
        hops = count_pool_hops(node)
        infos = await put_replicas(node, wanted, "o", b"data", content_length=4)
        assert len(hops) == (1 if io_threads == 1 else 3)
        assert isinstance(infos[1], DeviceUnavailable)
        assert [i.etag for i in (infos[0], infos[2])] == [hashlib.md5(b"data").hexdigest()] * 2
        assert [await read_back(node, d, "o") for d in ("sda", "sdc")] == [b"data"] * 2
        hops.clear()
        posted = await node.post_object_replicas(
            wanted, 0, "a", "c", "o", policy=0, timestamp=Timestamp.now(),
            metadata={"X-Object-Meta-Color": "red"})
        assert len(hops) == (1 if io_threads == 1 else 3)
        assert isinstance(posted[1], DeviceUnavailable)
        assert [p.metadata["X-Object-Meta-Color"] for p in (posted[0], posted[2])] == ["red"] * 2
        hops.clear()
        deleted = await node.delete_object_replicas(
            ["sdc", "sdb", "nope"], 0, "a", "c", "o", policy=0, timestamp=Timestamp.now())
        assert len(hops) == (1 if io_threads == 1 else 3)
        assert deleted[:2] == [True, False] and isinstance(deleted[2], DeviceUnavailable)
        with pytest.raises(DiskFileNotExist):
            await node.head_object("sdc", 0, "a", "c", "o", policy=0)
        assert await read_back(node, "sda", "o") == b"data"


async def test_replicas_of_a_body_of_the_wrong_length_are_refused(node: LocalNode) -> None:
    short = await put_replicas(node, ["sda", "sdb"], "o", b"abc", content_length=5)
    assert [type(r) for r in short] == [ClientDisconnect, ClientDisconnect]
    long = await put_replicas(node, ["sda", "sdb"], "o", b"abc", content_length=2)
    assert [type(r) for r in long] == [BadRequest, BadRequest]
    with pytest.raises(DiskFileNotExist):
        await node.head_object("sda", 0, "a", "c", "o", policy=0)


class StuckFirstDevice:
    """``ObjectWork.put_small`` that records each device it writes and, on ``sda``, waits
    until ``release()`` (three devices: ``sda``, ``sdb`` and a new ``sdc``)."""

    def __init__(self, devices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (devices / "sdc").mkdir()
        self.written: list[str] = []
        self._gate = threading.Event()
        real = ObjectWork.put_small

        def put_small(work: ObjectWork, address: Any, *args: Any) -> Any:
            self.written.append(address.device)
            if address.device == "sda":
                self._gate.wait(10)
            return real(work, address, *args)

        monkeypatch.setattr(ObjectWork, "put_small", put_small)

    def release(self) -> None:
        self._gate.set()


async def test_a_hung_device_times_out_alone_in_a_shared_hop(
    devices: Path, hasher: PathHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three devices, two threads: one hop for all. The first device hangs past the
    deadline: it gives TimeoutError, and the devices after it, not begun, are written in
    hops of their own, once."""
    stuck = StuckFirstDevice(devices, monkeypatch)
    async with LocalNode(devices, hasher=hasher, fsync=False, chunk_size=CHUNK,
                         io_threads=2) as node:
        try:
            results = await put_replicas(node, ["sda", "sdb", "sdc"], "o", b"data",
                                         timeout=0.2)
        finally:
            stuck.release()
        assert isinstance(results[0], TimeoutError)
        assert [r.etag for r in results[1:]] == [hashlib.md5(b"data").hexdigest()] * 2
    # closed: the hung step has ended, and the shared hop started nothing after it
    assert sorted(stuck.written) == ["sda", "sdb", "sdc"]


async def test_a_cancelled_shared_hop_starts_no_further_device(
    devices: Path, hasher: PathHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = StuckFirstDevice(devices, monkeypatch)
    async with LocalNode(devices, hasher=hasher, fsync=False, chunk_size=CHUNK,
                         io_threads=1) as node:
        task = asyncio.ensure_future(put_replicas(node, ["sda", "sdb", "sdc"], "o", b"x"))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.01)
        stuck.release()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert stuck.written == ["sda"]  # it was under way; the others never began


async def test_disk_and_sqlite_work_never_runs_on_the_loop(
    node: LocalNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def spy(cls: type, name: str) -> None:
        real = getattr(cls, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen.append(threading.get_ident())
            return real(*args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    spy(DiskFileManager, "get_diskfile")
    spy(ContainerBroker, "get_info")
    spy(ContainerBroker, "_create")
    await put(node, "o", b"x")
    await node.head_object("sda", 0, "a", "c", "o", policy=0)
    await node.put_container("sda", 0, "a", "c", timestamp=Timestamp.now())
    await node.head_container("sda", 0, "a", "c")
    assert len(seen) >= 4 and loop_thread not in seen


async def test_reads_and_other_steps_run_on_their_own_bounded_pools(
    devices: Path, hasher: PathHasher
) -> None:
    names: dict[str, set[str]] = {"head": set(), "get": set(), "put": set()}
    real = {"head": ObjectWork.head, "get": ObjectWork.get, "put": ObjectWork.put_small}

    def spying(step: str) -> Any:
        def run(self: ObjectWork, *args: Any) -> Any:
            names[step].add(threading.current_thread().name)
            return real[step](self, *args)

        return run

    node = LocalNode(devices, hasher=hasher, fsync=False, read_threads=2, io_threads=3)
    ObjectWork.head, ObjectWork.get = spying("head"), spying("get")  # type: ignore[method-assign]
    ObjectWork.put_small = spying("put")  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(put(node, f"o{i}", b"x") for i in range(20)))
        await asyncio.gather(
            *(node.head_object("sda", 0, "a", "c", f"o{i}", policy=0) for i in range(20))
        )
        for i in range(20):
            _info, body = await node.get_object("sda", 0, "a", "c", f"o{i}", policy=0)
            assert b"".join([chunk async for chunk in body]) == b"x"
    finally:
        ObjectWork.head, ObjectWork.get = real["head"], real["get"]  # type: ignore[method-assign]
        ObjectWork.put_small = real["put"]  # type: ignore[method-assign]
        await node.close()
    reads = names["head"] | names["get"]
    assert reads and all(n.startswith("storage-read") for n in reads) and len(reads) <= 2
    assert all(n.startswith("storage-io") for n in names["put"]) and len(names["put"]) <= 3


def test_a_pool_needs_a_thread(devices: Path, hasher: PathHasher) -> None:
    with pytest.raises(ValueError):
        LocalNode(devices, hasher=hasher, read_threads=0)


def test_a_forked_child_starts_its_own_threads(devices: Path, hasher: PathHasher) -> None:
    node = LocalNode(devices, hasher=hasher, fsync=False)

    async def write_and_read(name: str) -> None:
        await put(node, name, b"data")  # an io thread
        await node.head_object("sda", 0, "a", "c", name, policy=0)  # a read thread

    asyncio.run(write_and_read("o"))  # the parent's pools have their threads now
    pid = os.fork()
    if pid == 0:  # the child: the parent's threads are not here, its pools must start anew
        code = 1
        try:
            asyncio.run(asyncio.wait_for(write_and_read("p"), 10))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    node.threads.shutdown()
    assert os.waitstatus_to_exitcode(status) == 0


async def test_full_device_maps_to_507_and_leaves_no_temp_file(
    node: LocalNode, devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil, "write_all", full)
    for chunks in ([b"small"], [b"x" * 5000]):
        with pytest.raises(DiskFileNoSpace) as caught:
            await put(node, "o", *chunks)
        assert caught.value.status == 507
    assert os.listdir(devices / "sda" / "tmp") == []


async def test_foreign_errors_are_mapped(node: LocalNode, monkeypatch: pytest.MonkeyPatch) -> None:
    def io_error(*args: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ObjectWork, "head", io_error)
    with pytest.raises(DiskFileError) as caught:
        await node.head_object("sda", 0, "a", "c", "o", policy=0)
    assert isinstance(caught.value.__cause__, OSError)

    def sqlite_error(*args: Any) -> None:
        raise sqlite3.InterfaceError("odd")

    monkeypatch.setattr(ContainerBroker, "get_info", sqlite_error)
    await node.put_container("sda", 0, "a", "c", timestamp=Timestamp.now())
    with pytest.raises(DatabaseError) as db_caught:
        await node.head_container("sda", 0, "a", "c")
    assert isinstance(db_caught.value.__cause__, sqlite3.Error)


async def test_cancelled_upload_is_cleaned_up(node: LocalNode, devices: Path) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * CHUNK
            started.set()
            await asyncio.sleep(0)

    task = asyncio.create_task(
        node.put_object(
            "sda",
            0,
            "a",
            "c",
            "o",
            policy=0,
            timestamp=Timestamp.now(),
            metadata={},
            body=endless(),
        )
    )
    await started.wait()
    for _ in range(5):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert os.listdir(devices / "sda" / "tmp") == []
    with pytest.raises(DiskFileNotExist):
        await node.head_object("sda", 0, "a", "c", "o", policy=0)


async def test_concurrent_writers_of_one_object_newest_wins(node: LocalNode) -> None:
    stamps = [Timestamp.now(delta=i) for i in range(12)]
    results = await asyncio.gather(
        *(put(node, "o", str(i).encode() * 2000, when=stamp) for i, stamp in enumerate(stamps)),
        return_exceptions=True,
    )
    assert all(r is None or isinstance(r, Conflict) for r in results)
    info, body = await node.get_object("sda", 0, "a", "c", "o", policy=0)
    assert info.timestamp == stamps[-1]
    assert b"".join([c async for c in body]) == b"11" * 2000


async def test_broker_cache_evicts_and_reopens(devices: Path, hasher: PathHasher) -> None:
    async with LocalNode(devices, hasher=hasher, fsync=False, db_cache_size=2) as node:
        for index in range(5):
            await node.put_container("sda", 0, "a", f"c{index}", timestamp=Timestamp.now())
        assert len(node.databases.cache._brokers) == 2
        for index in range(5):
            info = await node.head_container("sda", 0, "a", f"c{index}")
            assert info.container == f"c{index}"


async def test_database_names_never_become_paths(node: LocalNode, devices: Path) -> None:
    for name in ["../x", "\x00", "..", "a/b", "😀" * 100]:
        await node.put_account("sda", 1, name, timestamp=Timestamp.now())
        await node.put_container("sda", 1, name, name, timestamp=Timestamp.now())
    await node.close()
    pattern = re.compile(r"sda/(accounts|containers)/1/[0-9a-f]{3}/([0-9a-f]{32})/\2\.db")
    for path in sorted(p for p in devices.rglob("*") if p.is_file()):
        relative = path.relative_to(devices).as_posix()
        assert pattern.fullmatch(relative), relative


async def test_mount_check(devices: Path, hasher: PathHasher) -> None:
    async with LocalNode(devices, hasher=hasher, check_mount=True) as node:
        with pytest.raises(DeviceUnavailable):
            await node.put_account("sda", 0, "a", timestamp=Timestamp.now())


async def test_junk_and_corrupt_pendings_are_skipped(node: LocalNode, devices: Path) -> None:
    update = ContainerUpdate("a", "c", "o", Timestamp.now(), 1, "t", "e", False, 0)
    await node.write_async_pending("sda", 0, update)
    (suffix_dir,) = (devices / "sda" / "async_pending").iterdir()
    (suffix_dir / ("f" * 32 + "-" + Timestamp.now().internal)).write_bytes(b"{not json")
    (suffix_dir / "README").write_bytes(b"junk")
    (devices / "sda" / "async_pending" / "zzz").mkdir()
    pendings = [p async for p in node.iter_async_pendings("sda")]
    assert [p.update for p in pendings] == [update]
    assert os.listdir(devices / "sda" / "tmp") == []


async def test_cancelled_while_opening_the_upload(
    node: LocalNode, devices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ObjectWork.begin_upload
    entered, opened = threading.Event(), threading.Event()

    def slow_begin(self: ObjectWork, *args: Any) -> Any:
        entered.set()
        upload = real(self, *args)
        opened.set()  # its temp file exists now
        threading.Event().wait(0.2)
        return upload

    monkeypatch.setattr(ObjectWork, "begin_upload", slow_begin)
    task = asyncio.create_task(put(node, "o", b"x" * 3000))
    while not entered.is_set():
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(opened.wait, 10)  # the thread goes on: the upload is opened
    for _ in range(100):
        if not os.listdir(devices / "sda" / "tmp"):
            break
        await asyncio.sleep(0.01)
    assert os.listdir(devices / "sda" / "tmp") == []
