"""Object PUT and server-side copy (``COPY`` with ``Destination``, ``PUT`` with
``X-Copy-From``).

A PUT streams the client's body to one writer per replica through a ``Tee`` and succeeds on
a quorum of complete, verified writes; a replica whose device is unavailable is replaced by
a handoff before the body has gone past what can be replayed. A body of at most one chunk
is read first and written like a POST or a DELETE (`base.write_all`: the replicas on one
node in one call). A copy reads the source as a stream and writes it like any PUT: neither ever
holds a whole object in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from pocketstack.objectstore import constraints
from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPPreconditionFailed,
    HTTPUnprocessableEntity,
    SwiftError,
    error_for_status,
)
from pocketstack.objectstore.proxy import checks, expiring
from pocketstack.objectstore.proxy import ranges as byte_ranges
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import (
    HANDOFF_STATUSES,
    Outcome,
    call,
    write_all,
)
from pocketstack.objectstore.proxy.controllers.obj import (
    Located,
    locate,
    newest_floor,
    object_headers,
    read_object,
    update_containers,
)
from pocketstack.objectstore.proxy.metadata import OBJECT_STORED, entity_metadata, title
from pocketstack.objectstore.proxy.nodes import Target
from pocketstack.objectstore.proxy.quorum import quorum_size
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.proxy.tee import Tee, rechunk, replay_window
from pocketstack.objectstore.storage.diskfile_io import SharedDigest
from pocketstack.objectstore.storage.node import StorageNode, one_chunk
from pocketstack.objectstore.storage.types import ObjectInfo
from pocketstack.objectstore.timestamp import Timestamp

LOG = logging.getLogger(__name__)
COPY_HEADERS_SKIPPED = frozenset({"x-timestamp", "etag", "content-length", "last-modified",
                                  "x-delete-at"})


async def put(ctx: ProxyContext, req: Request) -> Response:
    if "x-copy-from" in req.headers:
        account = _account_header(ctx, req, "x-copy-from-account")
        return await _copy(ctx, req, (account, *_path_header(req, "x-copy-from")), req)
    checks.object_name(ctx, req.obj or "", req=req)
    length = checks.object_creation(ctx, req)
    byte_ranges.check_put_if_none_match(req.headers)
    metadata = _put_metadata(ctx, req)
    here = await locate(ctx, req)
    if req.headers.get("if-none-match") == "*" and await _exists(ctx, here):
        await _discard_body(req)
        raise HTTPPreconditionFailed()
    body = req.body(limit=ctx.limits.max_file_size)
    info, _ = await write_object(ctx, here, metadata, body, length)
    return _created(info)


def _put_metadata(ctx: ProxyContext, req: Request) -> dict[str, str]:
    metadata = {k: v for k, v in entity_metadata(req, "object", stored=OBJECT_STORED).items()
                if v != ""}
    checks.object_metadata(ctx, req, metadata)
    metadata["Content-Type"] = checks.content_type(req)
    delete_at = checks.delete_at(req)
    if delete_at is not None:
        metadata["X-Delete-At"] = str(delete_at)
    if "etag" in req.headers:
        metadata["ETag"] = req.headers["etag"].strip().strip('"').lower()
    return metadata


def _created(info: ObjectInfo) -> Response:
    return Response(201, {"ETag": info.etag, "Last-Modified": info.last_modified.http_date,
                          "Content-Type": "text/html; charset=UTF-8"})


async def _exists(ctx: ProxyContext, here: Located) -> bool:
    for target in ctx.nodes.node_iter(here.policy.ring, here.part):
        outcome = await call(ctx, target, lambda node, dev: node.head_object(
            dev, here.part, here.account, here.container, here.obj, policy=here.policy.index))
        if outcome.ok:
            return True
        if outcome.status == 404:
            continue
    return False


async def _discard_body(req: Request) -> None:
    async for _ in req.body():
        pass


# -- writing the replicas ----------------------------------------------------------------------
async def write_object(ctx: ProxyContext, here: Located, metadata: dict[str, str],
                       body: AsyncIterator[bytes], length: int | None
                       ) -> tuple[ObjectInfo, list[Outcome]]:
    """Write one object to every replica; the stored info and each replica's outcome."""
    timestamp = Timestamp.now()
    if length is not None and length <= ctx.settings.chunk_size:
        outcomes = await _write_in_hand(ctx, here, timestamp, metadata, await _whole(body),
                                        length)
    else:
        outcomes = await _write_streamed(ctx, here, timestamp, metadata, body, length)
    good = [o for o in outcomes if o.ok]
    if len(good) < quorum_size(len(outcomes)):
        raise _write_failure(outcomes)
    info: ObjectInfo = good[0].value
    await update_containers(ctx, here, timestamp, good, info=info)
    if info.delete_at is not None:
        await expiring.enqueue(ctx, here.account, here.container, here.obj, info.delete_at)
    return info, outcomes


