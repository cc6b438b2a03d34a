"""The ``dlo`` middleware and the segment streaming it shares with ``slo``, against a small
in-memory stand-in for the rest of the pipeline (listing pages of 3 names)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPNotFound,
    HTTPRequestedRangeNotSatisfiable,
)
from pocketstack.objectstore.proxy import ranges as byte_ranges
from pocketstack.objectstore.proxy.middleware.dlo import (
    DynamicLargeObject,
    check_manifest_header,
    manifest_location,
)
from pocketstack.objectstore.proxy.middleware.segments import (
    SegmentRead,
    SegmentStream,
    rewrite,
)
from pocketstack.objectstore.proxy.pipeline import body_chunks
from pocketstack.objectstore.proxy.request import Request, Response

pytestmark = pytest.mark.anyio
PAGE = 3


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class FakeCore:
    """Objects in one account; container GETs list JSON pages of ``PAGE`` names."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.ghosts: dict[str, bytes] = {}  # listed, not stored
        self.listings = 0
        self.gets: list[tuple[str, str | None]] = []

    def put(self, path: str, data: bytes, **headers: str) -> None:
        self.objects[path] = (data, headers)

    async def __call__(self, req: Request) -> Response:
        if req.obj is None:
            return self._list(req)
        found = self.objects.get(req.path)
        if found is None:
            raise HTTPNotFound()
        data, extra = found
        headers = {"ETag": md5(data), "Content-Type": "application/octet-stream",
                   "X-Timestamp": "1700000000.00000", **extra}
        if req.method == "HEAD":
            return Response(200, headers, None, content_length=len(data))
        self.gets.append((req.path, req.headers.get("range")))
        try:
            spans = byte_ranges.parse_range(req.headers.get("range"), len(data))
        except byte_ranges.RangeNotSatisfiable as exc:  # as the core: 416 with the headers
            raise HTTPRequestedRangeNotSatisfiable(headers=headers) from exc
        if spans:
            start, stop = spans[0]
            return Response(206, headers, _chunks(data[start:stop]),
                            content_length=stop - start)
        return Response(200, headers, _chunks(data), content_length=len(data))

    def _list(self, req: Request) -> Response:
        self.listings += 1
        prefix = f"{req.path}/{req.query.get('prefix', '')}"
        marker = f"{req.path}/{req.query.get('marker', '')}"
        listed = {**{p: d for p, (d, _) in self.objects.items()}, **self.ghosts}
        names = sorted(p for p in listed if p.startswith(prefix) and p > marker)
        page = [{"name": p[len(req.path) + 1:], "bytes": len(listed[p]),
                 "hash": md5(listed[p])} for p in names[:PAGE]]
        return Response(200, {"Content-Type": "application/json"}, json.dumps(page).encode())


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 4):
        yield data[i:i + 4]


def request(path: str, method: str = "GET", **headers: str) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(k.lower().encode(), v.encode())
                                               for k, v in headers.items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request.from_scope(scope, receive)


def middleware() -> DynamicLargeObject:
    ctx = SimpleNamespace(settings=SimpleNamespace(dlo_max_get_time=86400),
                          limits=SimpleNamespace(container_listing_limit=PAGE,
                                                 max_file_size=5 * 2 ** 30))
    return DynamicLargeObject(ctx)


@pytest.fixture
def core() -> FakeCore:
    fake = FakeCore()
    for i in range(8):  # more than two pages of segments
        fake.put(f"/v1/a/segs/p/{i:02d}", bytes([65 + i]) * 5)
    fake.put("/v1/a/c/man", b"", **{"X-Object-Manifest": "segs/p/"})
    return fake


CONTENT = b"".join(bytes([65 + i]) * 5 for i in range(8))


async def read(response: Response) -> bytes:
    return b"".join([c async for c in body_chunks(response)])


async def test_pages_through_the_listing_past_its_limit(core: FakeCore) -> None:
    response = await middleware().handle(request("/v1/a/c/man"), core)
    assert response.status == 200
    assert response.content_length is None  # not all on the first page: no length, no ETag
    assert response.headers["ETag"] == md5(b"")
    assert await read(response) == CONTENT
    assert core.listings == 3


