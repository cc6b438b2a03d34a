"""The feature pipeline: order of middlewares, sub-requests, response body helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, body_chunks, compose
from pocketstack.objectstore.proxy.request import Request, Response

pytestmark = pytest.mark.anyio


def _request(path: str = "/v1/AUTH_a/c/o", method: str = "GET") -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"x-auth-token", b"t")]}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request.from_scope(scope, receive)


class Tag(Middleware):
    def __init__(self, tag: str, seen: list[str]) -> None:
        self.tag, self.seen = tag, seen

    async def handle(self, req: Request, next: Handler) -> Response:
        self.seen.append(self.tag)
        response = await next(req)
        response.headers["X-Order"] = response.headers.get("X-Order", "") + self.tag
        return response


async def test_first_middleware_sees_the_request_first_and_the_response_last() -> None:
    seen: list[str] = []

    async def core(req: Request) -> Response:
        seen.append("core")
        return Response(200, {})

    handler = compose([Tag("a", seen), Tag("b", seen)], core)
    response = await handler(_request())
    assert seen == ["a", "b", "core"]
    assert response.headers["X-Order"] == "ba"


class OnlyFor(Tag):
    """A filter for one method; it tells the pipeline so through ``applies``."""

    def __init__(self, tag: str, seen: list[str], method: str) -> None:
        super().__init__(tag, seen)
        self.method = method

    def applies(self, req: Request) -> bool:
        return req.method == self.method


class Rewrite(Tag):
    async def handle(self, req: Request, next: Handler) -> Response:
        self.seen.append(self.tag)
        req.method = "PUT"
        return await next(req)


async def test_filters_that_do_not_apply_are_skipped_and_asked_again_per_request() -> None:
    seen: list[str] = []

    async def core(req: Request) -> Response:
        seen.append("core")
        return Response(200, {})

    handler = compose([OnlyFor("p", seen, "PUT"), Tag("a", seen), OnlyFor("q", seen, "PUT")],
                      core)
    response = await handler(_request())
    assert seen == ["a", "core"] and response.headers["X-Order"] == "a"
    seen.clear()
    await handler(_request(method="PUT"))
    assert seen == ["p", "a", "q", "core"]
    seen.clear()
    # a filter that changes the request: those after it are asked about the new one
    await compose([Rewrite("r", seen), OnlyFor("q", seen, "PUT")], core)(_request())
    assert seen == ["r", "q", "core"]
    assert await compose([], core)(_request()) is not None and seen[-1] == "core"


async def test_subrequest_keeps_identity_and_carries_its_own_body() -> None:
    req = _request()

    async def authorize(_: Request) -> None:
        return None

    req.authorize = authorize
    req.state["swift_owner"] = True

    async def body() -> AsyncIterator[bytes]:
        yield b"one"
        yield b"two"

    sub = req.subrequest("PUT", "/v1/AUTH_a/seg ments/caf\u00e9/1", headers={"X-A": "b"},
                         body=body(), query={"multipart-manifest": "get"}, source="SLO")
    assert (sub.account, sub.container, sub.obj) == ("AUTH_a", "seg ments", "caf\u00e9/1")
    assert sub.authorize is authorize and sub.state == {"swift_source": "SLO"}
    assert sub.headers["x-a"] == "b" and sub.query == {"multipart-manifest": "get"}
    assert sub.scope["raw_path"] == b"/v1/AUTH_a/seg%20ments/caf%C3%A9/1"
    assert b"".join([c async for c in sub.body()]) == b"onetwo"


async def test_body_chunks_releases_the_response() -> None:
    closed: list[bool] = []

    async def on_close() -> None:
        closed.append(True)

    async def stream() -> AsyncIterator[bytes]:
        yield b"x"
        yield b""
        yield b"y"

    response = Response(200, {}, stream(), on_close=on_close)
    assert [c async for c in body_chunks(response)] == [b"x", b"y"]
    assert closed == [True]
