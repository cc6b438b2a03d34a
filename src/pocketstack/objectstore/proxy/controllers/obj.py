"""/v1/{account}/{container}/{object}: GET, HEAD, POST, DELETE (PUT and COPY: ``obj_put``).

Reads go to the first replica that has the object (all of them with ``X-Newest``); writes
go to every replica and succeed on a quorum; each change of an object is then reported to
its container's replicas (a failed report is kept as an async pending for the updater).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

from pocketstack.objectstore.constraints import clean_content_type
from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPNotFound,
    HTTPPreconditionFailed,
    HTTPRequestedRangeNotSatisfiable,
    SwiftError,
    error_for_status,
)
from pocketstack.objectstore.proxy import checks, expiring
from pocketstack.objectstore.proxy import ranges as byte_ranges
from pocketstack.objectstore.proxy.context import Policy, ProxyContext
from pocketstack.objectstore.proxy.controllers import container as containers
from pocketstack.objectstore.proxy.controllers.base import (
    HANDOFF_STATUSES,
    Outcome,
    call,
    container_info,
    held_for_anonymous,
    read_all,
    read_first,
    summarize,
    write_all,
)
from pocketstack.objectstore.proxy.metadata import OBJECT_STORED, entity_metadata
from pocketstack.objectstore.proxy.nodes import Target
from pocketstack.objectstore.proxy.quorum import best_status
from pocketstack.objectstore.proxy.request import Request, Response, wsgi_to_str
from pocketstack.objectstore.storage.exceptions import DiskFileDeleted, RangeNotSatisfiable
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import (
    ByteRange,
    ContainerInfo,
    ContainerUpdate,
    ObjectBody,
    ObjectInfo,
)
from pocketstack.objectstore.timestamp import Timestamp

CONTAINER_UPDATE_OVERRIDE = "x-object-sysmeta-container-update-override-"


@dataclass(frozen=True)
class Located:
    """An object request's place: its container, storage policy and partition."""

    account: str
    container: str
    obj: str
    info: ContainerInfo
    policy: Policy
    part: int


async def locate(ctx: ProxyContext, req: Request) -> Located:
    """Authorize against the container's ACLs and find where the object lives (404 when
    the container does not exist). No container replica answering is 503, told to an
    anonymous caller only once authorized (`held_for_anonymous`: a TempURL may let it in)."""
    account, container, obj = req.account or "", req.container or "", req.obj or ""
    info, unavailable = await held_for_anonymous(req, container_info(ctx, account, container))
    await containers.authorize(ctx, req, info)
    if unavailable is not None:
        raise unavailable
    if info is None:
        raise HTTPNotFound()
    return place(ctx, account, container, obj, info)


def place(ctx: ProxyContext, account: str, container: str, obj: str, info: ContainerInfo
          ) -> Located:
    """Where an object of an existing container lives."""
    policy = ctx.policies.get(info.storage_policy_index)
    return Located(account, container, obj, info, policy,
                   policy.ring.get_part(account, container, obj))


# -- GET / HEAD --------------------------------------------------------------------------------
async def get_or_head(ctx: ProxyContext, req: Request) -> Response:
    here = await locate(ctx, req)
    newest = checks.true(req.headers.get("x-newest"))
    if req.method == "HEAD":
        info = await _newest_or_first(ctx, here, newest=newest)
        return _head_response(req, info)
    floor = await newest_floor(ctx, here) if newest else None
    return (await read_object(ctx, req, here, floor))[1]


async def plain_get_or_head(ctx: ProxyContext, here: Located, method: str
                            ) -> tuple[ObjectInfo, Response]:
    """The object and what ``get_or_head`` answers a GET or HEAD of it that asks for
    nothing more: no Range, no condition, no X-Newest (``proxy/plain_read.py``)."""
    if method == "HEAD":
        info = await _newest_or_first(ctx, here, newest=False)
        return info, _whole_head_response(info)
    info, body = await _open(ctx, here, None, None)
    return info, _object_response(info, body)


