"""GET and HEAD of a static large object (Swift's ``SloGetContext``).

The request goes on as the client sent it; a response that is not a manifest's
(``X-Static-Large-Object``) comes back untouched, so plain objects cost nothing more. For
a manifest:

- ``?multipart-manifest=get``: the stored manifest as JSON (``&format=raw``: as it was
  PUT, its own ETag and length);
- HEAD: the large object's ETag (quoted), size and ``X-Manifest-Etag`` from the system
  metadata the PUT stored, without reading the manifest (unless ``?part-number``);
- GET: the manifest is read (again, without Range and conditions, if the first answer was
  not the whole of it), conditions are decided against the large object's ETag, then the
  bytes asked for (all, one range, several as multipart/byteranges, or
  ``?part-number=N``: the Nth segment, 206 with ``X-Parts-Count``) stream from the
  segments. A segment that is itself an SLO is read through its own manifest (at most
  ``MAX_DEPTH`` deep), only for the part of it the range needs.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPInternalServerError,
    HTTPRequestedRangeNotSatisfiable,
    SwiftError,
)
from pocketstack.objectstore.proxy import ranges as byte_ranges
from pocketstack.objectstore.proxy.checks import true
from pocketstack.objectstore.proxy.middleware.segments import (
    SegmentError,
    SegmentRead,
    SegmentStream,
    call,
    forwarded,
    header,
)
from pocketstack.objectstore.proxy.middleware.slo_manifest import (
    SLO_ETAG,
    SLO_SIZE,
    Segment,
    load_segments,
    raw_manifest,
    slo_etag,
)
from pocketstack.objectstore.proxy.pipeline import Handler, read_body, release
from pocketstack.objectstore.proxy.request import Request, Response

if TYPE_CHECKING:
    from pocketstack.objectstore.proxy.middleware.slo import StaticLargeObject

MAX_DEPTH = 10
CACHED_SUBMANIFESTS = 20
PART_NOT_SATISFIABLE = b"The requested part number is not satisfiable"


def is_slo(headers: Mapping[str, str]) -> bool:
    return true(header(headers, "X-Static-Large-Object"))


@dataclass
class Manifest:
    """What a manifest response says about its large object."""

    headers: dict[str, str]
    manifest_etag: str
    etag: str
    size: int
    segments: list[Segment] | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Manifest:
        size = header(headers, SLO_SIZE)
        return cls(dict(headers), header(headers, "ETag") or "",
                   header(headers, SLO_ETAG) or "",
                   int(size) if size and size.isdigit() else -1)

    @property
    def legacy(self) -> bool:
        """Written without the size and ETag in system metadata."""
        return self.size < 0 or not self.etag

    def learn(self, segments: list[Segment]) -> None:
        self.segments = segments
        if self.legacy:
            self.size = sum(s.length for s in segments)
            self.etag = slo_etag(segments)


def part_number(req: Request) -> int | None:
    """``?part-number=N`` (1-based), as Swift's ``get_valid_part_num``."""
    value = req.query.get("part-number")
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise HTTPBadRequest("Part number must be an integer greater than 0")
    if req.headers.get("range"):
        raise HTTPBadRequest("Range requests are not supported with part number queries")
    return number


async def get_or_head(slo: StaticLargeObject, req: Request, next: Handler) -> Response:
    manifest_get = req.query.get("multipart-manifest") == "get"
    try:
        response = await next(req)
    except SwiftError as exc:  # a range past the manifest's own bytes: read it again
        if exc.status != 416 or manifest_get or not is_slo(exc.headers):
            raise
        response = Response(416, dict(exc.headers))
    if not is_slo(response.headers):
        return response
    if manifest_get:
        return await _manifest_response(slo, req, response)
    return await SloReader(slo, req, next).answer(response)


async def _manifest_response(slo: StaticLargeObject, req: Request, response: Response
                             ) -> Response:
    if req.query.get("format") != "raw":
        response.headers = {k: v for k, v in response.headers.items()
                            if k.lower() != "content-type"}
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        return response
    if req.method != "GET" or response.status != 200:
        return response
    body = raw_manifest(await read_body(response, slo.manifest_read_limit))
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("etag", "content-length")}
    headers["ETag"] = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return Response(200, headers, body)


