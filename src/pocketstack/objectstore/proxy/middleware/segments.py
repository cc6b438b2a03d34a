"""The body of a large object, streamed from its segments (Swift's ``SegmentedIterable``).

Both large-object middlewares describe what to send as an async iterator of
:class:`SegmentRead` (a byte range of one segment object, or inline data) and hand it to
:class:`SegmentStream`, which fetches each segment with a sub-request
(``GET <segment>?multipart-manifest=get``, a ``Range`` when only part of it is needed, the
caller's identity) and passes its chunks on as they arrive: a segment is never held in
memory. A whole segment is checked against what the manifest says (etag, size) and against
itself (the MD5 and length of what was read).

Errors, as Swift: before the first byte went out (`SegmentStream.prime`), a missing or
changed segment is a 409 and a failing one a 503; after it, the response is cut short
(the client sees fewer bytes than Content-Length) and the reason is logged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import Headers

from pocketstack.objectstore.exceptions import (
    HTTPConflict,
    HTTPServiceUnavailable,
    SwiftError,
)
from pocketstack.objectstore.proxy.pipeline import Handler, body_chunks, release
from pocketstack.objectstore.proxy.ranges import normalize_etag
from pocketstack.objectstore.proxy.request import Request, Response

LOG = logging.getLogger(__name__)
# Request headers a large object's sub-requests carry on (authorization reads Referer).
FORWARDED_HEADERS = ("referer", "user-agent")


class SegmentError(Exception):
    """A segment (or a listing of them) is missing, changed or unreadable."""


@dataclass(frozen=True)
class SegmentRead:
    """One piece of a large object's body: bytes ``first``..``last`` (inclusive; None: to
    the end) of the object at ``path`` (``/v1/a/c/o``), or of inline ``data``. ``etag``
    and ``size`` describe the whole segment object, when the manifest knows them."""

    path: str | None = None
    first: int = 0
    last: int | None = None
    etag: str | None = None
    size: int | None = None
    data: bytes | None = None

    @property
    def whole(self) -> bool:
        """Is the entire segment object read?"""
        return self.first == 0 and (self.last is None or (
            self.size is not None and self.last == self.size - 1))

    @property
    def range_header(self) -> str | None:
        if self.whole:
            return None
        return f"bytes={self.first}-{'' if self.last is None else self.last}"


def forwarded(req: Request) -> dict[str, str]:
    """The request headers a sub-request made for ``req`` keeps."""
    return {name: req.headers[name] for name in FORWARDED_HEADERS if name in req.headers}


def response_length(response: Response) -> int | None:
    if response.content_length is not None:
        return response.content_length
    if isinstance(response.body, bytes | bytearray):
        return len(response.body)
    value = header(response.headers, "Content-Length")
    return int(value) if value is not None and value.isdigit() else None


async def call(next: Handler, sub: Request) -> Response:
    """A sub-request's response; an error the pipeline raised becomes a response (headers,
    no body), as Swift's ``get_response`` gives one."""
    try:
        return await next(sub)
    except SwiftError as exc:
        return Response(exc.status, dict(exc.headers), (exc.body or "").encode("utf-8"))