async def newest_floor(ctx: ProxyContext, here: Located) -> Timestamp:
    """The newest replica's Last-Modified: what an X-Newest read must not go below."""
    return (await _newest_or_first(ctx, here, newest=True)).last_modified


async def _newest_or_first(ctx: ProxyContext, here: Located, *, newest: bool) -> ObjectInfo:
    ring = here.policy.ring

    def op(node: StorageNode, dev: str) -> Awaitable[ObjectInfo]:
        return node.head_object(dev, here.part, here.account, here.container, here.obj,
                                policy=here.policy.index)

    if newest:
        return _newest(await read_all(ctx, ring, here.part, op))
    outcome = await read_first(ctx, ring, here.part, op)
    if not outcome.ok:
        raise error_for_status(outcome.status)
    return outcome.value  # type: ignore[no-any-return]


def _newest(outcomes: list[Outcome]) -> ObjectInfo:
    """The newest replica's object (X-Newest); 404 when a replica holds a tombstone at
    least as new as that object's data (the newest timestamp wins, deletes included)."""
    found: list[ObjectInfo] = [o.value for o in outcomes if o.ok]
    if not found:
        raise error_for_status(_read_failure(outcomes))
    info = max(found, key=lambda i: i.last_modified)
    deleted = _deleted_at(outcomes)
    if deleted is not None and deleted >= info.timestamp:
        raise HTTPNotFound()
    return info


def _read_failure(outcomes: list[Outcome]) -> int:
    """What a read that found nothing answers: 404 if any replica said so (or none was
    asked), else the first decisive status, else 503 (every replica failed)."""
    statuses = [o.status for o in outcomes]
    if 404 in statuses or not statuses:
        return 404
    decisive = [s for s in statuses if s not in HANDOFF_STATUSES]
    return decisive[0] if decisive else 503


async def _open(ctx: ProxyContext, here: Located, wanted: list[ByteRange] | None,
                floor: Timestamp | None) -> tuple[ObjectInfo, ObjectBody]:
    """The object's info and body from the first replica that has it (at least as new as
    ``floor`` when X-Newest asked for all of them, and newer than any tombstone a replica
    asked before showed); the storage's RangeNotSatisfiable when none of ``wanted`` is in
    the object."""
    failures: list[Outcome] = []
    for target in ctx.nodes.node_iter(here.policy.ring, here.part):
        outcome = await call(ctx, target, lambda node, dev: node.get_object(
            dev, here.part, here.account, here.container, here.obj,
            policy=here.policy.index, ranges=wanted))
        if isinstance(outcome.error, RangeNotSatisfiable):
            raise outcome.error
        if not outcome.ok:
            failures.append(outcome)
            continue
        info, body = outcome.value
        deleted = _deleted_at(failures)
        if (floor is not None and info.last_modified < floor) or \
                (deleted is not None and deleted >= info.timestamp):
            await body.aclose()  # a stale replica: it missed a newer write or delete
            continue
        return info, body
    raise error_for_status(_read_failure(failures))


def _deleted_at(outcomes: list[Outcome]) -> Timestamp | None:
    """The newest tombstone among failed reads (DiskFileDeleted carries its time)."""
    stamps = [o.error.timestamp for o in outcomes
              if isinstance(o.error, DiskFileDeleted) and o.error.timestamp is not None]
    return max(stamps, default=None)


