"""The feature stack: a filter that says it does not apply only ever passes the request on."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any, cast

from pocketstack.config import load_settings
from pocketstack.identity.middleware import TokenValidator
from pocketstack.objectstore import runtime
from pocketstack.objectstore.proxy.middleware import build_stack
from pocketstack.objectstore.proxy.request import Request, Response

PATHS = ["/v1/AUTH_a", "/v1/AUTH_a/c", "/v1/AUTH_a/c/o"]
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS"]
QUERIES = [b"", b"multipart-manifest=get", b"temp_url_sig=x&temp_url_expires=1",
           b"temp%5Furl_sig=x", b"bulk-delete", b"extract-archive=tar", b"symlink=get"]
HEADERS: list[list[tuple[bytes, bytes]]] = [
    [], [(b"x-web-mode", b"true")], [(b"x-container-sync-to", b"http://x/")],
    [(b"content-type", b"multipart/form-data; boundary=b")], [(b"x-copy-from", b"c/o2")],
]


def _request(path: str, method: str, query: bytes, headers: list[tuple[bytes, bytes]],
             authorized: bool) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query, "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    req = Request.from_scope(scope, receive)
    if authorized:
        async def authorize(_: Request) -> None:
            return None

        req.authorize = authorize
    return req


def test_a_filter_that_does_not_apply_passes_the_request_through(tmp_path: Path) -> None:
    settings = load_settings(None, environ={}, overrides={"data_dir": tmp_path / "data"})
    built = runtime.build(settings, cast(TokenValidator, object()), access_log=False)
    stack = build_stack(built.ctx)
    skipped = 0

    async def check() -> None:
        nonlocal skipped
        for path, method, query, headers, authorized in itertools.product(
                PATHS, METHODS, QUERIES, HEADERS, (False, True)):
            for middleware in stack:
                req = _request(path, method, query, headers, authorized)
                if middleware.applies(req):
                    continue
                skipped += 1
                passed: list[Request] = []
                sentinel = Response(299, {})

                async def next(got: Request, passed: list[Request] = passed,
                               sentinel: Response = sentinel) -> Response:
                    passed.append(got)
                    return sentinel

                response = await middleware.handle(req, next)
                assert response is sentinel and passed == [req], (middleware.name, method,
                                                                  path, query, headers)
                # at most a memo of "nothing to do" (quotas' write target)
                assert all(v is None for v in req.state.values()), middleware.name
                assert req.method == method, middleware.name

    asyncio.run(check())
    assert skipped > 1000  # the plain requests of the matrix skip most filters
    asyncio.run(built.close())
