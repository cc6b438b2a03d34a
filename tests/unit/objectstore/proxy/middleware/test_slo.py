"""The ``slo`` middleware: manifests (pure), and PUT/GET/DELETE against an in-memory
stand-in for the rest of the pipeline."""

from __future__ import annotations

import base64
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
    HTTPUnprocessableEntity,
)
from pocketstack.objectstore.proxy import ranges as byte_ranges
from pocketstack.objectstore.proxy.middleware.slo import (
    StaticLargeObject,
    _json_listing,
    _xml_listing,
    split_hash,
)
from pocketstack.objectstore.proxy.middleware.slo_manifest import (
    Segment,
    load_segments,
    parse_input,
    raw_manifest,
    report_body,
    resolve_range,
    slo_etag,
)
from pocketstack.objectstore.proxy.pipeline import body_chunks
from pocketstack.objectstore.proxy.request import Request, Response

pytestmark = pytest.mark.anyio


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- manifests ---------------------------------------------------------------------------------
def bad(body: Any) -> str:
    with pytest.raises(HTTPBadRequest) as caught:
        parse_input(json.dumps(body).encode(), "/v1/a/c/man", "/v1/a")
    return caught.value.body or ""


def test_input_errors_are_swifts_lines() -> None:
    assert bad([{"path": "/c/o", "etag": "e", "foo": 1, "baz": 2}]) == \
        'Index 0: extraneous keys "baz", "foo"\n'
    assert bad([{"path": "/c/o", "range": "bad"}, None]) == \
        "Index 0: invalid range\nIndex 1: not a JSON object\n"
    assert bad([{"path": "/c/o", "size_bytes": 100, "range": "8888-9999"}]) == \
        "Index 0: unsatisfiable range\n"
    assert bad([{"path": "/c/man"}]) == \
        "Index 0: manifest must not include itself as a segment\n"
    assert bad([{"path": "/c/o", "size_bytes": 0}, {"path": "/c/p"}]) == \
        "Index 0: too small; each segment must be at least 1 byte.\n"
    assert bad([{"path": 3}]) == 'Index 0: "path" must be a string\n'
    assert bad([{"path": "/c/o", "etag": 3}]) == \
        'Index 0: "etag" must be a string or null (if provided)\n'
    assert bad([{"data": ""}, {"path": "/c/o"}]) == \
        "Index 0: too small; each segment must be at least 1 byte.\n"


def test_input_accepts_optional_keys_and_inline_data() -> None:
    parsed = parse_input(json.dumps([
        {"path": "/c/o", "etag": None, "size_bytes": "12", "range": "-5"},
        {"data": base64.b64encode(b"hi").decode()},
        {"path": "c/last", "size_bytes": 0}]).encode(), "/v1/a/c/man", "/v1/a")
    assert parsed[0].size_bytes == 12 and parsed[0].range == (None, 5)
    assert parsed[1].data == b"hi"
    assert parsed[2].size_bytes == 0  # the last segment may be empty


@pytest.mark.parametrize("spec, length, span", [
    ((0, 9), 100, (0, 9)), ((None, 5), 100, (95, 99)), ((90, None), 100, (90, 99)),
    ((None, 500), 100, (0, 99)), ((100, None), 100, None), ((5, 500), 10, (5, 9)),
    ((0, 0), 0, None)])
def test_resolve_range(spec: tuple[int | None, int | None], length: int,
                       span: tuple[int, int] | None) -> None:
    assert resolve_range(spec, length) == span


def test_etag_of_segments_ranges_and_data() -> None:
    segments = [Segment(name="/c/a", size=5, hash="aa"),
                Segment(name="/c/b", size=9, hash="bb", range=(1, 3)),
                Segment(data=b"xyz")]
    assert slo_etag(segments) == md5(f"aabb:1-3;{md5(b'xyz')}".encode())
    assert [s.length for s in segments] == [5, 3, 3]


def test_stored_and_raw_forms() -> None:
    stored = json.dumps([
        {"name": "/c/a", "bytes": 5, "hash": "aa", "content_type": "t",
         "last_modified": "2024-01-01T00:00:00.000000", "range": "1-2"},
        {"name": "/c/sub", "bytes": 7, "hash": "bb", "content_type": "t;swift_bytes=70",
         "last_modified": "x", "sub_slo": True},
        {"data": base64.b64encode(b"d").decode()}]).encode()
    segments = load_segments(stored)
    assert segments[0].range == (1, 2) and segments[1].sub_slo and segments[1].size == 70
    assert segments[0].stored()["content_type"] == "t"
    assert json.loads(raw_manifest(stored)) == [
        {"path": "/c/a", "etag": "aa", "size_bytes": 5, "range": "1-2"},
        {"path": "/c/sub", "etag": "bb", "size_bytes": 7},
        {"data": base64.b64encode(b"d").decode()}]