async def read_object(ctx: ProxyContext, req: Request, here: Located,
                      floor: Timestamp | None) -> tuple[ObjectInfo, Response]:
    """A GET of the object as ``req`` asks for it (Range, If-* conditions): its info and
    the response, 200, 206, 304 or 412 (416 raises); ``floor``: the X-Newest timestamp.
    Server-side copy reads its source with this too, as Swift's copy middleware does."""
    header = req.headers.get("range")
    try:
        info, body = await _open(ctx, here, _storage_ranges(header), floor)
    except RangeNotSatisfiable:  # the storage's verdict: Swift's rules decide below
        info, body = await _open(ctx, here, None, floor)
    status = byte_ranges.evaluate_conditions(req.method, req.headers, info.etag,
                                             float(info.last_modified))
    if status is not None:
        await body.aclose()
        return info, Response(status, object_headers(info))
    try:
        ranges = byte_ranges.parse_range(header, info.content_length)
    except byte_ranges.RangeNotSatisfiable as exc:
        await body.aclose()
        raise _unsatisfiable(info) from exc
    if (ranges or None) != (body.ranges or None):
        await body.aclose()  # Swift's rules (egregious, empty body) differ: read again
        info, body = await _open(ctx, here, list(ranges) if ranges else None, floor)
    return info, _object_response(info, body)


def _storage_ranges(header: str | None) -> list[ByteRange] | None:
    """The Range header as the storage layer takes ranges (suffix = negative start)."""
    specs = byte_ranges.parse_range_header(header)
    if not specs:
        return None
    out: list[ByteRange] = []
    for first, last in specs:
        if first is None:
            out.append((-(last or 0), None))
        else:
            out.append((first, None if last is None else last + 1))
    return out


def _unsatisfiable(info: ObjectInfo) -> SwiftError:
    """416 with the object's headers (ETag, Last-Modified, metadata...), as Swift's object
    server answers it, and Swift's HTML body."""
    headers = {k: v for k, v in object_headers(info).items() if k != "Content-Type"}
    headers["Content-Range"] = f"bytes */{info.content_length}"
    return HTTPRequestedRangeNotSatisfiable(headers=headers)


def _object_response(info: ObjectInfo, body: ObjectBody) -> Response:
    headers = object_headers(info)
    ranges = body.ranges
    if not ranges:
        return Response(200, headers, body, content_length=info.content_length,
                        on_close=body.aclose)
    if len(ranges) == 1:
        start, stop = ranges[0]
        headers["Content-Range"] = byte_ranges.content_range(start, stop, info.content_length)
        return Response(206, headers, body, content_length=stop - start, on_close=body.aclose)
    plan = byte_ranges.multipart_byteranges(ranges, info.content_length, info.content_type,
                                            byte_ranges.new_boundary())
    headers["Content-Type"] = plan.content_type
    splitter = _RangeSplitter(body)
    return Response(206, headers, byte_ranges.stream_multipart(plan, splitter.read),
                    content_length=plan.content_length, on_close=body.aclose)


class _RangeSplitter:
    """Cuts the storage body (the ranges' bytes back to back) into one stream per range."""

    def __init__(self, body: ObjectBody) -> None:
        self.body = body
        self.carry = b""

    async def read(self, start: int, stop: int) -> AsyncIterator[bytes]:
        need = stop - start
        while need > 0:
            if not self.carry:
                self.carry = await self.body.__anext__()
            piece, self.carry = self.carry[:need], self.carry[need:]
            need -= len(piece)
            yield piece


def _head_response(req: Request, info: ObjectInfo) -> Response:
    headers = object_headers(info)
    status = byte_ranges.evaluate_conditions(req.method, req.headers, info.etag,
                                             float(info.last_modified))
    if status is not None:  # 304/412 keep every header of the object, as Swift's
        return Response(status, headers)
    return _whole_head_response(info, headers)


def _whole_head_response(info: ObjectInfo, headers: dict[str, str] | None = None
                         ) -> Response:
    return Response(200, object_headers(info) if headers is None else headers, None,
                    content_length=info.content_length)


