"""The storage-node server (``objectstore/server``): its HTTP surface, and the CLI command.

The full StorageNode contract over this server runs in
``storage/test_node_contract.py`` (the ``remote`` parameter); here: what a raw HTTP client
sees, the stream stopping when its client goes away, and ``pocketstack storage-node`` as a
real process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.server import create_app
from pocketstack.objectstore.server.runner import SetupError, parse_bind, running
from pocketstack.objectstore.storage import wire
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.remote_node import RemoteNode
from pocketstack.objectstore.storage.types import ObjectBody, ObjectInfo
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
BIN = Path(sys.executable).parent
HASHER = PathHasher(b"pre", b"suf")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def devices(tmp_path: Path) -> Path:
    (tmp_path / "devices" / "sda").mkdir(parents=True)
    return tmp_path / "devices"


@pytest.fixture
async def node(devices: Path) -> AsyncIterator[LocalNode]:
    async with LocalNode(devices, hasher=HASHER, fsync=False, chunk_size=4096) as local:
        yield local


@pytest.fixture
async def client(node: LocalNode) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, access_log=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
        yield http


def error_of(response: httpx.Response) -> dict[str, Any]:
    return wire.loads(response.headers[wire.ERROR_HEADER])


async def test_healthcheck_and_trans_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthcheck")
    assert response.status_code == 200 and response.text == "OK"
    assert response.headers["x-trans-id"].startswith("tx")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nothing"), ("PATCH", "/objects/sda/1/a/c/o"), ("GET", "/objects/sda/1/a"),
     ("PUT", "/accounts/sda"), ("GET", "/objects/sda/1")],
)  # fmt: skip
async def test_unknown_routes_are_bad_requests(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 400
    assert error_of(response)["error"] == ["BadRequest", "StorageError"]
    assert json.loads(response.content) == error_of(response)


async def test_bad_headers_are_bad_requests(client: httpx.AsyncClient) -> None:
    path = "/containers/sda/1/a/c"
    assert (await client.put(path)).status_code == 400  # no X-Timestamp
    bad = [{wire.TIMESTAMP_HEADER: "yesterday"},
           {wire.TIMESTAMP_HEADER: "1.0", wire.METADATA_HEADER: '{"v": 1, "metadata": [1]}'},
           {wire.TIMESTAMP_HEADER: "1.0", wire.POLICY_HEADER: "-1"}]  # fmt: skip
    for headers in bad:
        response = await client.put(path, headers=headers)
        assert response.status_code == 400 and "BadRequest" in error_of(response)["error"]


async def test_head_errors_carry_their_document_in_a_header(client: httpx.AsyncClient) -> None:
    response = await client.head("/accounts/sda/1/nobody")
    assert response.status_code == 404 and response.content == b""
    assert error_of(response)["error"][0] == "AccountNotFound"
    assert error_of(response)["status_deleted"] is False


async def test_object_get_is_a_frame_stream(client: httpx.AsyncClient) -> None:
    data = os.urandom(40_000)  # several reads of 4 chunks of 4 KiB
    path = wire.build_path("objects", "sda", 1, "a", "c", "a/../o")
    headers = {wire.TIMESTAMP_HEADER: Timestamp.now().internal}
    assert (await client.put(path, content=data, headers=headers)).status_code == 201
    response = await client.get(path)
    assert response.headers["content-type"] == wire.FRAMES_MEDIA_TYPE
    assert wire.decode(ObjectInfo, response.headers[wire.INFO_HEADER]).obj == "a/../o"
    frames, raw = [], response.content
    while raw:
        kind, size = raw[0], int.from_bytes(raw[1:5], "big")
        frames.append((kind, raw[5 : 5 + size]))
        raw = raw[5 + size :]
    assert frames[-1] == (wire.FRAME_END, b"")
    assert {kind for kind, _ in frames[:-1]} == {wire.FRAME_DATA}
    assert b"".join(payload for _, payload in frames) == data and len(frames) > 2


async def test_hashes_need_their_query(client: httpx.AsyncClient) -> None:
    assert (await client.get("/objects/sda/1?hashes")).json() == {"v": 1, "hashes": {}}
    assert (await client.get("/objects/sda/1")).status_code == 400


class CountingNode(LocalNode):
    """Counts the chunks its object bodies hand out, and whether they were closed."""

    handed_out = 0
    closed = False

    async def get_object(self, *args: Any, **kwargs: Any) -> tuple[ObjectInfo, ObjectBody]:
        info, body = await super().get_object(*args, **kwargs)
        node = self

        class Counting:
            ranges = body.ranges

            def __aiter__(self) -> Counting:
                return self

            async def __anext__(self) -> bytes:
                chunk = await anext(body)
                node.handed_out += 1
                return chunk

            async def aclose(self) -> None:
                node.closed = True
                await body.aclose()

        return info, Counting()


async def test_stream_stops_when_the_client_goes_away(devices: Path) -> None:
    async with CountingNode(devices, hasher=HASHER, fsync=False, chunk_size=4096) as node:
        data = os.urandom(16 * 1024 * 1024)
        await node.put_object("sda", 1, "a", "c", "o", policy=0, timestamp=Timestamp.now(),
                              metadata={}, body=_once(data))  # fmt: skip
        async with running(node) as url:
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /objects/sda/1/a/c/o HTTP/1.1\r\nhost: x\r\n\r\n")
            await reader.readexactly(100_000)
            writer.close()
            for _ in range(100):
                if node.closed:
                    break
                await asyncio.sleep(0.02)
        assert node.closed and node.handed_out < len(data) // 4096 // 2


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_parse_bind() -> None:
    assert parse_bind("10.0.0.5:6200") == ("10.0.0.5", 6200)
    assert parse_bind("[::1]:6201") == ("::1", 6201)
    for bad in ("6200", "host:", ":6200", "h:99999", "h:x"):
        with pytest.raises(SetupError):
            parse_bind(bad)


# -- the CLI command -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    """A storage host's copy of the cluster files: rings/hash_path.json, and devices."""
    (tmp_path / "rings").mkdir()
    (tmp_path / "rings" / "hash_path.json").write_text('{"prefix": "p", "suffix": "s3cret"}')
    (tmp_path / "devices" / "sdx").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def storage_node(cluster_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    args = [str(BIN / "pocketstack"), "storage-node", "--devices", str(cluster_dir / "devices"),
            "--bind", f"127.0.0.1:{port}", "--rings", str(cluster_dir / "rings"),
            "--data-dir", str(cluster_dir / "data")]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode() if process.stdout else "")
        try:
            if httpx.get(f"{url}/healthcheck", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("storage node did not start")


async def test_cli_storage_node_serves_and_stops_on_sigterm(
    storage_node: tuple[subprocess.Popen[bytes], str], cluster_dir: Path
) -> None:
    process, url = storage_node
    async with RemoteNode(url) as remote:
        info = await remote.put_object(
            "sdx", 5, "a", "c", "o", policy=0, timestamp=Timestamp.now(), metadata={},
            body=_once(b"remote bytes"),
        )  # fmt: skip
        _info, body = await remote.get_object("sdx", 5, "a", "c", "o", policy=0)
        assert b"".join([c async for c in body]) == b"remote bytes"
    name_hash = PathHasher(b"p", b"s3cret").hexdigest("a", "c", "o")  # the secret was used
    hash_dir = cluster_dir / "devices" / "sdx" / "objects" / "5" / name_hash[-3:] / name_hash
    assert [p.name for p in hash_dir.iterdir()] == [f"{info.timestamp.internal}.data"]
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0 and time.monotonic() - started < 5


def test_cli_storage_node_refuses_to_start_without_the_secret(tmp_path: Path) -> None:
    (tmp_path / "devices").mkdir()
    result = subprocess.run(
        [str(BIN / "pocketstack"), "storage-node", "--devices", str(tmp_path / "devices"),
         "--bind", f"127.0.0.1:{_free_port()}", "--data-dir", str(tmp_path / "data")],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and b"hash_path.json" in result.stderr
    assert not (tmp_path / "data" / "rings" / "hash_path.json").exists()  # none invented
