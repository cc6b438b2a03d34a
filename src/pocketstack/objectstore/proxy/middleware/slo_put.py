"""``PUT ?multipart-manifest=put``: checking a static large object's segments, then storing
its manifest (Swift's ``handle_multipart_put``).

The manifest is read whole (at most ``slo_max_manifest_size`` bytes, 413 past it) and
checked (`slo_manifest.parse_input`, 400); every distinct segment is HEADed as the caller
(through the middleware itself, so a nested SLO shows its own size and ETag); a segment
that is missing, forbidden, too small, of another size or ETag than the manifest says,
or whose range cannot be served is reported, all of them in one 400 (its body in the
``Accept``-ed format). Otherwise the stored manifest is written with a PUT sub-request:
``X-Static-Large-Object: True``, the large object's ETag and size in system metadata,
``;swift_bytes=<size>`` on its Content-Type and ``slo_etag`` on its container listing
ETag. A client ETag that is not the large object's is a 422.

With ``?heartbeat=on`` the answer is a 202 at once, then a space every
``YIELD_FREQUENCY`` seconds while the segments are checked, then the outcome as a report
body (``Response Status: 201 Created`` ...).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pocketstack.objectstore import constraints
from pocketstack.objectstore.exceptions import (
    EXPLANATIONS,
    HTTPBadRequest,
    HTTPLengthRequired,
    HTTPMethodNotAllowed,
    HTTPRequestEntityTooLarge,
    HTTPUnprocessableEntity,
    SwiftError,
)
from pocketstack.objectstore.proxy import listing
from pocketstack.objectstore.proxy import ranges as byte_ranges
from pocketstack.objectstore.proxy.checks import CONTENT_TYPE_OVERRIDDEN, true
from pocketstack.objectstore.proxy.middleware.segments import (
    call,
    forwarded,
    header,
    response_length,
)
from pocketstack.objectstore.proxy.middleware.slo_manifest import (
    OVERRIDE_ETAG,
    REPORT_FORMATS,
    SLO_ETAG,
    SLO_SIZE,
    InputSegment,
    Segment,
    parse_input,
    report_body,
    resolve_range,
    slo_etag,
)
from pocketstack.objectstore.proxy.pipeline import Handler, release
from pocketstack.objectstore.proxy.request import Request, Response

if TYPE_CHECKING:
    from pocketstack.objectstore.proxy.middleware.slo import StaticLargeObject

YIELD_FREQUENCY = 10
HEAD_CONCURRENCY = 2
SUCCESS_TITLES = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}
# What a status means in a report body (swob's reasons, title and explanation).
REASONS = {400: "Bad Request\nThe server could not comply with the request since it is "
                "either malformed or otherwise incorrect.",
           422: "Unprocessable Entity\nUnable to process the contained instructions"}
NOT_PASSED_ON = frozenset({"content-length", "transfer-encoding", "etag", "expect",
                           "x-static-large-object", "content-type"})


def status_line(status: int) -> str:
    title = SUCCESS_TITLES.get(status) or EXPLANATIONS.get(status, (str(status), ""))[0]
    return f"{status} {title}"


def report_media(req: Request) -> str:
    """The format of a report body, by ``Accept`` (text/plain when none fits)."""
    try:
        return listing.best_match(req.headers.get("accept"), REPORT_FORMATS) or "text/plain"
    except ValueError:
        return "text/plain"


@dataclass
class Outcome:
    """How a manifest PUT ended: the stored manifest's response, or why not."""

    status: int
    problems: list[list[str]] = field(default_factory=list)
    response: Response | None = None
    error: SwiftError | None = None


async def put_manifest(slo: StaticLargeObject, req: Request, next: Handler) -> Response:
    if req.headers.get("x-copy-from"):
        raise HTTPMethodNotAllowed("Multipart Manifest PUTs cannot be COPY requests")
    body = await _read_manifest(req, slo.ctx.settings.slo_max_manifest_size)
    inputs = parse_input(body, req.path, f"/{req.version}/{req.account}")
    limit = slo.ctx.settings.slo_max_manifest_segments
    if sum(1 for i in inputs if i.path is not None) > limit:
        raise HTTPRequestEntityTooLarge(f"Number of object-backed segments must be <= {limit}")
    media = report_media(req)
    work = _store(slo, req, next, inputs)
    if true(req.query.get("heartbeat")):
        return Response(202, {"Content-Type": media}, _heartbeat(work, media))
    outcome = await work
    if outcome.problems:
        raise HTTPBadRequest(report_body(media, {}, outcome.problems, "upload").decode(),
                             content_type=media)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.response is not None
    return outcome.response


async def _read_manifest(req: Request, limit: int) -> bytes:
    length = req.content_length
    if length is None and not req.is_chunked:
        raise HTTPLengthRequired()
    too_large = HTTPRequestEntityTooLarge(f"Manifest File > {limit} bytes")
    if length is not None and length > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in req.body():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _store(slo: StaticLargeObject, req: Request, next: Handler,
                 inputs: list[InputSegment]) -> Outcome:
    heads = await _head_all(slo, req, next, {i.path for i in inputs if i.path is not None})
    min_size = slo.ctx.settings.slo_min_segment_size
    problems: list[list[str]] = []
    segments: list[Segment] = []
    for item in inputs:
        if item.data is not None:
            segments.append(Segment(data=item.data))
            continue
        assert item.path is not None
        last = item.index == len(inputs) - 1
        segments.append(_validate(item, heads[item.path], problems,
                                  min_size=1 if last else max(1, min_size), last=last))
    if problems:
        return Outcome(400, problems=problems)
    etag = slo_etag(segments)
    client_etag = req.headers.get("etag")
    if client_etag and byte_ranges.normalize_etag(client_etag.strip()) != etag:
        return Outcome(422, error=HTTPUnprocessableEntity())
    try:
        response = await next(_manifest_put(req, segments, etag))
    except SwiftError as exc:
        return Outcome(exc.status, error=exc)
    if response.status // 100 == 2:
        response.headers = {k: v for k, v in response.headers.items() if k.lower() != "etag"}
        response.headers["ETag"] = f'"{etag}"'
    return Outcome(response.status, response=response)


