"""Request rewrites of the symlink and versioning middlewares."""

from __future__ import annotations

import pytest

from pocketstack.objectstore.exceptions import HTTPPreconditionFailed
from pocketstack.objectstore.proxy.middleware import rewrite
from pocketstack.objectstore.proxy.request import Request, Response

pytestmark = pytest.mark.anyio


def _request(method: str, path: str, headers: dict[str, str] | None = None) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"a=1",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"data", "more_body": False}

    return Request.from_scope(scope, receive)


def test_with_headers_replaces_and_drops() -> None:
    req = _request("PUT", "/v1/AUTH_a/c/o", {"X-A": "1", "X-B": "2"})
    changed = rewrite.with_headers(req, {"x-a": "3", "X-C": "4"}, drop=("x-b",))
    assert changed.headers.get("x-a") == "3" and changed.headers.get("x-c") == "4"
    assert "x-b" not in changed.headers and req.headers.get("x-b") == "2"
    assert changed.scope["headers"] == changed.headers.raw


def test_copy_as_put() -> None:
    req = _request("COPY", "/v1/AUTH_a/c/o", {"Destination": "/d/ö%20x",
                                                "Destination-Account": "AUTH_b"})
    put = rewrite.copy_as_put(req)
    assert (put.method, put.account, put.container, put.obj) == ("PUT", "AUTH_b", "d", "ö x")
    assert rewrite.copy_source(put) == ("AUTH_a", "c", "o")
    assert put.query == {"a": "1"}
    with pytest.raises(HTTPPreconditionFailed):
        rewrite.copy_as_put(_request("COPY", "/v1/AUTH_a/c/o"))
    with pytest.raises(HTTPPreconditionFailed):
        rewrite.copy_as_put(_request("COPY", "/v1/AUTH_a/c/o", {"Destination": "nocontainer"}))


def test_reserved_paths_only_when_allowed() -> None:
    with pytest.raises(HTTPPreconditionFailed):
        rewrite.path_header("%00versions%00c/o", "X-Copy-From")
    assert rewrite.path_header("%00v%00c/o", "X-Copy-From", reserved=True) == \
        ("\x00v\x00c", "o")


async def test_preauthorized_skips_authorization() -> None:
    req = _request("GET", "/v1/AUTH_a/c/o")
    calls: list[str] = []

    async def authorize(sub: Request) -> None:
        calls.append(sub.path)

    req.authorize = authorize
    sub = rewrite.preauthorized(req.subrequest("GET", "/v1/AUTH_a/\x00v\x00c/o"),
                                reserved=True)
    assert sub.authorize is not None
    await sub.authorize(sub)
    assert calls == [] and sub.headers.get("x-backend-allow-reserved-names") == "true"
    partly = rewrite.authorized_except(req, "AUTH_a", "\x00v\x00c")
    assert partly.authorize is not None
    await partly.authorize(rewrite.moved(partly, "GET", "/v1/AUTH_a/\x00v\x00c/o"))
    await partly.authorize(rewrite.moved(partly, "GET", "/v1/AUTH_a/other/o"))
    assert calls == ["/v1/AUTH_a/other/o"]


async def test_call_turns_errors_into_responses() -> None:
    async def failing(req: Request) -> Response:
        raise HTTPPreconditionFailed("nope", headers={"X-A": "1"})

    response = await rewrite.call(failing, _request("GET", "/v1/AUTH_a/c/o"))
    assert (response.status, response.body, response.headers) == (412, b"nope", {"X-A": "1"})


async def test_with_body_replaces_a_read_body() -> None:
    req = rewrite.with_body(_request("PUT", "/v1/AUTH_a/c/o"), b"")
    assert [chunk async for chunk in req.body()] == []
