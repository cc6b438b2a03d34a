"""Glance's errors: each class carries its HTTP status, title and default explanation, and is
rendered once at the edge (:func:`render`) the way Glance's webob exceptions render.

webob picks the body by the request's ``Accept`` header: ``text/html`` first, then
``application/json``, else plain text. For ``GET /v2/images/x`` with JSON accepted::

    {"message": "No image found with ID x<br /><br />\\n\\n\\n",
     "code": "404 Not Found", "title": "Not Found"}

and as plain text (``Accept`` absent, as openstacksdk sends for uploads)::

    404 Not Found

    No image found with ID x

A request without a valid token is refused as keystonemiddleware refuses it: a JSON
``{"error": {...}}`` body and ``WWW-Authenticate: Keystone uri=...``.
"""

from __future__ import annotations

import html
import json
import re
from typing import ClassVar

from starlette.responses import Response
from starlette.types import Scope

from pocketstack.common.errors import ServiceError

_BR = re.compile(r"<br.*?>", re.I | re.S)
_TAG = re.compile(r"<.*?>", re.S)
_COMMENT = re.compile(r"<!--|-->")


class ImageError(ServiceError):
    """Base of the image service's errors; ``message_format`` is webob's explanation."""


class BadRequest(ImageError):
    status = 400
    title = "Bad Request"
    message_format = ("The server could not comply with the request since it is either "
                      "malformed or otherwise incorrect.")


class IncompleteUpload(BadRequest):
    """The request body ended (the client went away) before all image data arrived."""

    message_format = "The image data upload was not completed: the request body ended early."


class Unauthorized(ImageError):
    status = 401
    title = "Unauthorized"
    message_format = "The request you have made requires authentication."


class Forbidden(ImageError):
    status = 403
    title = "Forbidden"
    message_format = "Access was denied to this resource."


class PolicyForbidden(Forbidden):
    message_format = "You are not authorized to complete %(action)s action."


class NotFound(ImageError):
    status = 404
    title = "Not Found"
    message_format = "The resource could not be found."


class ImageNotFound(NotFound):
    message_format = "No image found with ID %(image_id)s"


class MethodNotAllowed(ImageError):
    status = 405
    title = "Method Not Allowed"
    message_format = "The method %(method)s is not allowed for this resource."


class Conflict(ImageError):
    status = 409
    title = "Conflict"
    message_format = "There was a conflict when trying to complete your request."


class InvalidStatusTransition(Conflict):
    message_format = "Image status transition from %(current)s to %(new)s is not allowed"


class Gone(ImageError):
    status = 410
    title = "Gone"
    message_format = "This resource is no longer available.  No forwarding address is given."


class RequestEntityTooLarge(ImageError):
    status = 413
    title = "Request Entity Too Large"
    message_format = "The request is larger than the server is willing or able to process."


class UnsupportedMediaType(ImageError):
    status = 415
    title = "Unsupported Media Type"
    message_format = "The request media type %(content_type)s is not supported by this server."


class RangeNotSatisfiable(ImageError):
    status = 416
    title = "Requested Range Not Satisfiable"
    message_format = "The Range requested is not available."


class InternalError(ImageError):
    status = 500
    title = "Internal Server Error"
    message_format = "The server has either erred or is incapable of performing the requested " \
        "operation."


class ServiceUnavailable(ImageError):
    status = 503
    title = "Service Unavailable"
    message_format = "The server is currently unavailable. Please try again at a later time."


_BY_STATUS: dict[int, type[ImageError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    409: Conflict, 410: Gone, 413: RequestEntityTooLarge, 415: UnsupportedMediaType,
    416: RangeNotSatisfiable, 503: ServiceUnavailable,
}


def error_for_status(status: int, message: str | None = None) -> ImageError:
    return _BY_STATUS.get(status, InternalError)(message)


class _Template:
    """webob's body pieces for one error (explanation, then two line breaks)."""

    html_page: ClassVar[str] = ("<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n"
                                "  <h1>{status}</h1>\n  {body}\n </body>\n</html>")

    @staticmethod
    def body(explanation: str) -> str:
        return f"{explanation}<br /><br />\n\n\n"

    @staticmethod
    def strip_tags(value: str) -> str:
        value = value.replace("\n", " ").replace("\r", "")
        value = _BR.sub("\n", value)
        value = _COMMENT.sub("", value)
        return _TAG.sub("", value)


def _accepts(scope: Scope) -> str:
    """webob's choice among text/html and application/json, else text/plain."""
    accept = ""
    for name, value in scope.get("headers", []):
        if name == b"accept":
            accept = value.decode("latin-1")
    best: tuple[float, int, str] | None = None
    for order, offer in enumerate(("text/html", "application/json")):
        quality = _quality(accept, offer)
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, order, offer)
    return best[2] if best else "text/plain"


def _quality(accept: str, offer: str) -> float:
    """The q of the most specific media range in ``accept`` that matches ``offer``."""
    kind, _, sub = offer.partition("/")
    found: tuple[int, float] | None = None
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        r_kind, _, r_sub = media.lower().partition("/")
        if not media or not ((r_kind in ("*", kind)) and (r_sub in ("*", sub))):
            continue
        specificity = (r_kind != "*") + (r_sub != "*")
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if found is None or specificity > found[0]:
            found = (specificity, quality)
    return found[1] if found else 0.0


def render(error: ServiceError, scope: Scope) -> Response:
    """One error as Glance (webob, or keystonemiddleware for a 401) renders it."""
    headers = dict(error.headers)
    if isinstance(error, Unauthorized):
        body = {"error": {"code": 401, "title": "Unauthorized", "message": error.message}}
        return Response(json.dumps(body), status_code=401, headers=headers,
                        media_type="application/json")
    status = f"{error.status} {error.title}"
    if scope.get("method") == "HEAD":
        return Response(b"", status_code=error.status, headers=headers)
    match _accepts(scope):
        case "text/html":
            page = _Template.html_page.format(status=status,
                                              body=_Template.body(html.escape(error.message)))
            return Response(page, status_code=error.status, headers=headers,
                            media_type="text/html")
        case "application/json":
            fields = {"message": _Template.body(error.message), "code": status,
                      "title": error.title}
            return Response(json.dumps(fields), status_code=error.status, headers=headers,
                            media_type="application/json")
    text = f"{status}\n\n{_Template.strip_tags(_Template.body(error.message))}"
    return Response(text, status_code=error.status, headers=headers, media_type="text/plain")