async def _head_all(slo: StaticLargeObject, req: Request, next: Handler, paths: set[str]
                    ) -> dict[str, Response]:
    """Each segment's HEAD, as the caller, ``HEAD_CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(HEAD_CONCURRENCY)

    async def head(path: str) -> tuple[str, Response]:
        async with gate:
            try:
                sub = req.subrequest("HEAD", f"/{req.version}/{req.account}/"
                                     f"{path.lstrip('/')}", headers=forwarded(req),
                                     source="SLO")
            except SwiftError as exc:
                return path, Response(exc.status)
            response = await call(lambda r: slo.handle(r, next), sub)
            await release(response)
            return path, response

    return dict(await asyncio.gather(*(head(p) for p in sorted(paths))))


def _validate(item: InputSegment, head: Response, problems: list[list[str]], *,
              min_size: int, last: bool) -> Segment:
    """The stored form of one segment; its problems appended to ``problems``."""
    name = quote(item.path or "")
    if head.status // 100 != 2:
        problems.append([name, status_line(head.status)])
        return Segment()
    size = response_length(head) or 0
    etag = byte_ranges.normalize_etag(header(head.headers, "ETag") or "")
    span, length = None, size
    if item.range is not None:
        span = resolve_range(item.range, size)
        if span is None:
            problems.append([name, "Unsatisfiable Range"])
        elif span == (0, size - 1):
            span = None
        else:
            length = span[1] - span[0] + 1
    if length < min_size and not (last and length == 0):
        problems.append([name, f"Too small; each segment must be at least {min_size} "
                               f"byte{'s' if min_size > 1 else ''}."])
    if item.size_bytes is not None and item.size_bytes != size:
        problems.append([name, "Size Mismatch"])
    if item.etag is not None and item.etag != etag:
        problems.append([name, "Etag Mismatch"])
    extra = {"content_type": header(head.headers, "Content-Type") or "",
             "last_modified": _listing_time(header(head.headers, "Last-Modified"))}
    return Segment(name="/" + (item.path or "").lstrip("/"), size=size, hash=etag,
                   range=span, extra=extra,
                   sub_slo=true(header(head.headers, "X-Static-Large-Object")))


def _listing_time(last_modified: str | None) -> str:
    """A segment's Last-Modified as the manifest records it (ISO, microseconds)."""
    seconds = byte_ranges.parse_http_date(last_modified)
    moment = datetime.datetime.fromtimestamp(
        time.time() if seconds is None else seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _manifest_put(req: Request, segments: list[Segment], etag: str) -> Request:
    """The PUT sub-request that stores the manifest."""
    body = json.dumps([s.stored() for s in segments]).encode("utf-8")
    manifest_etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
    size = sum(s.length for s in segments)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in NOT_PASSED_ON}
    content_type = constraints.resolve_content_type(req.headers.items(), req.obj or "")
    headers.update({
        "Content-Type": f"{content_type};swift_bytes={size}",
        "X-Static-Large-Object": "True", "ETag": manifest_etag,
        SLO_ETAG: etag, SLO_SIZE: str(size),
        OVERRIDE_ETAG: f"{manifest_etag}; slo_etag={etag}"})
    sub = req.subrequest("PUT", req.path, headers=headers, body=body, source="SLO")
    sub.state[CONTENT_TYPE_OVERRIDDEN] = True
    return sub


async def _heartbeat(work: Awaitable[Outcome], media: str) -> AsyncIterator[bytes]:
    """A space now and every ``YIELD_FREQUENCY`` seconds until ``work`` is done, then its
    report (after a blank line)."""
    task = asyncio.ensure_future(work)
    try:
        yield b" "
        while not task.done():
            await asyncio.wait({task}, timeout=YIELD_FREQUENCY)
            if not task.done():
                yield b" "
        outcome = task.result()
    finally:
        if not task.done():
            task.cancel()
    yield b"\r\n\r\n" + report_body(media, await _report(outcome), outcome.problems,
                                    "upload")


async def _report(outcome: Outcome) -> dict[str, Any]:
    fields: dict[str, Any] = {"Response Status": status_line(outcome.status)}
    if outcome.problems or outcome.error is not None:
        error = outcome.error
        text = error.body if error is not None and error.body else ""
        fields["Response Body"] = text or REASONS.get(outcome.status) or \
            "\n".join(EXPLANATIONS.get(outcome.status, ("", "")))
        return fields
    response = outcome.response
    assert response is not None
    body = b""
    if isinstance(response.body, bytes):
        body = response.body
    await release(response)
    fields["Response Body"] = body.decode("utf-8", "replace")
    if response.status // 100 == 2:
        fields["Etag"] = header(response.headers, "ETag") or ""
        fields["Last Modified"] = header(response.headers, "Last-Modified") or ""
    return fields
