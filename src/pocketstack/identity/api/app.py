"""The identity ASGI app: Keystone v3's routes on FastAPI, wrapped in the shared middlewares.

Errors of every origin (our exceptions, FastAPI's validation, Starlette's 404/405, anything
unexpected) leave through :func:`pocketstack.identity.exceptions.render` in Keystone's format.
``GET``/``HEAD``/``POST /v3/auth/tokens`` are answered ahead of FastAPI by
:class:`~pocketstack.identity.api.token_routes.TokenRoutes` (``fast_tokens=False`` leaves
them to FastAPI's routes, which call the same handlers: the tests compare the two).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from pocketstack.common.errors import ServiceError
from pocketstack.common.policy import PolicyEngine
from pocketstack.identity import exceptions
from pocketstack.identity.api import (
    application_credentials,
    auth,
    catalog,
    credentials,
    domains,
    grants,
    groups,
    projects,
    role_assignments,
    roles,
    users,
    versions,
)
from pocketstack.identity.api.front import front
from pocketstack.identity.service.hub import Identity

LOG = logging.getLogger(__name__)
ROUTERS = (versions, auth, domains, projects, users, groups, roles, grants, role_assignments,
           catalog, credentials, application_credentials)


def create_app(identity: Identity, policy: PolicyEngine, *, access_log: bool = True,
               fast_tokens: bool = True) -> ASGIApp:
    """The whole identity app, as served (`front`)."""
    return front(fastapi_app(identity, policy), identity, policy, access_log=access_log,
                 fast_tokens=fast_tokens)


def fastapi_app(identity: Identity, policy: PolicyEngine) -> FastAPI:
    """Every identity route, in FastAPI."""
    app = FastAPI(title="pocketstack identity", openapi_url=None, docs_url=None,
                  redoc_url=None)
    app.state.identity = identity
    app.state.policy = policy
    for module in ROUTERS:
        app.include_router(module.router)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, exceptions.Unauthorized):
        LOG.debug("401 for %s %s: %s", request.method, request.url.path, exc.message)
    return exceptions.render(exc, request.scope)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "request"
    message = errors[0]["msg"] if errors else "invalid request"
    error = exceptions.SchemaValidationError(detail=f"Invalid input for field '{where}': "
                                             f"{message}")
    return exceptions.render(error, request.scope)


_BY_STATUS: dict[int, type[exceptions.IdentityError]] = {
    404: exceptions.NotFound, 405: exceptions.MethodNotAllowed,
    413: exceptions.RequestTooLarge, 415: exceptions.UnsupportedMediaType,
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        error: exceptions.IdentityError = exceptions.NotFound(
            "The resource could not be found.")
    else:
        error = _BY_STATUS.get(exc.status_code, exceptions.ValidationError)(str(exc.detail))
    return exceptions.render(error, request.scope)
