"""The proxy's feature pipeline: Swift's WSGI middlewares, in-process, typed and async.

Swift implements large objects, TempURL, versioning, symlinks, quotas, bulk operations and
static web sites as filters between the client and the proxy server (``proxy-server.conf``).
Here each is a :class:`Middleware`: ``handle(req, next)`` may answer by itself, change the
request, call ``next`` (the rest of the pipeline), rewrite the response, or issue
sub-requests (``req.subrequest(...)``) through ``next`` — a sub-request carries the caller's
identity, so the rest of the pipeline authorizes it like any request, exactly as Swift's
``make_subrequest`` does. The order is Swift's (see ``proxy/middleware/__init__.py``):

    pre-auth  (bulk, tempurl, formpost)     may authorize a request by themselves
    auth      (Keystone: token → identity, deferred authorization)
    post-auth (staticweb, quotas, slo, dlo, versioning, symlink)
    core      (account / container / object controllers)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar

from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.request import Request, Response

Handler = Callable[[Request], Awaitable[Response]]


class Middleware:
    """One feature filter. Subclasses set ``name`` and override ``handle`` (and ``info``
    to advertise themselves in ``GET /info`` — only once they work)."""

    name: ClassVar[str] = "middleware"

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    async def handle(self, req: Request, next: Handler) -> Response:
        return await next(req)

    def info(self) -> dict[str, Any] | None:
        return None


def compose(stack: Sequence[Middleware], core: Handler) -> Handler:
    """``stack[0]`` sees the request first; the last one calls ``core``."""
    handler = core
    for middleware in reversed(stack):
        handler = _bind(middleware, handler)
    return handler


def _bind(middleware: Middleware, next: Handler) -> Handler:
    async def handle(req: Request) -> Response:
        return await middleware.handle(req, next)

    return handle


async def body_chunks(response: Response) -> AsyncIterator[bytes]:
    """A response's body as chunks, whatever its form; releases it at the end."""
    try:
        body = response.body
        if body is None:
            return
        if isinstance(body, bytes | bytearray):
            if body:
                yield bytes(body)
            return
        async for chunk in body:
            if chunk:
                yield chunk
    finally:
        await release(response)


async def read_body(response: Response, limit: int) -> bytes:
    """A small response body, whole (ValueError past ``limit`` bytes)."""
    chunks, size = [], 0
    async for chunk in body_chunks(response):
        size += len(chunk)
        if size > limit:
            await release(response)
            raise ValueError(f"response body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def release(response: Response) -> None:
    """Let go of a response whose body will not be read (closes storage streams)."""
    on_close, response.on_close = response.on_close, None
    body = response.body
    if not isinstance(body, bytes | bytearray | type(None)):
        closer = getattr(body, "aclose", None)
        if closer is not None:
            await closer()
    if on_close is not None:
        await on_close()