def test_report_bodies() -> None:
    errors = [["/c/x", "404 Not Found"]]
    assert report_body("text/plain", {"B": 1, "A": "x"}, errors, "upload") == \
        b"A: x\nB: 1\nErrors:\n/c/x, 404 Not Found\n"
    assert json.loads(report_body("application/json", {"A": 1}, errors, "delete")) == \
        {"A": 1, "Errors": [["/c/x", "404 Not Found"]]}
    assert report_body("text/xml", {"Number Deleted": 2}, errors, "delete") == (
        b"<delete>\n<number_deleted>2</number_deleted>\n<errors>\n<object><name>/c/x"
        b"</name><status>404 Not Found</status></object>\n</errors>\n</delete>\n")


def test_listing_hash_parameters() -> None:
    assert split_hash("abc; slo_etag=def; x=y") == ("abc", {"slo_etag": "def", "x": "y"})
    body = json.dumps([{"name": "m", "hash": "abc; slo_etag=def"}, {"subdir": "d/"},
                       {"name": "o", "hash": "123"}]).encode()
    assert json.loads(_json_listing(body)) == [
        {"name": "m", "hash": "abc", "slo_etag": '"def"'}, {"subdir": "d/"},
        {"name": "o", "hash": "123"}]
    xml = (b"<container name=\"c\"><object><name>m</name><hash>abc; slo_etag=def</hash>"
           b"<bytes>1</bytes></object></container>")
    assert _xml_listing(xml) == (b"<container name=\"c\"><object><name>m</name><hash>abc"
                                 b"</hash><bytes>1</bytes><slo_etag>\"def\"</slo_etag>"
                                 b"</object></container>")


