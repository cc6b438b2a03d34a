"""The object storage API as one ASGI app (Swift's proxy server and its pipeline).

Pipeline, outermost first (as Swift's ``proxy-server.conf``):
request id (``X-Trans-Id``) → errors (Swift bodies) → healthcheck → /info
→ v1.0 auth → plain object reads (``plain_read.py``: a GET or HEAD the rest would only
pass on) → path checks → listing formats (406 to anyone) → CORS → the feature pipeline
(``pipeline.py``; Keystone auth is one of its steps, ``middleware/``) → the account /
container / object controller. Serve it with ``http1.SwiftHttpProtocol`` (raw UTF-8
request targets, Title-Cased header names, the keep-alive echo).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from pocketstack.common.http import wrap_service_app
from pocketstack.objectstore import constraints
from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPMethodNotAllowed,
    HTTPPreconditionFailed,
    SwiftError,
    error_for_status,
    render,
)
from pocketstack.objectstore.proxy import cors, gatekeeper, v1auth
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers import account, container, obj, obj_put
from pocketstack.objectstore.proxy.info import swift_info
from pocketstack.objectstore.proxy.listing import listing_media_type
from pocketstack.objectstore.proxy.middleware import build_stack
from pocketstack.objectstore.proxy.pipeline import compose
from pocketstack.objectstore.proxy.plain_read import PlainReads
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.exceptions import StorageError

LOG = logging.getLogger(__name__)
OBJECT_HANDLERS = {"GET": obj.get_or_head, "HEAD": obj.get_or_head, "POST": obj.post,
                   "DELETE": obj.delete, "PUT": obj_put.put, "COPY": obj_put.copy}


async def _object_not_allowed(ctx: ProxyContext, req: Request) -> Response:
    raise HTTPMethodNotAllowed(headers={"Allow": ", ".join(sorted(OBJECT_HANDLERS))})


class TransIds:
    """Swift's transaction ids: ``tx`` + 21 hex chars + ``-`` + the time in hex.

    The 21 chars are a random prefix per process (13) and a counter (8): unique without
    reading ``os.urandom`` per request. A forked child draws its own prefix."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self._prefix = f"tx{secrets.token_hex(7)[:13]}"
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}-{int(time.time()):010x}"


trans_id = TransIds()
os.register_at_fork(after_in_child=trans_id.reseed)


class ProxyApp:
    def __init__(self, ctx: ProxyContext, *, plain_reads: bool = True) -> None:
        self.ctx = ctx
        self.stack = build_stack(ctx)
        self.pipeline = compose(self.stack, self.core)
        # off only where its answers are compared with the full path's (its tests)
        self.plain_reads = PlainReads(ctx) if plain_reads else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        scope = gatekeeper.inbound(scope)  # sysmeta and backend headers: the proxy's own
        try:
            response = await self.dispatch(scope, receive)
        except constraints.ConstraintError as exc:
            raise error_for_status(exc.status, exc.message,
                                   content_type=exc.content_type) from exc
        except StorageError as exc:  # an outcome no controller turned into a response
            raise error_for_status(exc.status) from exc
        except SwiftError as exc:
            exc.headers = gatekeeper.outbound(exc.headers)
            raise
        response.headers = gatekeeper.outbound(response.headers)
        await response.send(scope, send)

    async def dispatch(self, scope: Scope, receive: Receive) -> Response:
        path = scope.get("path", "")
        if path == "/healthcheck":
            return Response(200, {"Content-Type": "text/plain"}, b"OK")
        if path == "/info":
            return self.info(scope)
        if path in v1auth.PATHS:
            return await v1auth.handle(self.ctx, Request.from_scope(scope, receive))
        if self.plain_reads is not None:
            plain = await self.plain_reads.answer(scope)
            if plain is not None:
                return plain
        req = Request.from_scope(scope, receive)
        return await self.route(req)

    def info(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            raise HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD, OPTIONS"})
        body = json.dumps(swift_info(self.ctx, self.stack)).encode()
        return Response(200, {"Content-Type": "application/json; charset=utf-8"}, body)

    async def route(self, req: Request) -> Response:
        if req.account is None:  # no controller for it, as Swift's handle_request
            raise HTTPPreconditionFailed("Bad URL")
        if not constraints.valid_api_version(req.version, limits=self.ctx.limits):
            raise HTTPBadRequest()
        constraints.check_account_name(req.account, limits=self.ctx.limits)
        if req.obj is None and req.method in ("GET", "HEAD"):
            # Swift's listing_formats, ahead of auth and staticweb: an unacceptable Accept
            # or format is told to anyone (the controllers pick the format again)
            listing_media_type(req.query.get("format"), req.headers.get("accept"))
        if req.method == "OPTIONS":
            return await cors.preflight(self.ctx, req)
        response = await self.pipeline(req)  # the rings check their files every interval
        return await cors.decorate(self.ctx, req, response)

    async def core(self, req: Request) -> Response:
        """The end of the pipeline: Swift's proxy server controllers."""
        if req.obj is not None:
            handler = OBJECT_HANDLERS.get(req.method, _object_not_allowed)
        elif req.container is not None:
            handler = container.handle
        else:
            handler = account.handle
        return await handler(self.ctx, req)


def create_app(ctx: ProxyContext, *, access_log: bool = True, plain_reads: bool = True
               ) -> ASGIApp:
    return wrap_service_app(
        ProxyApp(ctx, plain_reads=plain_reads), service="object-store", render=render,
        access_log=access_log, header_names=("x-trans-id", "x-openstack-request-id"),
        id_factory=trans_id)
