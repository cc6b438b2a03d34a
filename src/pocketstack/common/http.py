"""HTTP plumbing shared by every service: request ids, access log, body limits, error edge.

Two pure-ASGI middlewares, outermost first, wrap every service's app
(:func:`wrap_service_app` composes them):

``ServiceEdge``
    gives each request an id (``scope["pocketstack.request_id"]``), sends it back in the
    service's headers and writes one access-log line per request, with secrets redacted from
    the query string and no header ever logged. Given the service's renderer, it is also
    the edge where exceptions become responses: a :class:`ServiceError` is rendered by the
    service's one renderer; anything else is logged with its traceback and rendered as a 500
    in the service's format, so a client never sees a traceback. (One layer, not two: each
    ASGI layer costs a coroutine frame per request and a call per message it relays.)
``BodyLimitMiddleware``
    refuses request bodies over a size (``Content-Length`` up front, chunked bodies as they
    stream) with the service's 413.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pocketstack.common.errors import InternalError, RequestTooLarge, ServiceError

REQUEST_ID_KEY = "pocketstack.request_id"
ACCESS_LOG = logging.getLogger("pocketstack.access")
ERROR_LOG = logging.getLogger("pocketstack.error")

# A renderer turns an error into the service's own response format (one per service).
Renderer = Callable[[ServiceError, Scope], Response]

_SECRET_PARAM_HINTS = ("sig", "token", "key", "password", "secret", "signature")


class _RequestIds:
    """Unique ids in uuid4's form (``8-4-4-4-12`` hex digits, version 4, RFC 4122
    variant) without a call to ``os.urandom`` per request: 60 random bits per process (and
    again in a forked child) followed by a 62-bit counter that starts at a random value.
    Request ids only need to be unique, not unpredictable."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = str(uuid.uuid4())[:19]  # "xxxxxxxx-xxxx-4xxx-"
        self.counter = itertools.count(int.from_bytes(os.urandom(8)) >> 2)

    def __call__(self) -> str:
        n = next(self.counter) & 0x3FFF_FFFF_FFFF_FFFF
        return f"{self.prefix}{0x8000 | n >> 48:04x}-{n & 0xFFFF_FFFF_FFFF:012x}"


_request_ids = _RequestIds()


def keystone_request_id() -> str:
    return f"req-{_request_ids()}"


def request_id_of(scope: Scope) -> str:
    return str(scope.get(REQUEST_ID_KEY, ""))


def redact_query(query: str) -> str:
    """The query string with the values of secret-looking parameters replaced by ``***``."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    safe = [(k, "***" if any(h in k.lower() for h in _SECRET_PARAM_HINTS) else v)
            for k, v in pairs]
    return urlencode(safe, safe="/")


class ServiceEdge:
    def __init__(self, app: ASGIApp, *, service: str,
                 header_names: Iterable[str] = ("x-openstack-request-id",),
                 id_factory: Callable[[], str] = keystone_request_id,
                 access_log: bool = True, render: Renderer | None = None) -> None:
        self.app = app
        self.service = service
        self.header_names = [h.lower().encode("latin-1") for h in header_names]
        self.id_factory = id_factory
        self.access_log = access_log
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.id_factory()
        scope[REQUEST_ID_KEY] = request_id
        id_bytes = request_id.encode("latin-1")
        started = time.perf_counter()
        status = sent = 0  # status stays 0 until the response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in self.header_names]
                headers.extend((name, id_bytes) for name in self.header_names)
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if self.render is None:
                raise
            if not status:
                await self.render(self._error(exc, scope), scope)(scope, receive, send_with_id)
            else:  # headers are out: the client sees a truncated body, as it must
                self._error(exc, scope)
        finally:
            if self.access_log:
                self._log(scope, request_id, status, sent, time.perf_counter() - started)

    @staticmethod
    def _error(exc: Exception, scope: Scope) -> ServiceError:
        """The error a failure answers, logged (nothing escapes as a traceback)."""
        if not isinstance(exc, ServiceError):
            ERROR_LOG.exception("%s %s failed [%s]", scope["method"], scope["path"],
                                request_id_of(scope))
            return InternalError()
        if exc.status >= 500:  # an answer the service chose (503, 507): no traceback
            ERROR_LOG.warning("%s %s answered %d: %s [%s]", scope["method"], scope["path"],
                              exc.status, exc.message, request_id_of(scope))
        return exc

    def _log(self, scope: Scope, request_id: str, status: int, sent: int, took: float) -> None:
        client = scope.get("client") or ("-", 0)
        query = redact_query(scope.get("query_string", b"").decode("latin-1"))
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1", "replace")
        target = f"{path}?{query}" if query else path
        ACCESS_LOG.info('%s %s "%s %s" %d %d %.4f %s', self.service, client[0],
                        scope["method"], target, status or 499, sent, took, request_id)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    raise RequestTooLarge()
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise RequestTooLarge()
            return message

        await self.app(scope, limited_receive, send)


def wrap_service_app(app: ASGIApp, *, service: str, render: Renderer,
                     max_body: int | None = None, access_log: bool = True,
                     header_names: Iterable[str] = ("x-openstack-request-id",),
                     id_factory: Callable[[], str] = keystone_request_id) -> ASGIApp:
    """Compose the shared middlewares around a service's app (outermost: the edge)."""
    inner: ASGIApp = app
    if max_body is not None:
        inner = BodyLimitMiddleware(inner, max_bytes=max_body)
    return ServiceEdge(inner, service=service, header_names=header_names,
                       id_factory=id_factory, access_log=access_log, render=render)


class PendingApp:
    """An ASGI app built after its server started to listen (in a thread, so that a start
    answers its first requests sooner: identity's FastAPI routes, see `cloud.Cloud.serve`).
    Requests that come before it wait for it; if building it failed, they fail (500)."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None
        self._error: BaseException | None = None
        self._done = asyncio.Event()  # bound to the loop of its first waiter

    def set(self, app: ASGIApp) -> None:
        """The app is built (call on the serving loop's thread, or before it runs)."""
        self._app = app
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            await self._done.wait()
            if self._app is None:
                raise RuntimeError("the service's app could not be built") from self._error
            app = self._app
        await app(scope, receive, send)


async def read_body(receive: Receive) -> bytes:
    """The whole request body (for small control-plane bodies only; data paths stream)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


AsyncHandler = Callable[..., Awaitable[Any]]