class SloReader:
    """One GET or HEAD of a large object (see the module docstring)."""

    def __init__(self, slo: StaticLargeObject, req: Request, next: Handler) -> None:
        self.slo = slo
        self.req = req
        self.next = next
        self._submanifests: OrderedDict[str, list[Segment]] = OrderedDict()

    async def answer(self, response: Response) -> Response:
        req = self.req
        manifest = Manifest.from_headers(response.headers)
        try:
            part = part_number(req)
        except SwiftError:
            await release(response)
            raise
        if req.method == "GET" or part is not None or manifest.legacy:
            manifest = await self._read_manifest(response, manifest)
        else:
            await release(response)
        headers = {k: v for k, v in manifest.headers.items()
                   if k.lower() not in ("etag", "content-range", "content-length")}
        headers.update({"ETag": f'"{manifest.etag}"', "X-Manifest-Etag": manifest.manifest_etag})
        stamp = header(headers, "X-Timestamp")
        status = byte_ranges.evaluate_conditions(req.method, req.headers, manifest.etag,
                                                 float(stamp) if stamp else None)
        if status is not None:
            return Response(status, headers)
        if part is not None:
            return await self._part(manifest, part, headers)
        if req.method == "HEAD":
            return Response(200, headers, None, content_length=manifest.size)
        return await self._get(manifest, headers)

    async def _read_manifest(self, response: Response, manifest: Manifest) -> Manifest:
        """The manifest with its segments: from ``response`` when it holds the whole of
        it, else from a GET of its own."""
        if not (self.req.method == "GET" and response.status == 200):
            await release(response)
            sub = self.req.subrequest("GET", self.req.path, headers=forwarded(self.req),
                                      query=self._manifest_query(), source="SLO")
            response = await self.next(sub)
            if not is_slo(response.headers):  # replaced meanwhile
                await release(response)
                raise HTTPInternalServerError("Unable to load SLO manifest")
            manifest = Manifest.from_headers(response.headers)
        try:
            segments = load_segments(await read_body(response, self.slo.manifest_read_limit))
        except (ValueError, KeyError, TypeError) as exc:
            raise HTTPInternalServerError("Unable to load SLO manifest") from exc
        manifest.learn(segments)
        return manifest

    async def _part(self, manifest: Manifest, part: int, headers: dict[str, str]
                    ) -> Response:
        segments = manifest.segments or []
        headers["X-Parts-Count"] = str(len(segments))
        if part > len(segments):
            headers["Content-Range"] = f"bytes */{manifest.size}"
            body = b"" if self.req.method == "HEAD" else PART_NOT_SATISFIABLE
            return Response(416, headers, body)
        start = sum(s.length for s in segments[:part - 1])
        stop = start + segments[part - 1].length
        headers["Content-Range"] = byte_ranges.content_range(start, stop, manifest.size)
        if self.req.method == "HEAD":
            return Response(206, headers, None, content_length=stop - start)
        stream = await self._stream(segments, start, stop - 1)
        return Response(206, headers, stream, content_length=stop - start,
                        on_close=stream.aclose)

    async def _get(self, manifest: Manifest, headers: dict[str, str]) -> Response:
        segments = manifest.segments or []
        try:
            spans = byte_ranges.parse_range(self.req.headers.get("range"), manifest.size)
        except byte_ranges.RangeNotSatisfiable as exc:
            raise HTTPRequestedRangeNotSatisfiable(headers={
                **headers, "Content-Range": exc.content_range}) from exc
        if not spans:
            stream = await self._stream(segments, 0, manifest.size - 1)
            return Response(200, headers, stream, content_length=manifest.size,
                            on_close=stream.aclose)
        if len(spans) == 1:
            start, stop = spans[0]
            headers["Content-Range"] = byte_ranges.content_range(start, stop, manifest.size)
            stream = await self._stream(segments, start, stop - 1)
            return Response(206, headers, stream, content_length=stop - start,
                            on_close=stream.aclose)
        return await self._multipart(segments, spans, manifest.size, headers)

    async def _multipart(self, segments: list[Segment], spans: list[tuple[int, int]],
                         size: int, headers: dict[str, str]) -> Response:
        plan = byte_ranges.multipart_byteranges(spans, size, header(headers, "Content-Type")
                                                or "", byte_ranges.new_boundary())
        first = await self._stream(segments, spans[0][0], spans[0][1] - 1)
        pending = [first]

        async def read(start: int, stop: int) -> AsyncIterator[bytes]:
            stream = pending.pop() if pending else await self._stream(
                segments, start, stop - 1, prime=False)
            try:
                async for chunk in stream:
                    yield chunk
            finally:
                await stream.aclose()

        body = byte_ranges.stream_multipart(plan, read)

        async def close() -> None:
            closer = getattr(body, "aclose", None)
            if closer is not None:
                await closer()
            await first.aclose()

        headers["Content-Type"] = plan.content_type
        return Response(206, headers, body, content_length=plan.content_length,
                        on_close=close)

    async def _stream(self, segments: list[Segment], first: int, last: int, *,
                      prime: bool = True) -> SegmentStream:
        stream = SegmentStream(self.req, self.next, self._reads(segments, first, last),
                               source="SLO", length=max(last - first + 1, 0),
                               max_get_time=self.slo.ctx.settings.dlo_max_get_time)
        if prime:
            await stream.prime()
        return stream

    async def _reads(self, segments: list[Segment], first: int, last: int,
                     depth: int = 1) -> AsyncIterator[SegmentRead]:
        """The reads that make bytes ``first``..``last`` (inclusive) of ``segments``
        (Swift's ``_byterange_listing_iterator``)."""
        for segment in segments:
            length = segment.length
            if first >= length:
                first, last = first - length, last - length
                continue
            if last < 0:
                return
            if segment.data is not None:
                yield SegmentRead(data=segment.data, first=max(0, first),
                                  last=min(length - 1, last))
            else:
                start, end = segment.range or (0, length - 1)
                if segment.sub_slo:
                    async for read in self._sub_reads(segment, start + max(0, first),
                                                      min(end, start + last), depth):
                        yield read
                else:
                    yield SegmentRead(path=self._path(segment), first=start + max(0, first),
                                      last=min(end, start + last), etag=segment.hash,
                                      size=segment.size)
            first, last = first - length, last - length

    async def _sub_reads(self, segment: Segment, first: int, last: int, depth: int
                         ) -> AsyncIterator[SegmentRead]:
        if depth >= MAX_DEPTH:
            raise SegmentError(f"while processing manifest {self.req.path}, max recursion "
                               "depth was exceeded")
        async for read in self._reads(await self._submanifest(segment), first, last,
                                      depth + 1):
            yield read

    async def _submanifest(self, segment: Segment) -> list[Segment]:
        path = self._path(segment)
        if path in self._submanifests:
            self._submanifests.move_to_end(path)
            return self._submanifests[path]
        sub = self.req.subrequest("GET", path, headers=forwarded(self.req),
                                  query=self._manifest_query(), source="SLO")
        response = await call(self.next, sub)
        if response.status // 100 != 2:
            await release(response)
            raise SegmentError(f"GET of submanifest {path} failed with {response.status}")
        try:
            segments = load_segments(await read_body(response, self.slo.manifest_read_limit))
        except (ValueError, KeyError, TypeError) as exc:
            raise SegmentError(f"JSON-decoding of submanifest {path} failed") from exc
        self._submanifests[path] = segments
        if len(self._submanifests) > CACHED_SUBMANIFESTS:
            self._submanifests.popitem(last=False)
        return segments

    def _manifest_query(self) -> dict[str, str]:
        """A manifest read keeps the request's parameters (``version-id``...) but
        ``part-number``, as Swift's sub-requests do."""
        query = {k: v for k, v in self.req.query.items() if k != "part-number"}
        return {**query, "multipart-manifest": "get"}

    def _path(self, segment: Segment) -> str:
        return f"/{self.req.version}/{self.req.account}/{(segment.name or '').lstrip('/')}"