def object_headers(info: ObjectInfo) -> dict[str, str]:
    """The object's response headers; system metadata included, for the feature
    middlewares (the gatekeeper removes it before the response leaves the proxy)."""
    headers = {"Content-Type": clean_content_type(info.content_type), "ETag": info.etag,
               "Last-Modified": info.last_modified.http_date,
               "X-Timestamp": info.last_modified.normal, "Accept-Ranges": "bytes"}
    for name, value in info.metadata.items():
        lower = name.lower()
        if (lower.startswith(("x-object-meta-", "x-object-sysmeta-")) or
                lower in OBJECT_STORED) and value != "":
            headers[name] = value
    return headers


# -- POST / DELETE -----------------------------------------------------------------------------
async def post(ctx: ProxyContext, req: Request) -> Response:
    here = await locate(ctx, req)
    metadata = entity_metadata(req, "object", stored=OBJECT_STORED)
    checks.object_metadata(ctx, req, metadata)
    metadata.pop("X-Delete-At", None)
    delete_at = checks.delete_at(req)
    if delete_at is not None:
        metadata["X-Delete-At"] = str(delete_at)
    if "content-type" in req.headers:
        metadata["Content-Type"] = req.headers["content-type"]
    else:
        await _keep_content_type(ctx, here, metadata)
    timestamp = Timestamp.now()
    ring = here.policy.ring
    outcomes = await write_all(
        ctx, ring, here.part, lambda node, dev: node.post_object(
            dev, here.part, here.account, here.container, here.obj, policy=here.policy.index,
            timestamp=timestamp, metadata=metadata),
        success=202, batch=lambda node, devices: node.post_object_replicas(
            devices, here.part, here.account, here.container, here.obj,
            policy=here.policy.index, timestamp=timestamp, metadata=metadata,
            timeout=ctx.settings.node_timeout))
    status = summarize(outcomes, ring.replica_count)
    if status != 202:
        raise error_for_status(status)
    written = [o for o in outcomes if o.ok]
    if "content-type" in req.headers:  # the listing shows the new type from now on
        await update_containers(ctx, here, timestamp, written, info=written[0].value)
    if delete_at is not None:
        await expiring.enqueue(ctx, here.account, here.container, here.obj, delete_at)
    # the object's system metadata goes back, as Swift's object server answers a POST (a
    # middleware learns what it posted to, e.g. a symlink; the gatekeeper removes it)
    sysmeta = {k: v for k, v in written[0].value.metadata.items()
               if k.lower().startswith("x-object-sysmeta-")}
    return Response(202, {"Content-Type": "text/html; charset=UTF-8", **sysmeta})


async def _keep_content_type(ctx: ProxyContext, here: Located,
                             metadata: dict[str, str]) -> None:
    """A POST without Content-Type keeps the object's current one, also when an earlier
    POST set it (a POST's metadata replaces the previous POST's; Swift's object server
    carries the current Content-Type over into the new .meta the same way)."""
    try:
        info = await _newest_or_first(ctx, here, newest=False)
    except SwiftError:
        return  # no object (the POST answers 404) or no replica to ask
    metadata["Content-Type"] = info.content_type


async def delete(ctx: ProxyContext, req: Request) -> Response:
    here = await locate(ctx, req)
    if_delete_at = _if_delete_at(req)
    if if_delete_at is not None:
        await _check_delete_at(ctx, here, if_delete_at)
    timestamp = Timestamp.now()
    ring = here.policy.ring
    outcomes = await write_all(
        ctx, ring, here.part, lambda node, dev: node.delete_object(
            dev, here.part, here.account, here.container, here.obj, policy=here.policy.index,
            timestamp=timestamp),
        success=204, batch=lambda node, devices: node.delete_object_replicas(
            devices, here.part, here.account, here.container, here.obj,
            policy=here.policy.index, timestamp=timestamp, timeout=ctx.settings.node_timeout))
    statuses = [(204 if o.value else 404) if o.ok else o.status for o in outcomes]
    status = best_status(statuses, ring.replica_count)
    written = [o for o in outcomes if o.ok]
    if written:
        await update_containers(ctx, here, timestamp, written, deleted=True)
    if status // 100 != 2 and status != 404:
        raise error_for_status(status)
    if status == 404:
        raise HTTPNotFound()
    return Response(204, {"Content-Type": "text/html; charset=UTF-8"})


