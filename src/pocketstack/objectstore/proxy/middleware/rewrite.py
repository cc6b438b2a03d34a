"""Request and response rewrites shared by the symlink and versioning middlewares.

Swift's middlewares edit the WSGI environ in place; here a rewritten request is a new
``Request`` (same body, identity, deferred authorization and state) with other headers,
query or path:

- `with_headers` / `with_query` / `moved`: the same request, changed;
- `preauthorized`: a sub-request the rest of the pipeline does not authorize again
  (Swift's ``make_pre_authed_request``: the feature already authorized the client's
  request), optionally allowed into the reserved namespace (names starting with NUL);
- `copy_as_put`: ``COPY`` with ``Destination`` as the ``PUT`` with ``X-Copy-From`` it
  means (what Swift's ``copy`` middleware does before every other feature sees it);
- `json_listing` / `render_listing`: a container listing as JSON rows, and back in the
  format the client asked for (Swift's ``listing_formats``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlencode

from starlette.datastructures import Headers
from starlette.types import Message

from pocketstack.objectstore import constraints
from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.exceptions import HTTPPreconditionFailed, SwiftError
from pocketstack.objectstore.proxy import listing
from pocketstack.objectstore.proxy.checks import (
    ALLOW_RESERVED_NAMES,
    CONTENT_TYPE_OVERRIDDEN,
    RESERVED,
    allows_reserved_names,
)
from pocketstack.objectstore.proxy.pipeline import Handler, body_chunks, read_body
from pocketstack.objectstore.proxy.request import Request, Response, split_path
from pocketstack.objectstore.storage.exceptions import StorageError

# Source headers a copy of a stored object does not take (the rest: metadata, system
# metadata, type); its ETag is checked by the storage already, and a large object's is not
# the MD5 of its stored bytes.
NOT_COPIED = frozenset({"x-timestamp", "content-length", "last-modified", "accept-ranges",
                        "content-location", "x-object-version-id", "x-newest", "etag",
                        "x-symlink-target", "x-symlink-target-account",
                        "x-symlink-target-etag", "x-symlink-target-bytes"})
# A container listing is at most 10000 rows of names up to 1 KiB plus their fields.
MAX_LISTING_BYTES = 64 * 1024 * 1024


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header of a response (a plain dict: any case) or a request."""
    if isinstance(headers, Headers):
        return headers.get(name)
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def without(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    dropped = {n.lower() for n in names}
    return {k: v for k, v in headers.items() if k.lower() not in dropped}


def length_of(response: Response) -> int:
    """A response's body length, however it is given (HEAD: ``content_length``)."""
    if response.content_length is not None:
        return response.content_length
    if isinstance(response.body, bytes):
        return len(response.body)
    value = header(response.headers, "content-length")
    return int(value) if value and value.isdigit() else 0


def object_path(version: str, account: str, container: str, obj: str) -> str:
    """A decoded request path (what ``Request.subrequest`` takes)."""
    return f"/{version}/{account}/{container}/{obj}"


# -- the same request, changed ------------------------------------------------------------
def with_headers(req: Request, set_: Mapping[str, str] | None = None,
                 drop: Iterable[str] = ()) -> Request:
    """``req`` with headers ``drop``-ped and ``set_`` (replacing any of the same name)."""
    removed = {n.lower() for n in drop} | {n.lower() for n in (set_ or {})}
    raw = [(k, v) for k, v in req.headers.raw if k.decode("latin-1") not in removed]
    for name, value in (set_ or {}).items():
        raw.append((name.lower().encode("latin-1"), _wire(value)))
    scope = {**req.scope, "headers": raw}
    return replace(req, scope=scope, headers=Headers(scope=scope))


def with_query(req: Request, query: Mapping[str, str]) -> Request:
    """``req`` with another query (as parsed: last value wins)."""
    scope = {**req.scope, "query_string": urlencode(dict(query)).encode("ascii")}
    return replace(req, scope=scope, query=dict(query))


def with_body(req: Request, body: bytes) -> Request:
    """``req`` with another (small) body, its framing (length or chunked) unchanged."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replace(req, receive=receive)


def moved(req: Request, method: str, path: str) -> Request:
    """``req`` (headers, body, identity) sent as ``method`` to another ``path``."""
    version, account, container, obj = split_path(path)
    raw_path = quote(path.encode("utf-8"), safe="/").encode("ascii")
    scope = {**req.scope, "method": method, "path": path, "raw_path": raw_path}
    return replace(req, scope=scope, method=method, path=path, version=version,
                   account=account, container=container, obj=obj)


def _wire(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


# -- sub-requests ---------------------------------------------------------------------------
async def call(next: Handler, req: Request) -> Response:
    """``next(req)`` with an error the core raised as the response it stands for (Swift's
    ``req.get_response(app)``: a status to look at, whatever happened)."""
    try:
        return await next(req)
    except SwiftError as exc:
        return Response(exc.status, dict(exc.headers), (exc.body or "").encode("utf-8"))
    except ConstraintError as exc:
        return Response(exc.status, {}, exc.message.encode("utf-8"))
    except StorageError as exc:
        return Response(exc.status, {})


def copy_request(req: Request, path: str, source: Response, *, source_name: str,
                 reserved: bool = False) -> Request:
    """A PUT of ``source`` (a GET answer, streamed) at ``path`` with the source's metadata,
    system metadata and type (what versioning does to keep or restore an object); a static
    large object keeps its listed size (``; swift_bytes=``), as Swift's versioning does."""
    headers = {k: v for k, v in source.headers.items() if k.lower() not in NOT_COPIED}
    headers["Content-Length"] = str(length_of(source))
    slo_size = header(source.headers, "x-object-sysmeta-slo-size")
    if slo_size:
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        ctype = header(source.headers, "content-type") or "application/octet-stream"
        headers["Content-Type"] = f"{ctype}; swift_bytes={slo_size}"
    if reserved:
        headers[ALLOW_RESERVED_NAMES] = "true"
    put = req.subrequest("PUT", path, headers=headers, body=body_chunks(source),
                         source=source_name)
    if slo_size:
        put.state[CONTENT_TYPE_OVERRIDDEN] = True
    return put


async def read_all(response: Response) -> bytes:
    """A listing's body, whole."""
    return await read_body(response, MAX_LISTING_BYTES)


async def _already_authorized(req: Request) -> None:
    return None


def preauthorized(sub: Request, *, reserved: bool = False) -> Request:
    """``sub`` without authorization of its own (the client's request was authorized);
    ``reserved``: it may name containers and objects of the reserved namespace."""
    if reserved:
        sub = with_headers(sub, {ALLOW_RESERVED_NAMES: "true"})
    sub.authorize = _already_authorized
    return sub


def reserved_source(req: Request) -> Request:
    """A copy whose source is in the reserved namespace (where a versioned link leads):
    the source is read without authorization of its own (the link's read was authorized),
    the destination is authorized as usual."""
    original = req.authorize
    moved = with_headers(req, {ALLOW_RESERVED_NAMES: "true"})

    async def authorize(sub: Request) -> None:
        if (sub.container or "").startswith(RESERVED) or original is None:
            return
        await original(sub)

    moved.authorize = authorize
    return moved


def authorized_except(req: Request, account: str, container: str) -> Request:
    """``req`` allowed into the reserved namespace, authorized as usual except in one
    (reserved) container: the client's write lands there, while anything else the request
    touches (a copy's source) is authorized as the caller."""
    original = req.authorize
    moved = with_headers(req, {ALLOW_RESERVED_NAMES: "true"})

    async def authorize(sub: Request) -> None:
        if (sub.account, sub.container) == (account, container) or original is None:
            return
        await original(sub)

    moved.authorize = authorize
    return moved


# -- COPY ------------------------------------------------------------------------------------
def copy_as_put(req: Request) -> Request:
    """A ``COPY`` as the ``PUT`` with ``X-Copy-From`` at its ``Destination`` (412 as Swift
    for a missing or malformed header)."""
    if not req.headers.get("destination"):
        raise HTTPPreconditionFailed("Destination header required")
    account = req.account or ""
    if "destination-account" in req.headers:
        account = path_account(req.headers["destination-account"])
    container, obj = path_header(req.headers["destination"], "Destination")
    source = quote(f"/{req.container}/{req.obj}".encode())
    put = moved(req, "PUT", object_path(req.version, account, container, obj))
    return with_headers(put, {"X-Copy-From": source, "X-Copy-From-Account": req.account or "",
                              "Content-Length": "0"},
                        drop=("destination", "destination-account"))


def copy_source(req: Request) -> tuple[str, str, str]:
    """(account, container, object) a ``PUT`` with ``X-Copy-From`` copies (in the reserved
    namespace only when the proxy itself asks for that)."""
    account = req.account or ""
    if "x-copy-from-account" in req.headers:
        account = path_account(req.headers["x-copy-from-account"])
    container, obj = path_header(req.headers["x-copy-from"], "X-Copy-From",
                                 reserved=allows_reserved_names(req))
    return account, container, obj


def path_header(value: str, name: str, *, reserved: bool = False) -> tuple[str, str]:
    """``<container>/<object>`` of a header, percent-decoded (412 as Swift's
    ``check_path_header``: one leading slash optional, both parts needed); ``reserved``:
    the proxy's own header, which may name the reserved namespace."""
    raw = unquote_to_bytes(value.encode("latin-1"))
    text = constraints.decode_utf8(raw)
    if text is None and reserved:
        text = raw.decode("utf-8", "replace")
    if text is None:
        raise HTTPPreconditionFailed("Invalid UTF8 or contains NULL")
    parts = (text if text.startswith("/") else "/" + text).split("/", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise HTTPPreconditionFailed(f"{name} header must be of the form "
                                     "<container name>/<object name>", content_type="text/plain")
    return parts[1], parts[2]


def path_account(value: str) -> str:
    """An account named by a header, percent-decoded (412 as Swift's
    ``check_account_format``)."""
    return constraints.check_account_name(unquote_to_bytes(value.encode("latin-1")),
                                          check_length=False)


# -- listings --------------------------------------------------------------------------------
async def json_listing(req: Request, next: Handler) -> tuple[Response, list[dict[str, Any]]]:
    """The container listing ``req`` asks for, as JSON rows (a non-200 answer: no rows)."""
    response = await next(with_query(req, {**req.query, "format": "json"}))
    if response.status != 200:
        return response, []
    return response, json_rows(await read_body(response, MAX_LISTING_BYTES))


def json_rows(body: bytes) -> list[dict[str, Any]]:
    rows = json.loads(body) if body else []
    return rows if isinstance(rows, list) else []


def listing_format(req: Request) -> listing.MediaType:
    """The media type the client wants its listing in (400/406 as Swift)."""
    return listing.listing_media_type(req.query.get("format"), req.headers.get("accept"))


def render_listing(req: Request, response: Response, rows: list[dict[str, Any]],
                   media: listing.MediaType) -> Response:
    """``rows`` as the listing body of ``response`` in ``media`` (204 when plain and
    empty, as Swift)."""
    body, ctype = listing.render_object_listing(req.container or "",
                                                [_row(r) for r in rows], media)
    status = listing.listing_status(body)
    headers = {**without(response.headers, ("content-length",)), "Content-Type": ctype}
    return Response(status, headers, body if status == 200 else b"")


def _row(record: dict[str, Any]) -> listing.ObjectRow | listing.SubdirRow:
    if "subdir" in record:
        return listing.SubdirRow(subdir=str(record["subdir"]))
    known = ("name", "hash", "bytes", "content_type", "last_modified")
    extra = tuple((k, v) for k, v in record.items() if k not in known)
    return listing.ObjectRow(name=record["name"], hash=record["hash"],
                             bytes=int(record["bytes"]), content_type=record["content_type"],
                             last_modified=record["last_modified"], extra=extra)
