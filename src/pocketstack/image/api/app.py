"""The image ASGI app: Glance v2's routes on FastAPI, Glance's version negotiation in front,
wrapped in the shared middlewares.

Errors of every origin (our exceptions, FastAPI's validation, Starlette's 404/405, anything
unexpected) leave through :func:`pocketstack.image.exceptions.render` in Glance's format.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from pocketstack.common.errors import ServiceError
from pocketstack.common.http import wrap_service_app
from pocketstack.common.policy import PolicyEngine
from pocketstack.identity.middleware import TokenValidator
from pocketstack.image import exceptions
from pocketstack.image.api import image_data, images, imports, members, schemas, tags
from pocketstack.image.api.versions import VersionNegotiation
from pocketstack.image.service.hub import ImageHub

# image_data and the sub-collections first: their paths are longer than /v2/images/{id}.
ROUTERS = (image_data, members, tags, imports, images, schemas)


def create_app(hub: ImageHub, policy: PolicyEngine, validator: TokenValidator, *,
               auth_uri: str, access_log: bool = True) -> ASGIApp:
    app = FastAPI(title="pocketstack image", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.hub = hub
    app.state.policy = policy
    app.state.validator = validator
    app.state.auth_uri = auth_uri
    for module in ROUTERS:
        app.include_router(module.router)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return wrap_service_app(VersionNegotiation(app), service="image",
                            render=exceptions.render, access_log=access_log)


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return exceptions.render(exc, request.scope)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return exceptions.render(exceptions.BadRequest(), request.scope)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        error: exceptions.ImageError = exceptions.MethodNotAllowed(
            method=request.method, headers=dict(exc.headers or {}))
    else:
        error = exceptions.error_for_status(exc.status_code)
    return exceptions.render(error, request.scope)
