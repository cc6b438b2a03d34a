"""Container sync is not offered: every ``X-Container-Sync-To`` is refused with the text
Swift's container server gives without realms or allowed sync hosts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from pocketstack.objectstore.exceptions import HTTPBadRequest, HTTPForbidden
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.container_sync import ContainerSync, sync_to_error
from pocketstack.objectstore.proxy.request import Request, Response

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("value", "error"), [
    ("", None),
    ("/", None),
    ("//realm/cluster/AUTH_a/c", "No realm key for 'realm'"),
    ("//realm/cluster/AUTH_a/c/", "No realm key for 'realm'"),
    ("//realm/cluster/c", "Invalid X-Container-Sync-To format '//realm/cluster/c'"),
    ("http://127.0.0.1/v1/AUTH_a/c", "Invalid host '127.0.0.1' in X-Container-Sync-To"),
    ("https://example.com:8080/v1/a/c", "Invalid host 'example.com' in X-Container-Sync-To"),
    ("ftp://h/v1/a/c", 'Invalid scheme \'ftp\' in X-Container-Sync-To, must be "//", "http", '
                       'or "https".'),
    ("http://h", "Path required in X-Container-Sync-To"),
    ("http://h/v1/a/c?x=1", "Params, queries, and fragments not allowed in X-Container-Sync-To"),
])
def test_sync_to_errors(value: str, error: str | None) -> None:
    assert sync_to_error(value) == error


def _request(method: str, path: str, sync_to: str, *, allowed: bool = True) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"x-container-sync-to", sync_to.encode())]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    req = Request.from_scope(scope, receive)

    async def authorize(_: Request) -> None:
        if not allowed:
            raise HTTPForbidden()

    req.authorize = authorize
    return req


async def _core(req: Request) -> Response:
    assert req.authorize is not None
    await req.authorize(req)  # the container controller authorizes before it writes
    return Response(204)


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_setting_sync_to_is_refused_after_authorization(method: str) -> None:
    middleware = ContainerSync(cast(ProxyContext, SimpleNamespace()))
    with pytest.raises(HTTPBadRequest, match="No realm key for 'r'"):
        await middleware.handle(_request(method, "/v1/a/c", "//r/c/a/c"), _core)
    with pytest.raises(HTTPForbidden):
        await middleware.handle(_request(method, "/v1/a/c", "//r/c/a/c", allowed=False), _core)
    assert (await middleware.handle(_request(method, "/v1/a/c", ""), _core)).status == 204
    assert (await middleware.handle(_request(method, "/v1/a/c/o", "//r/c/a/c"), _core)
            ).status == 204
