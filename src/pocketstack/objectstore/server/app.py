"""The storage-node ASGI app: route by (kind, depth, method), run the handler, render errors.

Routing works on the *raw* path (``scope["raw_path"]``), split on ``/`` before unquoting,
because object names may contain ``/``: a route is the first segment (``objects``,
``containers``, ``accounts``, ``async-pendings``), the number of segments after it and the
method (see `handlers.ROUTES`). A handler gets a `Call` and returns an ASGI app (a plain
Starlette `Response`, or a `FrameStream` for bodies that stream).

This module is the edge where exceptions become answers, once: storage exceptions (and the
contract's ValueError) with their status and the ``X-Backend-Error`` document of
`storage.wire`; anything unexpected is logged with its traceback and answered as a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from starlette.requests import ClientDisconnect as StarletteClientDisconnect
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pocketstack.objectstore.storage import wire
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    ClientDisconnect,
    StorageError,
)
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.types import ByteRange
from pocketstack.objectstore.timestamp import Timestamp

LOG = logging.getLogger(__name__)
MAX_DOCUMENT_BYTES: Final = 1 << 20
Handler = Callable[["Call"], Awaitable[ASGIApp]]
RouteKey = tuple[str, int, str]


@dataclass
class Call:
    """One request as a handler sees it: the node, the path's segments, headers, query."""

    node: LocalNode
    request: Request
    args: list[str]
    query: dict[str, str] = field(default_factory=dict)
    kind: str = ""
    """The route's first segment (``objects``, ``containers``, ``db-merge``, ...)."""
    recon: Recon | None = None

    @property
    def device(self) -> str:
        return self.args[0]

    @property
    def partition(self) -> int:
        return int(self.args[1])

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    def timestamp(self, name: str = wire.TIMESTAMP_HEADER) -> Timestamp:
        value = self.header(name)
        if value is None:
            raise BadRequest(f"missing {name}")
        try:
            return Timestamp(value)
        except ValueError as exc:
            raise BadRequest(f"bad {name}: {value!r}") from exc

    def policy(self, default: int | None = 0) -> int | None:
        value = self.header(wire.POLICY_HEADER)
        if value is None:
            return default
        if not value.isdigit():
            raise BadRequest(f"bad {wire.POLICY_HEADER}: {value!r}")
        return int(value)

    def metadata(self) -> dict[str, str] | None:
        """The ``X-Backend-Metadata`` document's mapping, None when absent."""
        value = self.header(wire.METADATA_HEADER)
        if value is None:
            return None
        metadata = wire.loads(value).get("metadata")
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise BadRequest(f"bad {wire.METADATA_HEADER}")
        return metadata

    def ranges(self) -> list[ByteRange] | None:
        value = self.header(wire.RANGES_HEADER)
        return None if value is None else wire.decode_ranges(value)

    def content_length(self) -> int | None:
        value = self.header("content-length")
        return None if value is None else int(value)

    async def body(self, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
        """The request's whole (bounded) body."""
        body = bytearray()
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > limit:
                raise BadRequest("document too large")
        return bytes(body)

    async def document(self) -> dict[str, Any]:
        """The request's (small) JSON body, parsed and version-checked."""
        return wire.loads(await self.body())


class Recon(Protocol):
    """What the storage node's daemons tell (``/recon/...``), when it runs them."""

    async def status(self) -> dict[str, Any]:
        """This node's status document (see `daemons.recon`)."""

    async def run(self, daemon: str) -> dict[str, Any]:
        """Run one pass of ``daemon`` now; its stats. KeyError for an unknown daemon."""


class StorageServer:
    """The ASGI app serving ``node`` (see the package docstring for the API)."""

    def __init__(
        self, node: LocalNode, routes: Mapping[RouteKey, Handler], *, recon: Recon | None = None
    ) -> None:
        self.node = node
        self.routes = routes
        self.recon = recon

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            response = await self._dispatch(scope, receive)
        except Exception as exc:  # the edge: every failure becomes an answer
            response = error_response(exc, scope)
        await response(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive) -> ASGIApp:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        segments = wire.split_path(raw_path)
        if segments == ["healthcheck"]:
            return Response(b"OK", media_type="text/plain")
        kind, args = segments[0], segments[1:]
        handler = self.routes.get((kind, len(args), scope["method"]))
        if handler is None:
            raise BadRequest(f"no route for {scope['method']} {raw_path.decode()}")
        query = wire.decode_query(scope.get("query_string", b""))
        request = Request(scope, receive)
        return await handler(Call(self.node, request, args, query, kind, self.recon))


def as_storage_error(exc: BaseException) -> Exception:
    """What an exception is answered as (storage errors and ValueError pass unchanged)."""
    if isinstance(exc, StorageError | ValueError):
        return exc
    if isinstance(exc, wire.WireFormatError):
        return BadRequest(str(exc))
    if isinstance(exc, StarletteClientDisconnect):
        return ClientDisconnect("the client went away")
    LOG.error("unexpected error", exc_info=exc)
    return StorageError(f"{type(exc).__name__}: {exc}")


def error_response(exc: BaseException, scope: Scope) -> Response:
    error = as_storage_error(exc)
    status = wire.error_status(error)
    if status >= 500:
        LOG.warning("%s %s: %s %s", scope["method"], scope["path"], status, error)
    document = wire.encode_error(error)
    return Response(
        b"" if scope["method"] == "HEAD" else document,
        status,
        headers={wire.ERROR_HEADER: document.decode("ascii")},
        media_type=wire.JSON_MEDIA_TYPE,
    )


class FrameStream:
    """A 200 answer whose body is ``chunks`` as frames, ended by ``Z`` (or ``E`` + error).

    ``close`` runs whatever happens. A client that disconnects stops the stream at the
    next chunk (uvicorn drops writes to a closed connection silently, so a watcher task
    listens for ``http.disconnect``).
    """

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        headers: Mapping[str, str],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.chunks = chunks
        self.headers = headers
        self.close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
        try:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
            headers.append((b"content-type", wire.FRAMES_MEDIA_TYPE.encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            ending = await self._pump(send, gone)
            await send({"type": "http.response.body", "body": ending, "more_body": False})
        finally:
            watcher.cancel()
            await self.close()

    async def _pump(self, send: Send, gone: asyncio.Event) -> bytes:
        """Send the data frames; the last frame (or nothing, if the client is gone)."""
        try:
            async for chunk in self.chunks:
                if gone.is_set():
                    return b""
                if chunk:
                    message = wire.frame(wire.FRAME_DATA, chunk)
                    await send({"type": "http.response.body", "body": message, "more_body": True})
        except Exception as exc:  # reported in-band: the status line is long gone
            return wire.frame(wire.FRAME_ERROR, wire.encode_error(as_storage_error(exc)))
        return wire.frame(wire.FRAME_END)


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()