def _if_delete_at(req: Request) -> Timestamp | None:
    """``X-If-Delete-At`` (the expirer's guard): 400 unless it is a timestamp."""
    value = req.headers.get("x-if-delete-at")
    if value is None:
        return None
    try:
        return Timestamp(value)
    except ValueError as exc:
        raise HTTPBadRequest("Bad X-If-Delete-At header value") from exc


async def _check_delete_at(ctx: ProxyContext, here: Located, wanted: Timestamp) -> None:
    """Delete only the object that expires at ``wanted``: 404 when there is none, 412 when
    its X-Delete-At differs, as Swift's object server."""
    info = await _newest_or_first(ctx, here, newest=False)
    if Timestamp(info.delete_at or 0) != wanted:
        raise HTTPPreconditionFailed("X-If-Delete-At and X-Delete-At do not match")


# -- container updates -------------------------------------------------------------------------
async def update_containers(ctx: ProxyContext, here: Located, timestamp: Timestamp,
                            written: list[Outcome], *, info: ObjectInfo | None = None,
                            deleted: bool = False) -> None:
    """Report an object change to every container primary (never to a handoff: a handoff
    DB would hide the change from the primary until replication). A report that fails
    becomes an async pending on the device of an object replica that was written (round
    robin), which the updater replays once the primary is back, as Swift's object servers
    and object-updater do."""
    size, content_type, etag = 0, "", ""
    if not deleted and info is not None:
        size, content_type, etag = listing_values(info)
    update = ContainerUpdate(
        account=here.account, container=here.container, obj=here.obj, timestamp=timestamp,
        size=size, content_type=content_type, etag=etag, deleted=deleted,
        policy_index=here.policy.index)
    ring = ctx.container_ring
    part = ring.get_part(here.account, here.container)
    sources = [o.target for o in written if o.target is not None]
    jobs = [_update_one(ctx, part, update, target, sources[i % len(sources)] if sources
                        else None)
            for i, target in enumerate(ctx.nodes.primaries(ring, part))]
    await asyncio.gather(*jobs)
    ctx.dirty_containers.add((here.account, here.container))


def listing_values(info: ObjectInfo) -> tuple[int, str, str]:
    """(size, content type, etag) of the object's container listing entry: its own, unless
    system metadata overrides them (``X-Object-Sysmeta-Container-Update-Override-Size``,
    ``-Content-Type``, ``-Etag``: how a feature middleware shapes the listing of what it
    stores, as Swift's object server applies them to its container updates)."""
    size, content_type, etag = info.content_length, info.content_type, info.etag
    for name, value in info.metadata.items():
        key = name.lower()
        if not key.startswith(CONTAINER_UPDATE_OVERRIDE):
            continue
        field = key[len(CONTAINER_UPDATE_OVERRIDE):]
        if field == "etag":
            etag = value
        elif field == "content-type":
            content_type = value
        elif field == "size" and value.isdigit():
            size = int(value)
    return size, wsgi_to_str(content_type), etag


async def _update_one(ctx: ProxyContext, part: int, update: ContainerUpdate,
                      target: Target, source: Target | None) -> None:
    # a primary that just failed (error-limited: a dead or hung host) is not waited for
    # again: its update goes straight to an async pending
    if target.node is not None and not ctx.nodes.limited(target.device):
        outcome = await call(ctx, target, lambda node, dev: node.update_container_listing(
            dev, part, update.account, update.container, update.obj,
            timestamp=update.timestamp, size=update.size, content_type=update.content_type,
            etag=update.etag, deleted=update.deleted, policy_index=update.policy_index))
        if outcome.ok:
            return
    if source is not None and source.node is not None:
        await call(ctx, source, lambda node, dev: node.write_async_pending(
            dev, update.policy_index, update))
