"""``GET``, ``HEAD`` and ``POST /v3/auth/tokens`` as a plain ASGI route ahead of FastAPI.

Every other service validates each request's token here, so these three requests skip
FastAPI's middleware stack, routing and dependency solving (about half of a validation's
CPU) and go straight to the handlers that the FastAPI routes in :mod:`.auth` call too:
the same request context, policy engine and service calls. Errors are raised to the shared
``ServiceEdge``, which renders them with the same renderer as FastAPI's exception
handlers. Any other request (``DELETE``, other methods' 405, other paths) goes to FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pocketstack.common.policy import PolicyEngine
from pocketstack.identity.api import token_handlers
from pocketstack.identity.api.common import RequestContext, context_of, json_body
from pocketstack.identity.exceptions import Unauthorized
from pocketstack.identity.service.hub import Identity

LOG = logging.getLogger(__name__)
TOKENS_PATH = "/v3/auth/tokens"

Handler = Callable[[RequestContext, Request], Awaitable[Response]]


async def _issue(ctx: RequestContext, request: Request) -> Response:
    return await token_handlers.issue(ctx, request, await json_body(request))


METHOD2HANDLER: dict[str, Handler] = {"GET": token_handlers.validate,
                                      "HEAD": token_handlers.check, "POST": _issue}


class TokenRoutes:
    def __init__(self, app: ASGIApp, *, identity: Identity, policy: PolicyEngine) -> None:
        self.app = app
        self.identity = identity
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http" and scope["path"] == TOKENS_PATH:
            handler = METHOD2HANDLER.get(scope["method"])
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            ctx = await context_of(request, self.identity, self.policy)
            response = await handler(ctx, request)
        except Unauthorized as exc:  # as the FastAPI app's handler logs it
            LOG.debug("401 for %s %s: %s", scope["method"], scope["path"], exc.message)
            raise
        await response(scope, receive, send)
