"""proxy.request: raw paths to names (Swift's split_path), query parsing, responses."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPClientDisconnect,
    HTTPNotFound,
    HTTPPreconditionFailed,
    HTTPRequestEntityTooLarge,
    HTTPRequestTimeout,
)
from pocketstack.objectstore.proxy.http1 import BODY_ERROR
from pocketstack.objectstore.proxy.request import (
    Request,
    Response,
    decode_path,
    split_path,
    str_to_wsgi,
    wsgi_to_str,
)


@pytest.mark.parametrize(("raw", "path"), [
    (b"/v1/a/c/o", "/v1/a/c/o"),
    (b"/v1/a/c/%E2%9C%93", "/v1/a/c/\u2713"),
    (b"/v1/a/c/a%2Fb", "/v1/a/c/a/b"),
    (b"/v1/a/c/..", "/v1/a/c/.."),
    (b"/v1/a/c//x//", "/v1/a/c//x//"),
    (b"/v1/a/c/%2E%2E/%2e", "/v1/a/c/../."),
    (b"/v1/a/c/\xc3\xa9", "/v1/a/c/\u00e9"),  # raw UTF-8 on the wire
    (b"/v1/a/c/a+b%20c", "/v1/a/c/a+b c"),     # "+" is not a space in a path
])
def test_decode_path(raw: bytes, path: str) -> None:
    assert decode_path(raw) == path


@pytest.mark.parametrize("raw", [b"/v1/a/c/%FF", b"/v1/a/%C3", b"/v1/a/c/a%00b",
                                 b"/v1/\xff", b"/v1/a/c/%ED%A0%80"])
def test_decode_path_rejects_invalid_utf8_and_nul(raw: bytes) -> None:
    with pytest.raises(HTTPPreconditionFailed) as info:
        decode_path(raw)
    assert info.value.body == "Invalid UTF8 or contains NULL"


@pytest.mark.parametrize(("path", "parts"), [
    ("/v1", ("v1", None, None, None)),
    ("/v1/", ("v1", None, None, None)),
    ("/v1/a", ("v1", "a", None, None)),
    ("/v1/a/", ("v1", "a", None, None)),
    ("/v1/a/c", ("v1", "a", "c", None)),
    ("/v1/a/c/", ("v1", "a", "c", None)),
    ("/v1/a/c/o", ("v1", "a", "c", "o")),
    ("/v1/a/c/o/", ("v1", "a", "c", "o/")),
    ("/v1/a/c/o/p/q", ("v1", "a", "c", "o/p/q")),
    ("/v1/a/c/../..", ("v1", "a", "c", "../..")),
    ("/v1/a/c//o", ("v1", "a", "c", "/o")),
    ("/info", ("info", None, None, None)),
    ("/nothing", ("nothing", None, None, None)),
])
def test_split_path(path: str, parts: tuple[str | None, ...]) -> None:
    assert split_path(path) == parts


@pytest.mark.parametrize("path", ["v1/a", "/v1/a//o", "/v1//c", "/", "//v1/a", "/v1///o",
                                  "/v1//c/o"])
def test_split_path_empty_parts_are_404(path: str) -> None:
    """An empty segment before the last one: Swift's split_path ValueError, a 404."""
    with pytest.raises(HTTPNotFound):
        split_path(path)


def scope(path: bytes, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None,
          method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path.decode("latin-1"),
            "raw_path": path, "query_string": query, "headers": headers or []}


async def nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_request_from_scope() -> None:
    req = Request.from_scope(scope(b"/v1/AUTH_p/c/%C3%A9/x", b"format=json&prefix=%C3%A9&a=1&a=2",
                                   [(b"content-length", b"5")]), nothing)
    assert (req.version, req.account, req.container, req.obj) == ("v1", "AUTH_p", "c",
                                                                  "\u00e9/x")
    assert req.query == {"format": "json", "prefix": "\u00e9", "a": "2"}
    assert req.content_length == 5
    assert not req.is_chunked


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1.5"])
def test_bad_content_length(value: bytes) -> None:
    req = Request.from_scope(scope(b"/v1/a/c/o", headers=[(b"content-length", value)]),
                             nothing)
    with pytest.raises(HTTPBadRequest):
        _ = req.content_length


