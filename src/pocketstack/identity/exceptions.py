"""Keystone's errors: each class carries its HTTP status and title, rendered once at the edge
as ``{"error": {"code", "title", "message"}}`` (see :func:`render`)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from pocketstack.common.errors import ServiceError


class IdentityError(ServiceError):
    pass


class ValidationError(IdentityError):
    status = 400
    title = "Bad Request"
    message_format = ("Expecting to find %(attribute)s in %(target)s. The server could not "
                      "comply with the request since it is either malformed or otherwise "
                      "incorrect. The client is assumed to be in error.")


class SchemaValidationError(ValidationError):
    message_format = "%(detail)s"


class PasswordValidationError(ValidationError):
    message_format = "Password validation error: %(detail)s."


class Unauthorized(IdentityError):
    status = 401
    title = "Unauthorized"
    message_format = "The request you have made requires authentication."


class Forbidden(IdentityError):
    status = 403
    title = "Forbidden"
    message_format = "You are not authorized to perform the requested action."


class ForbiddenAction(Forbidden):
    message_format = "You are not authorized to perform the requested action: %(action)s."


class NotFound(IdentityError):
    status = 404
    title = "Not Found"
    message_format = "Could not find: %(target)s."

    @classmethod
    def of(cls, kind: str, ident: str) -> NotFound:
        return cls(f"Could not find {kind}: {ident}.")


class TokenNotFound(NotFound):
    message_format = "Could not recognize Fernet token"


class MethodNotAllowed(IdentityError):
    status = 405
    title = "Method Not Allowed"
    message_format = "The method is not allowed for the requested URL."


class Conflict(IdentityError):
    status = 409
    title = "Conflict"
    message_format = "Conflict occurred attempting to store %(type)s - %(details)s."


class RequestTooLarge(IdentityError):
    status = 413
    title = "Request Entity Too Large"
    message_format = "Request is too large."


class UnsupportedMediaType(IdentityError):
    status = 415
    title = "Unsupported Media Type"
    message_format = "Content-Type must be application/json."


class NotImplementedError_(IdentityError):
    status = 501
    title = "Not Implemented"
    message_format = "The action you have requested has not been implemented."


class InternalError(IdentityError):
    status = 500
    title = "Internal Server Error"


def render(error: ServiceError, scope: Scope) -> Response:
    """The one renderer of identity errors (any ServiceError, in Keystone's body format)."""
    body: dict[str, Any] = {"error": {"code": error.status, "title": error.title,
                                      "message": error.message}}
    headers = dict(error.headers)
    if error.status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = f'Keystone uri="{_base_url(scope)}"'
    return JSONResponse(body, status_code=error.status, headers=headers)


def _base_url(scope: Scope) -> str:
    host = "localhost"
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}"