class SegmentStream:
    """The bytes of a large object (see the module docstring). ``length``: the bytes the
    response promised, when it promised a length (more or fewer is an error)."""

    def __init__(self, req: Request, next: Handler, reads: AsyncIterator[SegmentRead], *,
                 source: str, max_get_time: float, length: int | None = None) -> None:
        self.req = req
        self.next = next
        self.reads = reads
        self.source = source
        self.max_get_time = max_get_time
        self.length = length
        self._chunks = self._limited()
        self._peeked: bytes | None = None

    async def prime(self) -> None:
        """Read up to the first byte, so that a bad first segment still changes the status:
        409 for a missing or changed one (SegmentError), the failure of a failing one."""
        try:
            self._peeked = await anext(self._chunks)
        except StopAsyncIteration:
            self._peeked = None
        except SegmentError as exc:
            LOG.warning("%s %s: %s", self.source, self.req.path, exc)
            raise HTTPConflict() from exc

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        if self._peeked:
            chunk, self._peeked = self._peeked, None
            yield chunk
        try:
            async for chunk in self._chunks:
                yield chunk
        except SegmentError as exc:  # the head is out: all that is left is to cut it short
            LOG.warning("%s %s: %s", self.source, self.req.path, exc)
            raise HTTPConflict(str(exc)) from exc

    async def aclose(self) -> None:
        await self._chunks.aclose()
        closer = getattr(self.reads, "aclose", None)
        if closer is not None:
            await closer()

    async def _limited(self) -> AsyncGenerator[bytes, None]:
        """Every read's bytes, at most ``length`` of them and within ``max_get_time``."""
        started = time.monotonic()
        left = self.length
        async for read in self.reads:
            async for chunk in self._read(read):
                if left is not None:
                    if len(chunk) > left:
                        yield chunk[:left]
                        raise SegmentError(f"too many bytes for {self.req.path}")
                    left -= len(chunk)
                yield chunk
                if time.monotonic() - started > self.max_get_time:
                    raise SegmentError(f"max LO GET time of {self.max_get_time}s exceeded")
        if left:
            raise SegmentError(f"expected another {left} bytes for {self.req.path}")

    async def _read(self, read: SegmentRead) -> AsyncIterator[bytes]:
        if read.data is not None:
            stop = None if read.last is None else read.last + 1
            yield read.data[read.first:stop]
            return
        assert read.path is not None
        response = await self._fetch(read)
        check = read.whole
        digest, size = hashlib.md5(usedforsecurity=False), 0
        async for chunk in body_chunks(response):
            if check:
                digest.update(chunk)
                size += len(chunk)
            yield chunk
        etag = normalize_etag(header(response.headers, "ETag") or "")
        if check and (size != response_length(response) or (etag and
                                                           digest.hexdigest() != etag)):
            raise SegmentError(f"bad MD5 checksum or length of {read.path}")

    async def _fetch(self, read: SegmentRead) -> Response:
        headers = forwarded(self.req)
        if read.range_header is not None:
            headers["Range"] = read.range_header
        sub = self.req.subrequest("GET", read.path or "", headers=headers,
                                  query={"multipart-manifest": "get"}, source=self.source)
        response = await call(self.next, sub)
        if response.status // 100 != 2:
            await release(response)
            if response.status >= 500:
                raise HTTPServiceUnavailable()
            raise SegmentError(f"got {response.status} while retrieving {read.path}")
        etag = normalize_etag(header(response.headers, "ETag") or "")
        if (read.etag and etag != normalize_etag(read.etag)) or (
                read.size is not None and read.range_header is None
                and response_length(response) != read.size):
            await release(response)
            raise SegmentError(f"object segment no longer valid: {read.path}")
        return response


def status_line(status: int, title: str) -> str:
    """``404 Not Found``: a status as Swift's bodies spell it."""
    return f"{status} {title}"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by name, whatever its case."""
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def rewrite(req: Request, *, headers: Mapping[str, str] | None = None,
            drop: Iterable[str] = (), query: Mapping[str, str] | None = None) -> Request:
    """``req`` itself (same body, identity and state) with headers set or dropped and,
    when given, another query: how a middleware changes the request it passes on."""
    updates = dict(headers or {})
    gone = {name.lower() for name in (*drop, *updates)}
    wire = [(k, v) for k, v in req.scope.get("headers", [])
            if k.decode("latin-1").lower() not in gone]
    wire += [(k.lower().encode("latin-1"), _wire(v)) for k, v in updates.items()]
    scope = {**req.scope, "headers": wire}
    params = req.query
    if query is not None:
        params = dict(query)
        scope["query_string"] = urlencode(params).encode("ascii")
    return dataclasses.replace(req, scope=scope, headers=Headers(scope=scope), query=params)


def _wire(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")
