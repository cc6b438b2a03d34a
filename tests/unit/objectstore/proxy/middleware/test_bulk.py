"""Bulk operations against a fake core: the sub-requests they make, what they count and
report (Swift's body shapes), limits, heartbeats."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tarfile
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pocketstack.config import ObjectStoreSettings
from pocketstack.objectstore.constraints import Limits
from pocketstack.objectstore.exceptions import HTTPClientDisconnect, HTTPNotFound
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.bulk import (
    BulkDelete,
    BulkUpload,
    run_bulk,
    stream_result,
)
from pocketstack.objectstore.proxy.middleware.bulk_delete import decode_name
from pocketstack.objectstore.proxy.middleware.bulk_extract import member_path, xattr_headers
from pocketstack.objectstore.proxy.middleware.bulk_result import BulkResult, BulkStop, render
from pocketstack.objectstore.proxy.middleware.tarstream import ArchiveError
from pocketstack.objectstore.proxy.pipeline import body_chunks
from pocketstack.objectstore.proxy.request import Request, Response

pytestmark = pytest.mark.anyio
ACCOUNT = "AUTH_a"


def context(**settings: Any) -> ProxyContext:
    return cast(ProxyContext, SimpleNamespace(settings=ObjectStoreSettings(**settings),
                                              limits=Limits()))


def request(method: str, path: str, query: bytes, body: bytes, **headers: str) -> Request:
    raw = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    if b"content-length" not in {k for k, _ in raw}:
        raw.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query, "headers": raw}
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request.from_scope(scope, receive)


class Core:
    """Containers and objects in dicts; a status to force per path."""

    def __init__(self, containers: tuple[str, ...] = ()) -> None:
        self.containers: set[str] = set(containers)
        self.objects: dict[str, bytes] = {}
        self.forced: dict[str, int] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, req: Request) -> Response:
        self.seen.append((req.method, req.path, dict(req.headers)))
        if req.path in self.forced:
            return Response(self.forced[req.path])
        key = f"{req.container}/{req.obj}" if req.obj else req.container or ""
        if req.obj is None:
            return self.container(req, key)
        if req.method == "PUT":
            data = b"".join([c async for c in req.body()])
            if req.container not in self.containers:
                raise HTTPNotFound()
            self.objects[key] = data
            return Response(201)
        if key not in self.objects:
            raise HTTPNotFound()
        del self.objects[key]
        return Response(204)

    def container(self, req: Request, name: str) -> Response:
        if req.method == "PUT":
            self.containers.add(name)
            return Response(201)
        if name not in self.containers:
            return Response(404)
        if req.method == "DELETE":
            if any(k.startswith(name + "/") for k in self.objects):
                return Response(409)
            self.containers.discard(name)
            return Response(204)
        return Response(204)


async def answer(response: Response) -> str:
    return b"".join([chunk async for chunk in body_chunks(response)]).decode()


def tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def extract(core: Core, path: str, archive: bytes, **settings: Any) -> dict[str, Any]:
    req = request("PUT", path, b"extract-archive=tar", archive, accept="application/json",
                  x_auth_token="tok", x_object_meta_a="b")
    response = await BulkUpload(context(**settings)).handle(req, core)
    assert response.status == 200
    return dict(json.loads(await answer(response)))


async def delete(core: Core, body: bytes, **settings: Any) -> dict[str, Any]:
    req = request("POST", f"/v1/{ACCOUNT}", b"bulk-delete", body, accept="application/json",
                  content_type="text/plain", x_auth_token="tok")
    response = await BulkDelete(context(**settings)).handle(req, core)
    return dict(json.loads(await answer(response)))


# -- results -----------------------------------------------------------------------------------
def _result() -> BulkResult:
    result = BulkResult.for_delete()
    result.counts["Number Deleted"] = 2
    result.fail("/c/<o>", 409)
    return result


def test_results_render_as_swift_does() -> None:
    assert json.loads(render(_result(), "application/json")) == {
        "Response Status": "200 OK", "Response Body": "", "Number Deleted": 2,
        "Number Not Found": 0, "Errors": [["/c/<o>", "409 Conflict"]]}
    assert render(_result(), "application/xml").decode() == (
        "<delete>\n<number_deleted>2</number_deleted>\n<number_not_found>0</number_not_found>\n"
        "<response_body></response_body>\n<response_status>200 OK</response_status>\n"
        "<errors>\n<object><name>/c/&lt;o&gt;</name><status>409 Conflict</status></object>\n"
        "</errors>\n</delete>\n")
    assert render(_result(), None).decode() == (
        "Number Deleted: 2\nNumber Not Found: 0\nResponse Body: \nResponse Status: 200 OK\n"
        "Errors:\n/c/<o>, 409 Conflict\n")


def test_final_status() -> None:
    result = BulkResult.for_extract()
    result.finish(empty=True, empty_body="nothing")
    assert (result.status, result.body) == ("400 Bad Request", "nothing")
    result = BulkResult.for_extract()
    result.fail("x", 503)
    result.fail("y", 403)
    result.finish(empty=False, empty_body="")
    assert result.status == "502 Bad Gateway"


@pytest.mark.parametrize(("error", "status", "body"), [
    (BulkStop(413, "too many"), "413 Request Entity Too Large", "too many"),
    (ArchiveError("bad checksum"), "400 Bad Request", "Invalid Tar File: bad checksum"),
    (HTTPClientDisconnect(), "499 Client Disconnect", ""),
    (RuntimeError("bug"), "500 Internal Error", ""),
])
async def test_what_ends_a_bulk_request(error: Exception, status: str, body: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    async def work() -> None:
        raise error

    result = BulkResult.for_extract()
    with caplog.at_level(logging.ERROR):
        await run_bulk(work, result)
    assert (result.status, result.body) == (status, body)
    assert bool(caplog.records) == isinstance(error, RuntimeError)


@pytest.mark.parametrize(("media_type", "first"), [("application/json", b" "),
                                                   ("text/xml", b"<?xml")])
async def test_heartbeats_while_working(media_type: str, first: bytes) -> None:
    async def work() -> None:
        await asyncio.sleep(0.2)

    result = BulkResult.for_extract()
    task = asyncio.create_task(run_bulk(work, result))
    pieces = [piece async for piece in stream_result(task, result, media_type, 0.05)]
    assert len(pieces) >= 3 and pieces[0].startswith(first)
    assert all(p == b" " for p in pieces[1:-1])
    assert pieces[-1].startswith(b"\r\n\r\n")


# -- extract-archive ---------------------------------------------------------------------------
def test_member_paths() -> None:
    assert member_path("./c/o", "") == "c/o"
    assert member_path("///etc/passwd", "") == "etc/passwd"
    assert member_path("../x/y", "") == "../x/y"
    assert member_path("top", "") is None
    assert member_path("top", "c/pre") == "c/pre/top"
    assert member_path("/abs", "c") == "c/abs"


def test_xattr_headers() -> None:
    pax = {"SCHILY.xattr.user.mime_type": "text/x", "LIBARCHIVE.xattr.user.meta.k": "\u2713",
           "SCHILY.xattr.user.meta.bad name": "v", "SCHILY.xattr.user.meta.crlf": "a\r\nb",
           "SCHILY.xattr.security.selinux": "x", "mtime": "1"}
    assert xattr_headers(pax) == {"Content-Type": "text/x",
                                  "X-Object-Meta-k": "\u2713".encode().decode("latin-1")}


async def test_extract_creates_containers_then_objects() -> None:
    core = Core(("c1",))
    result = await extract(core, f"/v1/{ACCOUNT}", tar({"c1/a": b"1", "c2/b/c": b"22",
                                                         "c2/d": b"", "top": b"x"}))
    assert result == {"Response Status": "201 Created", "Response Body": "",
                      "Number Files Created": 3, "Errors": []}
    assert core.objects == {"c1/a": b"1", "c2/b/c": b"22", "c2/d": b""}
    assert [(m, p) for m, p, _ in core.seen] == [
        ("HEAD", f"/v1/{ACCOUNT}/c1"), ("PUT", f"/v1/{ACCOUNT}/c1/a"),
        ("HEAD", f"/v1/{ACCOUNT}/c2"), ("PUT", f"/v1/{ACCOUNT}/c2"),
        ("PUT", f"/v1/{ACCOUNT}/c2/b/c"), ("PUT", f"/v1/{ACCOUNT}/c2/d")]
    put_headers = core.seen[1][2]
    assert put_headers["x-auth-token"] == "tok" and put_headers["x-object-meta-a"] == "b"
    assert put_headers["content-length"] == "1"


async def test_extract_limits_and_failures() -> None:
    result = await extract(Core(), f"/v1/{ACCOUNT}", tar({"a/1": b"", "b/1": b"", "c/1": b""}),
                           bulk_max_containers_per_extraction=2)
    assert (result["Response Status"], result["Response Body"]) == (
        "400 Bad Request", "More than 2 containers to create from tar.")
    core = Core(("c",))
    core.forced = {f"/v1/{ACCOUNT}/c/{i}": 503 for i in range(5)}
    result = await extract(core, f"/v1/{ACCOUNT}/c", tar({str(i): b"x" for i in range(5)}),
                           bulk_max_failed_extractions=3)
    assert result["Response Status"] == "502 Bad Gateway"
    assert result["Errors"] == [[f"c/{i}", "503 Service Unavailable"] for i in range(3)]


async def test_unauthorized_ends_the_extraction() -> None:
    core = Core()
    core.forced = {f"/v1/{ACCOUNT}/c": 401}
    result = await extract(core, f"/v1/{ACCOUNT}/c", tar({"a": b"1", "b": b"2"}))
    assert result["Response Status"] == "401 Unauthorized"
    assert [m for m, _, _ in core.seen] == ["HEAD"]


async def test_truncated_member_stops_with_the_archive_error() -> None:
    core = Core(("c",))
    result = await extract(core, f"/v1/{ACCOUNT}/c", tar({"a": b"1", "b": b"2" * 5000})[:3000])
    assert result["Response Body"] == "Invalid Tar File: unexpected end of data"
    assert result["Number Files Created"] == 1 and list(core.objects) == ["c/a"]


async def test_unsupported_format_is_an_immediate_400() -> None:
    req = request("PUT", f"/v1/{ACCOUNT}/c", b"extract-archive=zip", b"")
    with pytest.raises(Exception, match="Unsupported archive format"):
        await BulkUpload(context()).handle(req, Core())


# -- bulk-delete -------------------------------------------------------------------------------
def test_names_are_percent_decoded() -> None:
    assert decode_name(b"  /c/caf%C3%A9%20x \r") == "/c/caf\u00e9 x"
    assert decode_name(b"/c/%FF") == "/c/\udcff"


async def test_objects_go_before_containers() -> None:
    core = Core(("c",))
    core.objects = {"c/a": b"", "c/b/c": b""}
    result = await delete(core, b"/c\n/c/a\nc/b/c\n/c/missing\n\n")
    assert result == {"Response Status": "200 OK", "Response Body": "", "Number Deleted": 3,
                      "Number Not Found": 1, "Errors": []}
    assert [p for _, p, _ in core.seen][-1] == f"/v1/{ACCOUNT}/c"


async def test_delete_failures() -> None:
    core = Core(("c",))
    core.objects = {"c/a": b""}
    result = await delete(core, b"/c\n/c/%FF\n")
    assert result["Response Status"] == "400 Bad Request"
    assert sorted(result["Errors"]) == [["/c", "409 Conflict"],
                                        ["/c/%FF", "412 Precondition Failed"]]
    core.forced = {f"/v1/{ACCOUNT}/c/{i}": 500 for i in range(4)}
    result = await delete(core, b"\n".join(b"/c/%d" % i for i in range(4)),
                          bulk_max_failed_deletes=2)
    assert (result["Response Status"], result["Response Body"]) == (
        "400 Bad Request", "Max delete failures exceeded")
    assert len(result["Errors"]) == 2


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"", "400 Bad Request", "Invalid bulk delete."),
    (b"/c/1\n/c/2\n/c/3\n/c/4", "413 Request Entity Too Large",
     "Maximum Bulk Deletes: 3 per request"),
    (b"/c/" + b"x" * 3000, "400 Bad Request", "Invalid File Name"),
])
async def test_delete_refusals(body: bytes, status: str, message: str) -> None:
    result = await delete(Core(), body, bulk_max_deletes_per_request=3)
    assert (result["Response Status"], result["Response Body"]) == (status, message)


async def test_delete_wants_plain_text_and_a_length() -> None:
    req = request("POST", f"/v1/{ACCOUNT}", b"bulk-delete", b"/c/o",
                  content_type="application/json")
    text = await answer(await BulkDelete(context()).handle(req, Core()))
    assert "Response Status: 406 Not Acceptable" in text
    req = request("DELETE", f"/v1/{ACCOUNT}", b"bulk-delete", b"", content_length="")
    req.scope["headers"] = [(k, v) for k, v in req.scope["headers"] if k != b"content-length"]
    req = Request.from_scope(req.scope, req.receive)
    text = await answer(await BulkDelete(context()).handle(req, Core()))
    assert "Response Status: 411 Length Required" in text


async def test_other_requests_pass_through() -> None:
    core = Core(("c",))
    for middleware in (BulkUpload(context()), BulkDelete(context())):
        req = request("GET", f"/v1/{ACCOUNT}/c", b"bulk-delete&extract-archive=tar", b"")
        assert (await middleware.handle(req, core)).status == 204