async def _whole(body: AsyncIterator[bytes]) -> bytes:
    """A body of at most one chunk, read before any replica is written (a storage node
    would read that much before its first step anyway). The client's failures are its
    own (499, 408); a copy's source that fails to read is a 503, as when each replica
    writer met it."""
    try:
        return b"".join([chunk async for chunk in body])
    except SwiftError:
        raise
    except Exception as exc:
        LOG.warning("reading the body to write failed: %r", exc)
        raise error_for_status(503) from exc


async def _write_in_hand(ctx: ProxyContext, here: Located, timestamp: Timestamp,
                         metadata: dict[str, str], data: bytes, length: int
                         ) -> list[Outcome]:
    """A small body, in hand: no fan-out, and the replicas that share a node are written
    by one call (`base.write_all`)."""
    def single(node: StorageNode, dev: str) -> Awaitable[ObjectInfo]:
        return node.put_object(dev, here.part, here.account, here.container, here.obj,
                               policy=here.policy.index, timestamp=timestamp,
                               metadata=metadata, body=one_chunk(data), content_length=length)

    def batch(node: StorageNode, devices: list[str]) -> Awaitable[list[Any]]:
        return node.put_object_replicas(
            devices, here.part, here.account, here.container, here.obj,
            policy=here.policy.index, timestamp=timestamp, metadata=metadata, body=data,
            content_length=length, timeout=ctx.settings.node_timeout)

    return await write_all(ctx, here.policy.ring, here.part, single, success=201,
                           batch=batch)


async def _write_streamed(ctx: ProxyContext, here: Located, timestamp: Timestamp,
                          metadata: dict[str, str], body: AsyncIterator[bytes],
                          length: int | None) -> list[Outcome]:
    """A body larger than a chunk (or of unknown length), streamed to one writer per
    replica through a `Tee`."""
    ring = here.policy.ring
    chunk = ctx.settings.chunk_size
    tee = Tee(rechunk(body, chunk), replay_limit=replay_window(chunk))
    targets = ctx.nodes.node_iter(ring, here.part)
    digest = SharedDigest()  # the replicas see the same chunks: local ones hash them once
    slots = [_write_slot(ctx, here, tee, targets, timestamp, metadata, length, digest)
             for _ in range(ring.replica_count)]
    outcomes = list(await asyncio.gather(*slots))
    await tee.drain()
    return outcomes


async def _write_slot(ctx: ProxyContext, here: Located, tee: Tee, targets: Iterator[Target],
                      timestamp: Timestamp, metadata: dict[str, str], length: int | None,
                      digest: SharedDigest) -> Outcome:
    last = Outcome(None, 503)
    for target in targets:
        if not tee.can_replay:
            break
        branch = tee.branch()

        def op(node: StorageNode, dev: str, body: AsyncIterator[bytes] = branch
               ) -> Awaitable[ObjectInfo]:
            return node.put_object(dev, here.part, here.account, here.container, here.obj,
                                   policy=here.policy.index, timestamp=timestamp,
                                   metadata=metadata, body=body, content_length=length,
                                   body_digest=digest)

        try:
            last = await call(ctx, target, op, success=201, streaming=True)
        finally:
            await branch.aclose()
        if last.status not in HANDOFF_STATUSES:
            return last
    return last


def _write_failure(outcomes: list[Outcome]) -> Exception:
    """Why a write missed its quorum, as the client hears it: the client's own failure
    (its body went away, grew too large), a bad body (422, 400), a newer version (202, as
    Swift answers a PUT that lost to a newer timestamp), else 503."""
    for outcome in outcomes:
        if isinstance(outcome.error, SwiftError):
            return outcome.error
    statuses = [o.status for o in outcomes]
    for status, error in ((422, HTTPUnprocessableEntity), (400, HTTPBadRequest)):
        if status in statuses:
            cause = next(o.error for o in outcomes if o.status == status)
            return error(str(cause) if status == 400 else None)
    if 499 in statuses:
        return error_for_status(499)
    if 409 in statuses:
        return error_for_status(202)
    return error_for_status(503)


