"""Dynamic large objects (Swift's ``dlo`` middleware).

A manifest is an ordinary object (usually empty) with ``X-Object-Manifest:
<container>/<prefix>``, set on PUT or POST. A GET or HEAD of it (unless
``?multipart-manifest=get``) answers for the concatenation of the objects of
``<container>`` whose names start with ``<prefix>``, in listing order, as they are *now*:

- the listing is read with the caller's identity (paged past 10000 names while reading);
- ETag: the quoted MD5 of the segments' ETags, and Content-Length their sum, when the first
  listing page is the whole listing (else the manifest's ETag and no length);
- one range is served across segments (206), a suffix range or one past the first page
  only with a complete listing; several ranges get the whole object (200), as Swift;
- conditional headers are decided against that ETag and the manifest's Last-Modified;
- a GET may run ``dlo_max_get_time`` seconds, then the body is cut short.

A PUT checks the header's form (400). A copy of a manifest copies the concatenation, or
with ``?multipart-manifest=get`` the manifest itself (``large_copy``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPRequestedRangeNotSatisfiable,
    SwiftError,
)
from pocketstack.objectstore.proxy import ranges as byte_ranges
from pocketstack.objectstore.proxy.middleware.large_copy import copy_large_object
from pocketstack.objectstore.proxy.middleware.segments import (
    SegmentError,
    SegmentRead,
    SegmentStream,
    forwarded,
    header,
)
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, read_body, release
from pocketstack.objectstore.proxy.request import Request, Response, wsgi_to_str

MAX_LISTING_BYTES = 64 * 1024 * 1024
MANIFEST_FORM = "X-Object-Manifest must be in the format container/prefix"
DROPPED = ("content-length", "content-range")


@dataclass(frozen=True)
class Segments:
    """Where a manifest's segments are, and the first page of their listing."""

    container: str
    prefix: str
    page: list[dict[str, Any]]
    complete: bool

    @property
    def size(self) -> int:
        return sum(int(entry["bytes"]) for entry in self.page)

    @property
    def etag(self) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for entry in self.page:
            digest.update(byte_ranges.normalize_etag(str(entry["hash"])).encode("utf-8"))
        return f'"{digest.hexdigest()}"'