# -- flows -------------------------------------------------------------------------------------
class FakeCore:
    """Objects of one account: PUT stores the body with its headers, GET/HEAD/DELETE."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, req: Request) -> Response:
        self.requests.append((req.method, req.path))
        if req.method == "PUT":
            body = b"".join([c async for c in req.body()])
            headers = {k.title(): v for k, v in req.headers.items()
                       if k not in ("content-length", "etag")}
            self.objects[req.path] = (body, headers)
            return Response(201, {"ETag": md5(body), "Last-Modified": "now"})
        found = self.objects.get(req.path)
        if found is None:
            raise HTTPNotFound()
        if req.method == "DELETE":
            del self.objects[req.path]
            return Response(204)
        data, extra = found
        headers = {"ETag": md5(data), "X-Timestamp": "1700000000.00000",
                   "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT", **extra}
        headers["Content-Type"] = headers.get("Content-Type", "a/b").split(";")[0]
        if req.method == "HEAD":
            return Response(200, headers, None, content_length=len(data))
        spans = byte_ranges.parse_range(req.headers.get("range"), len(data))
        start, stop = spans[0] if spans else (0, len(data))
        return Response(206 if spans else 200, headers, _chunks(data[start:stop]),
                        content_length=stop - start)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 3):
        yield data[i:i + 3]


def request(path: str, method: str = "GET", body: bytes = b"", query: str = "",
            **headers: str) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "headers": raw}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        chunk, sent = (b"" if sent else body), True
        return {"type": "http.request", "body": chunk, "more_body": False}

    return Request.from_scope(scope, receive)


def middleware(**settings: Any) -> StaticLargeObject:
    values = {"slo_max_manifest_segments": 1000, "slo_max_manifest_size": 8 * 2 ** 20,
              "slo_min_segment_size": 1, "dlo_max_get_time": 86400, **settings}
    ctx = SimpleNamespace(settings=SimpleNamespace(**values),
                          limits=SimpleNamespace(max_file_size=5 * 2 ** 30))
    return StaticLargeObject(ctx)


async def read(response: Response) -> bytes:
    return b"".join([c async for c in body_chunks(response)])


async def put_slo(core: FakeCore, path: str, manifest: list[dict[str, Any]], **headers: str
                  ) -> Response:
    req = request(path, "PUT", json.dumps(manifest).encode(), "multipart-manifest=put",
                  **headers)
    return await middleware().handle(req, core)


@pytest.fixture
def core() -> FakeCore:
    fake = FakeCore()
    for name, data in (("a", b"aaaa"), ("b", b"bbbbbb")):
        fake.objects[f"/v1/a/c/{name}"] = (data, {})
    return fake


async def test_put_stores_the_manifest_with_its_system_metadata(core: FakeCore) -> None:
    response = await put_slo(core, "/v1/a/c/m", [{"path": "/c/a"}, {"path": "c/b"}])
    etag = md5((md5(b"aaaa") + md5(b"bbbbbb")).encode())
    assert response.status == 201 and response.headers["ETag"] == f'"{etag}"'
    body, headers = core.objects["/v1/a/c/m"]
    assert [s["name"] for s in json.loads(body)] == ["/c/a", "/c/b"]
    assert headers["X-Static-Large-Object"] == "True"
    assert headers["X-Object-Sysmeta-Slo-Etag"] == etag
    assert headers["X-Object-Sysmeta-Slo-Size"] == "10"
    assert headers["Content-Type"].endswith(";swift_bytes=10")
    assert headers["X-Object-Sysmeta-Container-Update-Override-Etag"] == \
        f"{md5(body)}; slo_etag={etag}"


async def test_put_reports_every_bad_segment(core: FakeCore) -> None:
    with pytest.raises(HTTPBadRequest) as caught:
        await put_slo(core, "/v1/a/c/m", [{"path": "/c/a", "size_bytes": 3},
                                          {"path": "/c/zzz"}, {"path": "/c/b", "etag": "x"},
                                          {"path": "/c/a", "range": "10-"}])
    assert caught.value.body == ("Errors:\n/c/a, Size Mismatch\n/c/zzz, 404 Not Found\n"
                                 "/c/b, Etag Mismatch\n/c/a, Unsatisfiable Range\n")
    assert "/v1/a/c/m" not in core.objects


async def test_min_segment_size_and_client_etag(core: FakeCore) -> None:
    req = request("/v1/a/c/m", "PUT", json.dumps([{"path": "/c/a"}, {"path": "/c/b"}])
                  .encode(), "multipart-manifest=put")
    with pytest.raises(HTTPBadRequest) as caught:
        await middleware(slo_min_segment_size=5).handle(req, core)
    assert "/c/a, Too small; each segment must be at least 5 bytes." in (caught.value.body
                                                                         or "")
    with pytest.raises(HTTPUnprocessableEntity):
        await put_slo(core, "/v1/a/c/m", [{"path": "/c/a"}], ETag="nope")


async def test_nested_manifests_read_only_what_a_range_needs(core: FakeCore) -> None:
    await put_slo(core, "/v1/a/c/inner", [{"path": "/c/a"}, {"path": "/c/b"}])
    await put_slo(core, "/v1/a/c/outer", [{"path": "/c/b", "range": "0-1"},
                                          {"path": "/c/inner"}])
    core.requests.clear()
    response = await middleware().handle(request("/v1/a/c/outer", Range="bytes=1-4"), core)
    assert response.status == 206 and await read(response) == b"baaa"
    assert ("GET", "/v1/a/c/inner") in core.requests
    assert ("GET", "/v1/a/c/b") in core.requests  # the first part of "b" only
    whole = await middleware().handle(request("/v1/a/c/outer"), core)
    assert await read(whole) == b"bbaaaabbbbbb"


async def test_nesting_is_limited(core: FakeCore) -> None:
    await put_slo(core, "/v1/a/c/n0", [{"path": "/c/a"}])
    for depth in range(1, 11):
        await put_slo(core, f"/v1/a/c/n{depth}", [{"path": f"/c/n{depth - 1}"}])
    assert await read(await middleware().handle(request("/v1/a/c/n9"), core)) == b"aaaa"
    with pytest.raises(HTTPConflict):
        await middleware().handle(request("/v1/a/c/n10"), core)


async def test_head_needs_no_manifest_read(core: FakeCore) -> None:
    await put_slo(core, "/v1/a/c/m", [{"path": "/c/a"}, {"path": "/c/b"}])
    core.requests.clear()
    response = await middleware().handle(request("/v1/a/c/m", "HEAD"), core)
    assert response.content_length == 10 and core.requests == [("HEAD", "/v1/a/c/m")]
    assert response.headers["X-Manifest-Etag"] == md5(core.objects["/v1/a/c/m"][0])


async def test_multipart_delete_deletes_segments_and_manifests(core: FakeCore) -> None:
    await put_slo(core, "/v1/a/c/inner", [{"path": "/c/a"}])
    await put_slo(core, "/v1/a/c/outer", [{"path": "/c/inner"}, {"path": "/c/b"}])
    core.requests.clear()
    response = await middleware().handle(request(
        "/v1/a/c/outer", "DELETE", query="multipart-manifest=delete",
        Accept="application/json"), core)
    report = json.loads(await read(response))
    assert report["Number Deleted"] == 4 and report["Errors"] == []
    deletes = [path for method, path in core.requests if method == "DELETE"]
    # Swift's order: breadth first, each manifest right after its own direct segments
    assert deletes == ["/v1/a/c/b", "/v1/a/c/outer", "/v1/a/c/a", "/v1/a/c/inner"]
    assert core.objects == {}
