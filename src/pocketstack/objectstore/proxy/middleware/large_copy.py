"""Server-side copy of a large object (``COPY`` + ``Destination``, ``PUT`` + ``X-Copy-From``).

The core copies an object by reading its stored bytes; a large object's stored bytes are
its manifest. Swift's ``copy`` middleware sits in front of ``slo`` and ``dlo``, so its
source GET is served by them; here each large-object middleware takes a copy whose source
is one of its own (one HEAD of the source tells) and does what Swift's copy does:

- the source is read as the client's GET would read it (its query, ``Range``, ``If-*``
  and ``X-Newest``), through the middleware: the concatenated segments, or with
  ``?multipart-manifest=get`` the manifest (an SLO's in the form it was PUT, ``format=raw``);
- the destination is written with a PUT sub-request: the source's metadata (none with
  ``X-Fresh-Metadata``) under the request's headers, no ETag (a large object's is not the
  MD5 of its bytes); an SLO manifest copy is a ``?multipart-manifest=put`` (its segments are
  checked again, as the caller, in the destination account), a DLO manifest copy keeps
  ``X-Object-Manifest``;
- the answer is the PUT's, with ``X-Copied-From``, ``-Account`` and ``-Last-Modified``.

Everything else (plain objects, malformed headers) is left to the core's copy.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from pocketstack.objectstore.constraints import decode_utf8
from pocketstack.objectstore.exceptions import HTTPBadRequest, HTTPRequestEntityTooLarge
from pocketstack.objectstore.proxy.controllers.obj_put import COPY_HEADERS_SKIPPED
from pocketstack.objectstore.proxy.metadata import OBJECT_STORED
from pocketstack.objectstore.proxy.middleware.segments import (
    call,
    forwarded,
    header,
    response_length,
)
from pocketstack.objectstore.proxy.pipeline import Handler, body_chunks, release
from pocketstack.objectstore.proxy.request import Request, Response

PROBE_STATE = "large_copy_probe"
# Request headers that say how to copy, not what to store.
NOT_STORED = frozenset({
    "x-copy-from", "x-copy-from-account", "destination", "destination-account",
    "content-length", "transfer-encoding", "expect", "host", "x-auth-token",
    "x-storage-token", "x-service-token", "range", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since", "x-newest", "etag", "x-fresh-metadata",
    "connection", "accept", "accept-encoding", "user-agent", "referer"})
SOURCE_HEADERS = ("range", "if-match", "if-none-match", "if-modified-since",
                  "if-unmodified-since")
# Stored headers a copy takes from its source (its manifest markers excepted).
COPIED_STORED = frozenset(OBJECT_STORED) - {"x-object-manifest", "x-static-large-object",
                                            "x-delete-at"}
# Large-object system metadata that describes the source only.
SOURCE_SYSMETA = ("x-object-sysmeta-slo-", "x-object-sysmeta-container-update-override-")

Probe = Callable[[Mapping[str, str]], bool]
Serve = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class CopyPlan:
    """Where a copy reads from and writes to (decoded ``/v1/a/c/o`` paths)."""

    version: str
    source_account: str
    source_container: str
    source_obj: str
    dest_path: str

    @property
    def source_path(self) -> str:
        return (f"/{self.version}/{self.source_account}/{self.source_container}/"
                f"{self.source_obj}")


def _path_header(value: str) -> tuple[str, str] | None:
    path = decode_utf8(unquote_to_bytes(value.encode("latin-1")))
    if path is None:
        return None
    container, _, obj = path.removeprefix("/").partition("/")
    return (container, obj) if container and obj else None


def _account_header(value: str | None, default: str) -> str | None:
    if value is None:
        return default
    account = decode_utf8(unquote_to_bytes(value.encode("latin-1")))
    return account if account and "/" not in account else None


def plan_copy(req: Request) -> CopyPlan | None:
    """The copy ``req`` asks for; None when it is none, or malformed (the core answers)."""
    account = req.account or ""
    if req.method == "COPY" and req.headers.get("destination"):
        dest = _path_header(req.headers["destination"])
        dest_account = _account_header(req.headers.get("destination-account"), account)
        if dest is None or dest_account is None:
            return None
        return CopyPlan(req.version, account, req.container or "", req.obj or "",
                        f"/{req.version}/{dest_account}/{dest[0]}/{dest[1]}")
    if req.method == "PUT" and req.headers.get("x-copy-from"):
        source = _path_header(req.headers["x-copy-from"])
        source_account = _account_header(req.headers.get("x-copy-from-account"), account)
        if source is None or source_account is None:
            return None
        return CopyPlan(req.version, source_account, source[0], source[1], req.path)
    return None


async def probe_source(req: Request, next: Handler, plan: CopyPlan) -> Mapping[str, str]:
    """The source's headers as stored (a HEAD with ``multipart-manifest=get``), shared by
    the middlewares that look at the same copy; empty when it cannot be read."""
    cached = req.state.get(PROBE_STATE)
    if cached is not None and cached[0] == plan.source_path:
        return dict(cached[1])
    sub = req.subrequest("HEAD", plan.source_path, headers=forwarded(req),
                         query={"multipart-manifest": "get"}, source="SSC")
    response = await call(next, sub)
    await release(response)
    headers = response.headers if response.status // 100 == 2 else {}
    req.state[PROBE_STATE] = (plan.source_path, dict(headers))
    return headers


async def copy_large_object(req: Request, next: Handler, *, is_mine: Probe, serve: Serve,
                            max_file_size: int) -> Response | None:
    """Copy ``req``'s source if it is a large object ``is_mine`` recognizes, reading and
    writing through ``serve`` (the middleware's own handler); None: not one of them."""
    plan = plan_copy(req)
    if plan is None or not is_mine(await probe_source(req, next, plan)):
        return None
    if req.content_length:
        raise HTTPBadRequest("Copy requests require a zero byte body",
                             content_type="text/plain")
    manifest = req.query.get("multipart-manifest") == "get"
    source = await serve(_source_request(req, plan, manifest))
    if source.status >= 300:
        return source  # 304/412: the source's answer
    length = response_length(source)
    if length is None or length > max_file_size:
        await release(source)
        raise HTTPRequestEntityTooLarge()
    sink = _sink_request(req, plan, source, length, manifest)
    try:
        response = await serve(sink)
    finally:
        await release(source)
    if response.status // 100 == 2:
        response.headers.update(_copied_from(plan, source))
    return response


def _source_request(req: Request, plan: CopyPlan, manifest: bool) -> Request:
    query = {k: v for k, v in req.query.items() if k != "heartbeat"}
    if manifest:
        query["format"] = "raw"
    headers = {**forwarded(req), "X-Newest": "true"}
    headers.update({k: req.headers[k] for k in SOURCE_HEADERS if k in req.headers})
    return req.subrequest("GET", plan.source_path, headers=headers, query=query, source="SSC")


def _sink_request(req: Request, plan: CopyPlan, source: Response, length: int,
                  manifest: bool) -> Request:
    headers = {} if req.headers.get("x-fresh-metadata", "").lower() in (
        "true", "1", "yes", "on", "t", "y") else _source_metadata(source.headers)
    headers.update({k: v for k, v in req.headers.items() if k.lower() not in NOT_STORED})
    if "content-type" not in req.headers:
        headers["Content-Type"] = header(source.headers, "Content-Type") or ""
    headers.update(forwarded(req))
    headers["Content-Length"] = str(length)
    query: dict[str, str] = {}
    x_object_manifest = header(source.headers, "X-Object-Manifest")
    if manifest and header(source.headers, "X-Static-Large-Object"):
        query["multipart-manifest"] = "put"
    elif manifest and x_object_manifest is not None:
        headers["X-Object-Manifest"] = x_object_manifest
        headers["ETag"] = header(source.headers, "ETag") or ""
    return req.subrequest("PUT", plan.dest_path, headers=headers, query=query,
                          body=_relay(source), source="SSC")


def _source_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """What a copy keeps of its source: user metadata, the stored headers, and system
    metadata that is not the source's own large-object bookkeeping."""
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in COPY_HEADERS_SKIPPED or lower.startswith(SOURCE_SYSMETA):
            continue
        if lower.startswith(("x-object-meta-", "x-object-sysmeta-")) or \
                lower in COPIED_STORED:
            kept[name] = value
    return kept


async def _relay(source: Response) -> AsyncIterator[bytes]:
    async for chunk in body_chunks(source):
        yield chunk


def _copied_from(plan: CopyPlan, source: Response) -> dict[str, str]:
    copied = {"X-Copied-From": quote(f"{plan.source_container}/{plan.source_obj}"),
              "X-Copied-From-Account": quote(plan.source_account)}
    stamp = header(source.headers, "X-Timestamp")
    if stamp:
        copied["X-Copied-From-Last-Modified"] = str(math.ceil(float(stamp)))
    return copied