class DynamicLargeObject(Middleware):
    name = "dlo"

    def info(self) -> dict[str, Any]:
        return {"max_get_time": self.ctx.settings.dlo_max_get_time}

    def applies(self, req: Request) -> bool:
        return req.obj is not None

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.obj is None:
            return await next(req)
        if req.method in ("GET", "HEAD") and req.query.get("multipart-manifest") != "get":
            return await self._get_or_head(req, next)
        if req.method == "PUT":
            check_manifest_header(req.headers)
        if req.method in ("COPY", "PUT"):
            copied = await copy_large_object(
                req, next, is_mine=lambda h: header(h, "X-Object-Manifest") is not None,
                serve=lambda sub: self.handle(sub, next),
                max_file_size=self.ctx.limits.max_file_size)
            if copied is not None:
                return copied
        return await next(req)

    async def _get_or_head(self, req: Request, next: Handler) -> Response:
        try:
            response = await next(req)
        except SwiftError as exc:  # a range past the manifest's own bytes
            manifest = header(exc.headers, "X-Object-Manifest")
            if exc.status != 416 or manifest is None:
                raise
            return await self._answer(req, next, dict(exc.headers), manifest)
        manifest = header(response.headers, "X-Object-Manifest")
        if manifest is None:
            return response
        await release(response)
        return await self._answer(req, next, response.headers, manifest)

    async def _answer(self, req: Request, next: Handler, stored: Mapping[str, str],
                      manifest: str) -> Response:
        container, _, prefix = manifest_location(manifest)
        page = await self._listing(req, next, container, prefix)
        segments = Segments(container, prefix, page,
                            len(page) < self.ctx.limits.container_listing_limit)
        headers = {k: v for k, v in stored.items() if k.lower() not in DROPPED}
        if segments.complete:
            headers = {k: v for k, v in headers.items() if k.lower() != "etag"}
            headers["ETag"] = segments.etag
        span = self._range(req, segments, headers)
        etag = header(headers, "ETag")
        stamp = header(headers, "X-Timestamp")
        status = byte_ranges.evaluate_conditions(req.method, req.headers, etag,
                                                 float(stamp) if stamp else None)
        if status is not None:
            headers.pop("Content-Range", None)
            return Response(status, headers)
        length = segments.size if segments.complete else None
        if span is not None:
            length = span[1] - span[0] + 1
        if req.method == "HEAD":
            return Response(200, headers, None, content_length=length)
        return await self._body(req, next, segments, span, headers, length)

    def _range(self, req: Request, segments: Segments, headers: dict[str, str]
               ) -> tuple[int, int] | None:
        """The one byte range (inclusive) to serve, as Swift's DLO decides it; sets
        ``Content-Range``; 416 when it cannot be satisfied."""
        specs = byte_ranges.parse_range_header(req.headers.get("range"))
        if req.method != "GET" or specs is None or len(specs) != 1:
            return None
        first, last = specs[0]
        end = math.inf if first is None or last is None else last + 1
        size = segments.size
        if not segments.complete and end >= size:
            return None  # it may or may not be satisfiable: serve the whole object
        try:
            spans = byte_ranges.parse_range(req.headers.get("range"), size)
        except byte_ranges.RangeNotSatisfiable as exc:
            extra = {"Content-Range": f"bytes */{size}"} if segments.complete else {}
            raise HTTPRequestedRangeNotSatisfiable(
                headers={"Accept-Ranges": "bytes", **extra}) from exc
        if not spans:
            return None
        start, stop = spans[0]
        headers["Content-Range"] = byte_ranges.content_range(start, stop, size)
        return start, stop - 1

    async def _body(self, req: Request, next: Handler, segments: Segments,
                    span: tuple[int, int] | None, headers: dict[str, str],
                    length: int | None) -> Response:
        first, last = span if span is not None else (0, None)
        reads = self._reads(req, next, segments, first, last)
        stream = SegmentStream(req, next, reads, source="DLO", length=length,
                               max_get_time=self.ctx.settings.dlo_max_get_time)
        await stream.prime()
        return Response(206 if span is not None else 200, headers, stream,
                        content_length=length, on_close=stream.aclose)

    async def _reads(self, req: Request, next: Handler, segments: Segments, first: int,
                     last: int | None) -> AsyncIterator[SegmentRead]:
        """The segments (and the part of each) that hold bytes ``first``..``last``, paging
        through the listing (Swift's ``_segment_listing_iterator``)."""
        remaining_last = math.inf if last is None else last
        page = segments.page
        base = f"/{req.version}/{req.account}/{segments.container}/"
        while True:
            for entry in page:
                size = int(entry["bytes"])
                if first >= size:
                    first, remaining_last = max(first - size, -1), max(remaining_last - size, -1)
                    continue
                if remaining_last < 0:
                    return
                yield SegmentRead(path=base + str(entry["name"]), first=max(first, 0),
                                  last=None if remaining_last >= size - 1
                                  else int(remaining_last))
                first, remaining_last = max(first - size, -1), max(remaining_last - size, -1)
            if len(page) < self.ctx.limits.container_listing_limit or remaining_last < 0:
                return
            try:
                page = await self._listing(req, next, segments.container, segments.prefix,
                                           marker=str(page[-1]["name"]))
            except SwiftError as exc:
                raise SegmentError(f"got {exc.status} listing {segments.container}") from exc

    async def _listing(self, req: Request, next: Handler, container: str, prefix: str,
                       marker: str = "") -> list[dict[str, Any]]:
        """One page of the segment container's listing, read as the caller (its failure,
        e.g. 403 or 404, is the answer)."""
        query = {"format": "json", "prefix": prefix}
        if marker:
            query["marker"] = marker
        sub = req.subrequest("GET", f"/{req.version}/{req.account}/{container}",
                             headers=forwarded(req), query=query, source="DLO")
        response = await next(sub)
        body = await read_body(response, MAX_LISTING_BYTES)
        entries = json.loads(body) if body else []
        return [e for e in entries if isinstance(e, dict) and "name" in e]


def manifest_location(value: str) -> tuple[str, str, str]:
    """``X-Object-Manifest`` (a wire string, maybe percent-encoded) as text, split into
    (container, "/", prefix)."""
    return wsgi_to_str(unquote(value, encoding="latin-1")).partition("/")


def check_manifest_header(headers: Mapping[str, str]) -> None:
    """400 unless ``X-Object-Manifest`` (when sent) is ``<container>/<prefix>``."""
    value = headers.get("x-object-manifest")
    if value is None:
        return
    container, sep, prefix = value.partition("/")
    if not sep or not container or not prefix or "?" in value or "&" in value or \
            prefix.startswith("/"):
        raise HTTPBadRequest(MANIFEST_FORM)
