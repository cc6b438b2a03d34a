"""The base of every service's exceptions: an error that knows its HTTP meaning.

Each service declares its own errors in its ``exceptions.py`` as subclasses of
:class:`ServiceError` (status, title, message) and renders them in its own OpenStack format,
once, at the edge (see :mod:`pocketstack.common.http`). Business code only raises.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """An error with an HTTP status. ``message_format`` is filled from the keyword arguments."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    message_format: ClassVar[str] = "An unexpected error prevented the server from fulfilling " \
        "your request."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        if message is None:
            try:
                message = self.message_format % kwargs if kwargs else self.message_format
            except (KeyError, TypeError, ValueError):
                message = self.message_format
        self.message = message
        self.headers = dict(headers or {})
        self.details = kwargs
        super().__init__(message)


class BadRequest(ServiceError):
    status = 400
    title = "Bad Request"
    message_format = "The request could not be understood."


class NotFound(ServiceError):
    status = 404
    title = "Not Found"
    message_format = "The resource could not be found."


class MethodNotAllowed(ServiceError):
    status = 405
    title = "Method Not Allowed"
    message_format = "The method is not allowed for the requested URL."


class RequestTooLarge(ServiceError):
    status = 413
    title = "Request Entity Too Large"
    message_format = "Request is too large."


class InternalError(ServiceError):
    """What any unexpected exception becomes at the edge: the details stay in the server log."""