# -- copy ---------------------------------------------------------------------------------------
def _path_header(req: Request, name: str) -> tuple[str, str]:
    """(container, object) of a copy header (``X-Copy-From``, ``Destination``), as Swift's
    ``check_path_header``: percent-decoded UTF-8, one leading slash optional, 412 unless
    both parts are there."""
    raw = unquote_to_bytes(req.headers[name].encode("latin-1"))
    path = constraints.decode_utf8(raw)
    if path is None and checks.allows_reserved_names(req):  # a feature's own copy
        path = raw.decode("utf-8", "replace")
    if path is None:
        raise HTTPPreconditionFailed("Invalid UTF8 or contains NULL")
    segments = (path if path.startswith("/") else "/" + path).split("/", 2)
    if len(segments) < 3 or not segments[1] or not segments[2]:
        raise HTTPPreconditionFailed(f"{title(name)} header must be of the form "
                                     "<container name>/<object name>")
    return segments[1], segments[2]


def _account_header(ctx: ProxyContext, req: Request, name: str) -> str:
    """The account a copy header names (percent-decoded; 412 when empty or with a
    slash), or the request's own."""
    value = req.headers.get(name)
    if value is None:
        return req.account or ""
    return checks.account_name(ctx, unquote_to_bytes(value.encode("latin-1")))


async def copy(ctx: ProxyContext, req: Request) -> Response:
    if not req.headers.get("destination"):
        raise HTTPPreconditionFailed("Destination header required")
    dest_account = _account_header(ctx, req, "destination-account")
    dest_container, dest_obj = _path_header(req, "destination")
    put_req = replace(req, method="PUT", account=dest_account, container=dest_container,
                      obj=dest_obj, path=f"/{req.version}/{dest_account}/{dest_container}/"
                      f"{dest_obj}", state={})
    return await _copy(ctx, put_req, (req.account or "", req.container or "", req.obj or ""),
                       req)


async def _copy(ctx: ProxyContext, dest_req: Request, source: tuple[str, str, str],
                orig: Request) -> Response:
    """Read the source as the client's GET would (Range, If-* and X-Newest, as Swift's
    copy middleware: a ranged copy copies the range) and write it to the destination."""
    src_account, src_container, src_obj = source
    src_req = replace(orig, method="GET", account=src_account, container=src_container,
                      obj=src_obj, state={})
    src_here = await locate(ctx, src_req)
    info, src = await read_object(ctx, src_req, src_here, await newest_floor(ctx, src_here))
    if src.status >= 300:
        return src  # 304/412: the source's answer
    try:
        checks.object_name(ctx, dest_req.obj or "", req=dest_req)
        metadata = _copy_metadata(ctx, dest_req, info, src.headers["Content-Type"])
        dest_here = await locate(ctx, dest_req)
        new_info, _ = await write_object(ctx, dest_here, metadata, _iterate(src.body),
                                         src.content_length)
    finally:
        if src.on_close is not None:
            await src.on_close()
    response = _created(new_info)
    response.headers.update({
        "X-Copied-From": quote(f"{src_container}/{src_obj}"),
        "X-Copied-From-Account": quote(src_account),
        "X-Copied-From-Last-Modified": str(info.last_modified.ceil())})
    return response


async def _iterate(body: Any) -> AsyncIterator[bytes]:
    async for chunk in body:
        yield chunk


def _copy_metadata(ctx: ProxyContext, req: Request, source: ObjectInfo, content_type: str
                   ) -> dict[str, str]:
    fresh = checks.true(req.headers.get("x-fresh-metadata"))
    # the source's system metadata is always copied (even with X-Fresh-Metadata), as
    # Swift's copy middleware does: a copied symlink is still a symlink
    metadata = {k: v for k, v in object_headers(source).items()
                if k.lower().startswith("x-object-sysmeta-")}
    if not fresh:
        metadata.update({k: v for k, v in object_headers(source).items()
                         if k.lower().startswith("x-object-meta-")
                         or k.lower() in OBJECT_STORED})
    metadata["Content-Type"] = content_type  # the source's (multipart for several ranges)
    metadata.pop("X-Delete-At", None)
    update = {k: v for k, v in entity_metadata(req, "object", stored=OBJECT_STORED).items()}
    for key, value in update.items():
        if value == "":
            metadata.pop(key, None)
        else:
            metadata[key] = value
    if "content-type" in req.headers:
        metadata["Content-Type"] = checks.content_type(req)
    delete_at = checks.delete_at(req)
    if delete_at is not None:
        metadata["X-Delete-At"] = str(delete_at)
    checks.object_metadata(ctx, req, metadata)
    return metadata