async def test_a_complete_listing_gives_etag_and_length() -> None:
    fake = FakeCore()
    for i in range(2):
        fake.put(f"/v1/a/c/s{i}", b"xy" * (i + 1))
    fake.put("/v1/a/c/m", b"", **{"X-Object-Manifest": "c/s"})
    response = await middleware().handle(request("/v1/a/c/m"), fake)
    assert response.content_length == 6
    assert response.headers["ETag"] == '"' + md5((md5(b"xy") + md5(b"xyxy")).encode()) + '"'
    assert await read(response) == b"xyxyxy"


async def test_a_range_within_the_first_page_reads_only_what_it_needs(core: FakeCore) -> None:
    response = await middleware().handle(request("/v1/a/c/man", Range="bytes=7-11"), core)
    assert response.status == 206
    assert response.headers["Content-Range"] == "bytes 7-11/15"  # Swift's first-page length
    assert await read(response) == CONTENT[7:12]
    assert core.gets[1:] == [("/v1/a/segs/p/01", "bytes=2-"), ("/v1/a/segs/p/02", "bytes=0-1")]


async def test_a_range_past_the_first_page_gets_everything(core: FakeCore) -> None:
    response = await middleware().handle(request("/v1/a/c/man", Range="bytes=30-"), core)
    assert response.status == 200 and await read(response) == CONTENT


async def test_a_missing_first_segment_is_409_before_any_byte(core: FakeCore) -> None:
    core.ghosts["/v1/a/segs/p/!"] = b"A" * 5  # listed, but gone
    with pytest.raises(HTTPConflict):
        await middleware().handle(request("/v1/a/c/man"), core)


async def test_a_changed_segment_cuts_the_body_short() -> None:
    fake = FakeCore()
    fake.put("/v1/a/c/s1", b"good")
    fake.put("/v1/a/c/s2", b"bad!", ETag="0" * 32)  # its bytes are not its ETag
    reads = _reads(SegmentRead(path="/v1/a/c/s1"), SegmentRead(path="/v1/a/c/s2"))
    stream = SegmentStream(request("/v1/a/c/m"), fake, reads, source="DLO",
                           max_get_time=10, length=8)
    await stream.prime()
    with pytest.raises(HTTPConflict):
        _ = [chunk async for chunk in stream]


async def test_inline_data_and_ranges_of_reads() -> None:
    fake = FakeCore()
    fake.put("/v1/a/c/s", b"0123456789")
    reads = _reads(SegmentRead(data=b"abc", first=1, last=1),
                   SegmentRead(path="/v1/a/c/s", first=2, last=4, size=10))
    stream = SegmentStream(request("/v1/a/c/m"), fake, reads, source="SLO",
                           max_get_time=10, length=4)
    await stream.prime()
    assert b"".join([c async for c in stream]) == b"b234"
    assert fake.gets == [("/v1/a/c/s", "bytes=2-4")]


async def test_too_many_bytes_for_the_promised_length() -> None:
    fake = FakeCore()
    fake.put("/v1/a/c/s", b"0123456789")
    stream = SegmentStream(request("/v1/a/c/m"), fake, _reads(SegmentRead(path="/v1/a/c/s")),
                           source="DLO", max_get_time=10, length=4)
    await stream.prime()
    with pytest.raises(HTTPConflict):
        _ = [c async for c in stream]


async def _reads(*reads: SegmentRead) -> AsyncIterator[SegmentRead]:
    for item in reads:
        yield item


@pytest.mark.parametrize("value", ["c", "c/", "/p", "c//p", "c/p?", "c/p&q", ""])
def test_bad_manifest_headers(value: str) -> None:
    with pytest.raises(HTTPBadRequest):
        check_manifest_header({"x-object-manifest": value})


def test_good_manifest_headers_and_their_decoding() -> None:
    check_manifest_header({"x-object-manifest": "c/p/"})
    check_manifest_header({})
    wire = "c%20d/\xe2\x98\x83%25ff"  # percent-encoded, and UTF-8 bytes seen as latin-1
    assert manifest_location(wire) == ("c d", "/", "\u2603%ff")


def test_rewrite_keeps_the_request_and_changes_headers() -> None:
    req = request("/v1/a/c/o", "POST", **{"Content-Type": "a/b", "X-Keep": "1"})
    req.state["k"] = "v"
    changed = rewrite(req, headers={"Content-Type": "c/d"}, drop=["x-keep"])
    assert changed.headers["content-type"] == "c/d" and "x-keep" not in changed.headers
    assert changed.state is req.state and changed.receive is req.receive
    assert rewrite(req, query={"a": "b"}).scope["query_string"] == b"a=b"
