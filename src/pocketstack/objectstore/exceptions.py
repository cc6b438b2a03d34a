"""Swift's HTTP errors, rendered once at the edge the way Swift's swob renders them.

A Swift error body is a short HTML page (``<html><h1>Not Found</h1><p>The resource could
not be found.</p></html>``) unless the error carries its own text, which Swift sends as
``text/plain`` (e.g. ``Invalid UTF8 or contains NULL``). Clients (swiftclient, rclone)
read the status and show the body; Swift's functional tests compare some bodies verbatim.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote, unquote_to_bytes

from starlette.responses import Response
from starlette.types import Scope

from pocketstack.common.errors import ServiceError

# Swift's explanations (swob.RESPONSE_REASONS) for the statuses the proxy answers with.
EXPLANATIONS: dict[int, tuple[str, str]] = {
    400: ("Bad Request", ""),
    401: ("Unauthorized", "This server could not verify that you are authorized to access "
          "the document you requested."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    408: ("Request Timeout", "The server has waited too long for the request to be sent by "
          "the client."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    411: ("Length Required", "Length Required."),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    413: ("Request Entity Too Large", "The body of your request was too large for this "
          "server."),
    414: ("Request URI Too Long", "The request URI was too long for this server."),
    416: ("Requested Range Not Satisfiable", "The Range requested is not available."),
    417: ("Expectation Failed", "Expectation failed."),
    422: ("Unprocessable Entity", "Unable to process the contained instructions"),
    499: ("Client Disconnect", "The client was disconnected during request."),
    500: ("Internal Error", "The server has either erred or is incapable of performing the "
          "requested operation."),
    501: ("Not Implemented", "The requested method is not implemented by this server."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at "
          "a later time."),
    507: ("Insufficient Storage", "There was not enough space to save the resource. Drive: "
          "%(drive)s"),
}


class SwiftError(ServiceError):
    """An HTTP error of the object storage API; ``body`` overrides Swift's HTML page."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Error"

    def __init__(self, body: str | None = None, *, headers: dict[str, str] | None = None,
                 content_type: str | None = None) -> None:
        super().__init__(body or EXPLANATIONS.get(self.status, ("", ""))[1], headers=headers)
        self.body = body
        self.content_type = content_type


def _error(status: int) -> type[SwiftError]:
    title = EXPLANATIONS[status][0]
    return type(f"HTTP{status}", (SwiftError,), {"status": status, "title": title})


HTTPBadRequest = _error(400)
HTTPUnauthorized = _error(401)
HTTPForbidden = _error(403)
HTTPNotFound = _error(404)
HTTPMethodNotAllowed = _error(405)
HTTPRequestTimeout = _error(408)
HTTPConflict = _error(409)
HTTPLengthRequired = _error(411)
HTTPPreconditionFailed = _error(412)
HTTPRequestEntityTooLarge = _error(413)
HTTPRequestedRangeNotSatisfiable = _error(416)
HTTPUnprocessableEntity = _error(422)
HTTPClientDisconnect = _error(499)
HTTPInternalServerError = _error(500)
HTTPNotImplemented = _error(501)
HTTPServiceUnavailable = _error(503)
HTTPInsufficientStorage = _error(507)


def error_for_status(status: int, body: str | None = None,
                     headers: dict[str, str] | None = None, *,
                     content_type: str | None = None) -> SwiftError:
    cls = {c.status: c for c in SwiftError.__subclasses__()}.get(status)
    if cls is None:
        cls = type(f"HTTP{status}", (SwiftError,), {"status": status, "title": str(status)})
    return cls(body, headers=headers, content_type=content_type)


def realm(scope: Scope) -> str:
    """The realm of a 401's ``WWW-Authenticate``: the account the path names, quoted (a
    name cannot break out of the header), else ``unknown`` (swob's ``www_authenticate``)."""
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
    segments = unquote_to_bytes(raw.split(b"?", 1)[0]).split(b"/", 3)
    if len(segments) < 3 or segments[0] or not segments[1] or not segments[2]:
        return "unknown"
    if segments[2] in (b"v1.0", b"auth"):
        return "unknown"
    return quote(segments[2], safe="/")


def _content_type(error: ServiceError, has_body: bool) -> str:
    given = getattr(error, "content_type", None)
    if given:
        return given if "charset" in given else f"{given}; charset=UTF-8"
    return "text/plain; charset=UTF-8" if has_body else "text/html; charset=UTF-8"


def render(error: ServiceError, scope: Scope) -> Response:
    """The one renderer of object storage errors."""
    body = getattr(error, "body", None)
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", f'Swift realm="{realm(scope)}"')
    ctype = _content_type(error, bool(body))
    if body:
        content = body
    else:
        title, explanation = EXPLANATIONS.get(error.status, (error.title, ""))
        if "%(drive)s" in explanation:
            explanation = explanation.replace("%(drive)s", "")
        content = f"<html><h1>{title}</h1><p>{explanation}</p></html>"
    if scope.get("method") == "HEAD":
        content = ""
    return Response(content, status_code=error.status, headers=headers, media_type=ctype)