def test_body_streams_and_limits() -> None:
    messages = [{"type": "http.request", "body": b"ab", "more_body": True},
                {"type": "http.request", "body": b"", "more_body": True},
                {"type": "http.request", "body": b"cd", "more_body": False}]

    def receiver(items: list[dict[str, Any]]) -> Any:
        queue = list(items)

        async def receive() -> dict[str, Any]:
            return queue.pop(0)
        return receive

    req = Request.from_scope(scope(b"/v1/a/c/o"), receiver(messages))
    assert asyncio.run(req.read_body(10)) == b"abcd"
    req = Request.from_scope(scope(b"/v1/a/c/o"), receiver(messages))
    with pytest.raises(HTTPRequestEntityTooLarge):
        asyncio.run(req.read_body(3))
    req = Request.from_scope(scope(b"/v1/a/c/o"), receiver(messages))

    async def stream(limit: int) -> list[bytes]:
        return [chunk async for chunk in req.body(limit=limit)]

    with pytest.raises(HTTPRequestEntityTooLarge) as info:
        asyncio.run(stream(3))  # a chunked body's size is checked as it streams
    assert info.value.body == "Your request is too large."
    gone = receiver([{"type": "http.request", "body": b"x", "more_body": True},
                     {"type": "http.disconnect"}])
    req = Request.from_scope(scope(b"/v1/a/c/o"), gone)
    with pytest.raises(HTTPClientDisconnect):
        asyncio.run(req.read_body(10))


def test_a_body_that_broke_off_is_499() -> None:
    """The server saw the framing break (``http1.BODY_ERROR``): what arrived is not the
    whole body, so reading it to the end fails instead of storing a truncated object."""
    broken = scope(b"/v1/a/c/o")
    broken[BODY_ERROR] = "Invalid character in chunk size"

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"part", "more_body": False}

    req = Request.from_scope(broken, receive)
    with pytest.raises(HTTPClientDisconnect):
        asyncio.run(req.read_body(10))


def test_stalled_body_is_408() -> None:
    async def stalled() -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"type": "http.request", "body": b"", "more_body": False}

    req = Request.from_scope(scope(b"/v1/a/c/o"), stalled)

    async def read() -> list[bytes]:
        return [chunk async for chunk in req.body(timeout=0.01)]

    with pytest.raises(HTTPRequestTimeout):
        asyncio.run(read())


def test_header_value_round_trips() -> None:
    assert wsgi_to_str(str_to_wsgi("caf\u00e9 \u2713")) == "caf\u00e9 \u2713"
    assert wsgi_to_str("\xff") == "\xff"  # not UTF-8: left as it came


def sent(response: Response, method: str = "GET") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(response.send({"method": method}, send))
    return messages


def test_response_lengths() -> None:
    start, body = sent(Response(200, {}, b"abc"))
    assert (b"content-length", b"3") in start["headers"] and body["body"] == b"abc"
    start, body = sent(Response(200, {}, b"abc"), "HEAD")
    assert (b"content-length", b"3") in start["headers"] and body["body"] == b""
    start, _ = sent(Response(204, {"Content-Length": "9"}))
    assert (b"content-length", b"0") in start["headers"]
    start, _ = sent(Response(200, {}, None, content_length=42), "HEAD")
    assert (b"content-length", b"42") in start["headers"]


def test_response_streams_and_closes() -> None:
    closed: list[bool] = []

    async def body() -> Any:
        yield b"a"
        yield b""
        yield b"b"

    async def on_close() -> None:
        closed.append(True)

    messages = sent(Response(200, {}, body(), content_length=2, on_close=on_close))
    assert b"".join(m.get("body", b"") for m in messages[1:]) == b"ab"
    assert closed == [True]
    assert (b"x-utf8", "\u2713".encode()) in sent(Response(200, {"X-Utf8": "\u2713"}))[0][
        "headers"]


def test_a_body_that_knows_its_end_ends_the_response_with_its_last_chunk() -> None:
    class ReadAhead:
        """Two chunks, both already read: ``exhausted`` once the second is out."""

        def __init__(self) -> None:
            self.chunks = [b"ab", b"cd"]

        def __aiter__(self) -> ReadAhead:
            return self

        async def __anext__(self) -> bytes:
            if not self.chunks:
                raise AssertionError("asked past its end")
            return self.chunks.pop(0)

        @property
        def exhausted(self) -> bool:
            return not self.chunks

    messages = sent(Response(200, {}, ReadAhead(), content_length=4))
    assert [(m["body"], m["more_body"]) for m in messages[1:]] == [(b"ab", True),
                                                                    (b"cd", False)]
