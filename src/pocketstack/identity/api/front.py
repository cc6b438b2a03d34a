"""The identity service's ASGI app as it is served: the shared service edge (request ids,
access log, errors in Keystone's format, body limit), then the plain token route
(`token_routes`), then the FastAPI routes (`app.fastapi_app`).

Free of FastAPI, like the token route and its handlers: `pocketstack up` listens with the
FastAPI routes still to build (a `PendingApp`), and a first token, whose bcrypt check
releases the GIL for a quarter of a second, is answered while they are built.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from pocketstack.common.http import wrap_service_app
from pocketstack.common.policy import PolicyEngine
from pocketstack.identity import exceptions
from pocketstack.identity.api.token_routes import TokenRoutes
from pocketstack.identity.service.hub import Identity


def front(routes: ASGIApp, identity: Identity, policy: PolicyEngine, *,
          access_log: bool = True, fast_tokens: bool = True) -> ASGIApp:
    """``routes`` (the FastAPI app, or a `PendingApp` of it) behind the edge and, unless
    ``fast_tokens`` is off, the plain token route."""
    inner = TokenRoutes(routes, identity=identity, policy=policy) if fast_tokens else routes
    return wrap_service_app(inner, service="identity", render=exceptions.render,
                            max_body=identity.settings.identity.max_request_body_size,
                            access_log=access_log)
