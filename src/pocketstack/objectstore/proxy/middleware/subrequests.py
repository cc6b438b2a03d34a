"""Sub-request outcomes as responses (Swift's ``req.get_response(app)``).

The core raises its errors (``SwiftError``, ``ConstraintError``, ``StorageError``) and lets
the edge render them once; a feature that makes its own sub-requests wants every outcome as
a status it can look at, whatever it was. ``get_response`` gives it that, and
``status_line`` the ``"404 Not Found"`` form Swift's bulk results and logs carry.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from http import HTTPStatus

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.exceptions import EXPLANATIONS, SwiftError
from pocketstack.objectstore.proxy.pipeline import Handler
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.exceptions import StorageError

# swob's reason phrases where they differ from (or are missing in) the core's table.
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
           301: "Moved Permanently", 406: "Not Acceptable", 502: "Bad Gateway"}


def status_line(status: int) -> str:
    """``404`` -> ``"404 Not Found"``, with swob's reason phrases."""
    reason = REASONS.get(status) or EXPLANATIONS.get(status, ("", ""))[0]
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
    return f"{status} {reason}"


async def get_response(next: Handler, req: Request) -> Response:
    """``next(req)``, with an error the core raised turned into the response it stands for
    (status, headers, the error's own text as body)."""
    try:
        return await next(req)
    except SwiftError as exc:
        body = (exc.body or "").encode("utf-8")
        return Response(exc.status, dict(exc.headers), body)
    except ConstraintError as exc:
        return Response(exc.status, {"Content-Type": exc.content_type},
                        exc.message.encode("utf-8"))
    except StorageError as exc:
        return Response(exc.status)


async def send(next: Handler, req: Request, method: str, path: str, *,
               headers: Mapping[str, str] | None = None,
               body: bytes | AsyncIterable[bytes] | None = None,
               query: Mapping[str, str] | None = None, source: str = "") -> Response:
    """A sub-request of ``req`` (see ``Request.subrequest``) and its response; a path the
    proxy cannot route is the 404 the proxy would answer."""
    try:
        sub = req.subrequest(method, path, headers=headers, body=body, query=query,
                             source=source)
    except SwiftError as exc:
        return Response(exc.status)
    return await get_response(next, sub)
