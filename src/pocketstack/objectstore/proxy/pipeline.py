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
    to advertise themselves in ``GET /info`` — only once they work), and ``applies``."""

    name: ClassVar[str] = "middleware"

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    def applies(self, req: Request) -> bool:
        """False when ``handle`` would only pass ``req`` on: the pipeline then skips this
        filter. Cheap (every request asks every filter), and never False when in doubt."""
        return True

    async def handle(self, req: Request, next: Handler) -> Response:
        return await next(req)

    def info(self) -> dict[str, Any] | None:
        return None


def compose(stack: Sequence[Middleware], core: Handler) -> Handler:
    """``stack[0]`` sees the request first; the last one calls ``core``.

    Each ``next`` a filter gets is a plain function that asks the filters after it, in
    order, whether they apply to the request it is given, and returns the coroutine of the
    first that does (or of ``core``). A filter with nothing to do thus costs one call of
    ``applies`` and no coroutine frame: each frame of a chain is resumed again on every
    suspension below it (every thread hop, every storage call)."""
    entries: list[Handler] = []
    for start in range(len(stack) + 1):
        entries.append(_entry(tuple(stack[start:]), start, entries, core))
    return entries[0]


def _entry(
    rest: tuple[Middleware, ...], start: int, entries: list[Handler], core: Handler
) -> Handler:
    def enter(req: Request) -> Awaitable[Response]:
        for offset, middleware in enumerate(rest):
            if middleware.applies(req):
                return middleware.handle(req, entries[start + offset + 1])
        return core(req)

    return enter


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
