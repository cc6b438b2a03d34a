"""proxy.http1: Swift's HTTP/1.1 manners on uvicorn (raw request targets, any method,
Title-Cased headers, answers before bodies, keep-alive echo), on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from pocketstack.objectstore.proxy.http1 import (
    BODY_ERROR,
    SwiftHttpProtocol,
    _ResponseWriter,
    quote_request_line,
    stand_in_method,
    title_case_head,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the pure parts ----------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "quoted", "open_"), [
    (b"GET /v1/a/\xe2\x98\x83 HTTP/1.1\r\nX-Meta: \xe2\x98\x83\r\n",
     b"GET /v1/a/%E2%98%83 HTTP/1.1\r\nX-Meta: \xe2\x98\x83\r\n", False),
    (b"PUT /v1/a/c/\xff#x?q=\x85", b"PUT /v1/a/c/%FF%23x?q=%85", True),
    (b"GET /plain HTTP/1.1\r\n", b"GET /plain HTTP/1.1\r\n", False),
    (b"GET /a\x01b\tc HTTP/1.1\n", b"GET /a%01b\tc HTTP/1.1\n", False),
])
def test_quote_request_line(data: bytes, quoted: bytes, open_: bool) -> None:
    """Only the request line changes: header values keep their UTF-8 bytes."""
    assert quote_request_line(data) == (quoted, open_)


@pytest.mark.parametrize(("data", "line", "method"), [
    (b"LICK /v1/a HTTP/1.1\r\n", b"GET /v1/a HTTP/1.1\r\n", "LICK"),
    (b"GETorHEAD_base /v1/a HTTP/1.1\r\n", b"GET /v1/a HTTP/1.1\r\n", "GETorHEAD_base"),
    (b"CONNECT /v1/a HTTP/1.1\r\n", b"GET /v1/a HTTP/1.1\r\n", "CONNECT"),
    (b"COPY /v1/a/c/o HTTP/1.1\r\n", b"COPY /v1/a/c/o HTTP/1.1\r\n", None),
    (b"PUT /v1/a HTTP/1.1\r\n", b"PUT /v1/a HTTP/1.1\r\n", None),
    (b"LI", b"LI", None),  # not a whole token yet: left to the parser
])
def test_stand_in_method(data: bytes, line: bytes, method: str | None) -> None:
    assert stand_in_method(data) == (line, method)


def test_title_case_head() -> None:
    head = (b"HTTP/1.1 200 OK\r\netag: abc\r\nx-object-meta-a1b: v\xe2\r\n"
            b"content-length: 3\r\nconnection: keep-alive\r\n\r\nbody")
    assert title_case_head(head) == (
        b"HTTP/1.1 200 OK\r\nEtag: abc\r\nX-Object-Meta-A1B: v\xe2\r\nContent-Length: 3\r\n"
        b"Connection: keep-alive\r\n\r\nbody")
    both = b"HTTP/1.1 411 X\r\nconnection: keep-alive\r\nconnection: close\r\n\r\n"
    assert title_case_head(both) == b"HTTP/1.1 411 X\r\nConnection: close\r\n\r\n"


# -- on a socket -------------------------------------------------------------------------------
async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers PUT .../early at once (411, body unread); reads every other body, then
    echoes the method, raw path and body (or the body error)."""
    if scope["type"] != "http":
        return
    if scope["path"].endswith("/early"):
        await respond(send, 411, b"early")
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    error = scope.get(BODY_ERROR)
    text = b"|".join([scope["method"].encode(), scope["raw_path"],
                      b"broken" if error else body])
    await respond(send, 200, text)


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"x-object-meta-a1b", b"v"), (b"etag", b"e"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0,
                            http=SwiftHttpProtocol, lifespan="off", log_config=None,
                            access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await task


async def exchange(port: int, *pieces: bytes, responses: int = 1) -> list[tuple[bytes, bytes]]:
    """Send ``pieces`` (a pause between them), read ``responses`` (head, body) pairs."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.05)
    out = []
    for _ in range(responses):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        out.append((head, await reader.readexactly(length)))
    writer.close()
    return out


def request(method: bytes, target: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: x", *headers]
    if body and not any(h.lower().startswith(b"transfer-encoding") for h in headers):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def test_raw_utf8_and_any_method_reach_the_app(port: int) -> None:
    (head, body), = await exchange(port, request(b"PUT", b"/v1/a/\xe2\x98\x83", body=b"hi"))
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"PUT|/v1/a/%E2%98%83|hi"
    assert b"\r\nX-Object-Meta-A1B: v\r\n" in head and b"\r\nEtag: e\r\n" in head
    (_, body), = await exchange(port, request(b"LICK", b"/v1/\xff"))
    assert body == b"LICK|/v1/%FF|"


async def test_request_lines_in_pieces_and_in_sequence(port: int) -> None:
    first = request(b"GET", b"/one/\xc3\xa9")
    second = request(b"GETorHEAD_base", b"/two/\xe2\x98\x83")
    replies = await exchange(port, first[:8], first[8:], second, responses=2)
    assert [body for _, body in replies] == [b"GET|/one/%C3%A9|",
                                             b"GETorHEAD_base|/two/%E2%98%83|"]


async def test_an_early_answer_is_not_overtaken_by_a_400(port: int) -> None:
    (head, body), = await exchange(port, request(b"PUT", b"/c/early") + b"testing garbage")
    assert head.startswith(b"HTTP/1.1 411 ") and body == b"early"
    assert b"Connection: close" in head


async def test_a_broken_chunked_body_is_not_a_whole_body(port: int) -> None:
    broken = request(b"PUT", b"/c/o", b"Transfer-Encoding: chunked",
                     body=b"5\r\nhello\r\nzz not a chunk")
    (head, body), = await exchange(port, broken)
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"PUT|/c/o|broken"
    whole = request(b"PUT", b"/c/o", b"Transfer-Encoding: chunked",
                    body=b"5\r\nhello\r\n0\r\n\r\n")
    (_, body), = await exchange(port, whole)
    assert body == b"PUT|/c/o|hello"


async def test_keep_alive_is_echoed_to_who_asks(port: int) -> None:
    (head, _), = await exchange(port, request(b"GET", b"/x", b"Connection: keep-alive"))
    assert b"\r\nConnection: keep-alive\r\n" in head
    (head, _), = await exchange(port, request(b"GET", b"/x"))
    assert b"Connection" not in head
    (head, _), = await exchange(port, request(b"GET", b"/x", b"Connection: close"))
    assert b"\r\nConnection: close\r\n" in head and b"keep-alive" not in head


async def test_garbage_without_a_request_in_flight_is_still_400(port: int) -> None:
    (head, _), = await exchange(port, b"\x00\x01 garbage\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")


# -- one response's writer ---------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"


def writer(keep_alive: bool = False) -> tuple[Recorder, _ResponseWriter, list[str]]:
    transport, ended = Recorder(), []
    out = _ResponseWriter(transport, keep_alive,  # type: ignore[arg-type]
                          lambda: ended.append("done"))
    return transport, out, ended


def test_the_head_leaves_with_the_first_body_bytes() -> None:
    transport, out, ended = writer(keep_alive=True)
    out.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # an interim answer goes at once
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    out.write(HEAD)
    assert len(transport.writes) == 1
    out.write(b"body")
    out.write(b"")
    out.response_complete()
    assert transport.writes[1:] == [
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\nbody", b""]
    assert ended == ["done"]


def test_a_bodiless_head_leaves_when_the_response_ends_or_closes() -> None:
    transport, out, ended = writer()
    out.write(HEAD)
    assert transport.writes == []
    out.response_complete()
    assert transport.writes == [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"]
    assert ended == ["done"]
    transport, out, _ = writer()
    out.write(HEAD)
    out.close()  # an app that failed after its head: the head, then the hang-up
    assert transport.writes == [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"]
    assert transport.closed


def test_body_bytes_that_look_like_a_head_are_body() -> None:
    transport, out, _ = writer()
    out.write(HEAD)
    out.write(b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n")  # an object holding an HTTP response
    out.write(b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n")
    assert transport.writes[1] == b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n"
    assert transport.writes[0].endswith(b"\r\n\r\nHTTP/1.1 200 OK\r\nx: y\r\n\r\n")


async def test_pipelined_responses_each_echo_their_own_keep_alive(port: int) -> None:
    replies = await exchange(port, request(b"GET", b"/a", b"Connection: keep-alive")
                             + request(b"GET", b"/b")
                             + request(b"GET", b"/c", b"Connection: keep-alive"),
                             responses=3)
    assert [body for _, body in replies] == [b"GET|/a|", b"GET|/b|", b"GET|/c|"]
    assert [b"Connection: keep-alive" in head for head, _ in replies] == [True, False, True]
