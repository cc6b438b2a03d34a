"""FormPost: the streaming multipart reader (every way a body can be cut into chunks) and
the translation of a form into PUT sub-requests, against a fake core."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocketstack.config import ObjectStoreSettings
from pocketstack.objectstore.exceptions import HTTPNotFound, HTTPUnauthorized
from pocketstack.objectstore.proxy.context import InfoCache, ProxyContext
from pocketstack.objectstore.proxy.middleware.formpost import (
    FormPost,
    MimeInvalid,
    MultipartReader,
    parse_content_disposition,
)
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.types import AccountInfo, ContainerInfo
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
KEY = "secret"
BOUNDARY = "b0undary"


def test_parse_content_disposition() -> None:
    assert parse_content_disposition('form-data; name="f"; filename="a b.txt"') == \
        ("form-data", {"name": "f", "filename": "a b.txt"})
    assert parse_content_disposition("multipart/form-data; boundary=xyz") == \
        ("multipart/form-data", {"boundary": "xyz"})
    assert parse_content_disposition('form-data; filename=""') == \
        ("form-data", {"filename": ""})
    assert parse_content_disposition("text/plain") == ("text/plain", {})
    assert parse_content_disposition("a; ;;; junk") == ("a", {})


# -- the reader --------------------------------------------------------------------------------
def _body(parts: list[tuple[dict[str, str], bytes]], *, boundary: str = BOUNDARY,
          preamble: bytes = b"", close: bool = True) -> bytes:
    out = bytearray(preamble)
    for headers, data in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return bytes(out)


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def _parts(data: bytes, size: int, boundary: str = BOUNDARY
                 ) -> list[tuple[dict[str, str], bytes]]:
    reader = MultipartReader(_pieces(data, size), boundary.encode())
    await reader.start()
    found = []
    while (headers := await reader.next_part()) is not None:
        body = b"".join([chunk async for chunk in reader.chunks(5)])
        found.append(({k.lower(): v for k, v in headers.items()}, body))
    return found


PARTS = [({"content-disposition": 'form-data; name="a"'}, b"1"),
         ({"content-disposition": 'form-data; name="f"; filename="x"',
           "content-type": "text/plain"}, b"line\r\n--b0undar\r\nx--b0undary\r\n\n--b0undary\nend"),
         ({}, b""),
         ({"content-disposition": 'form-data; name="g"; filename="y"'}, b"\r\n\r\n")]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, 64, 4096])
async def test_reader_finds_the_same_parts_however_the_body_is_cut(size: int) -> None:
    assert await _parts(_body(PARTS, preamble=b"\r\n\r\n"), size) == PARTS


@settings(max_examples=60, deadline=None)
@given(datas=st.lists(st.binary(max_size=40), min_size=1, max_size=4),
       size=st.integers(min_value=1, max_value=50))
async def test_reader_round_trips_any_data(datas: list[bytes], size: int) -> None:
    parts = [({"content-disposition": f'form-data; name="p{i}"'}, data)
             for i, data in enumerate(datas)]
    assert await _parts(_body(parts), size) == parts


async def test_reader_without_closing_delimiter_ends_with_the_body() -> None:
    parts = await _parts(_body(PARTS[:1], close=False)[:-2], 3)
    assert parts == PARTS[:1]


@pytest.mark.parametrize("body", [b"", b"garbage", b"--other\r\n", b"\r\n--b0und"])
async def test_reader_wants_the_boundary_first(body: bytes) -> None:
    reader = MultipartReader(_pieces(body, 2), BOUNDARY.encode())
    with pytest.raises(MimeInvalid):
        await reader.start()


async def test_read_value_keeps_a_bounded_prefix() -> None:
    data = _body([({"content-disposition": 'form-data; name="a"'}, b"x" * 10000)])
    reader = MultipartReader(_pieces(data, 333), BOUNDARY.encode())
    await reader.start()
    await reader.next_part()
    assert await reader.read_value(4096) == b"x" * 4096
    assert await reader.next_part() is None


# -- the middleware ----------------------------------------------------------------------------
def _ctx(**settings: Any) -> ProxyContext:
    info = InfoCache(3600)
    ts = Timestamp(1)
    info.put(("a", "AUTH_a"), AccountInfo("AUTH_a", ts, ts, Timestamp(0), ts, False, 0, 0, 0,
                                          "id", False, {"X-Account-Meta-Temp-Url-Key": KEY}))
    info.put(("c", "AUTH_a", "c"), ContainerInfo(
        "AUTH_a", "c", ts, ts, Timestamp(0), ts, 0, 0, 0, ts, Timestamp(0), 0, 0, "id", False,
        {}))
    return cast(ProxyContext, SimpleNamespace(settings=ObjectStoreSettings(**settings),
                                              info=info))


def _fields(path: str, *, size: int = 100, count: int = 3, redirect: str = "",
            expires: int | None = None, digest: str = "sha1", **extra: str) -> dict[str, str]:
    expires = expires or int(time.time()) + 60
    body = f"{path}\n{redirect}\n{size}\n{count}\n{expires}".encode()
    values = {"max_file_size": str(size), "max_file_count": str(count),
              "expires": str(expires),
              "signature": hmac.new(KEY.encode(), body, getattr(hashlib, digest)).hexdigest()}
    if redirect:
        values["redirect"] = redirect
    return {**values, **extra}


def _form(fields: dict[str, str], files: list[tuple[str, bytes, str | None]]) -> bytes:
    parts = [({"Content-Disposition": f'form-data; name="{k}"'}, v.encode())
             for k, v in fields.items()]
    for name, data, ctype in files:
        headers = {"Content-Disposition": f'form-data; name="file"; filename="{name}"'}
        if ctype:
            headers["Content-Type"] = ctype
        parts.append((headers, data))
    return _body(parts)


def _request(path: str, body: bytes, *, size: int = 7) -> Request:
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "client": ("127.0.0.1", 1),
             "headers": [(b"content-type",
                          f"multipart/form-data; boundary={BOUNDARY}".encode()),
                         (b"user-agent", b"browser"), (b"x-auth-token", b"ignored")]}

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    return Request.from_scope(scope, receive)


class Store:
    """The rest of the pipeline: stores each PUT's body (as the object controller streams
    it), or fails as told."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.objects: dict[str, tuple[dict[str, str], bytes]] = {}
        self.fail = fail

    async def __call__(self, req: Request) -> Response:
        assert req.method == "PUT" and req.authorize is not None
        await req.authorize(req)
        if self.fail is not None:
            raise self.fail
        body = b"".join([chunk async for chunk in req.body()])
        self.objects[req.path] = (dict(req.headers), body)
        return Response(201, {"Access-Control-Expose-Headers": "etag", "ETag": "x"})


async def _post(path: str, fields: dict[str, str], files: list[tuple[str, bytes, str | None]],
                store: Store | None = None) -> tuple[Response, Store]:
    store = store or Store()
    response = await FormPost(_ctx()).handle(_request(path, _form(fields, files)), store)
    return response, store


async def test_files_become_puts_under_the_url() -> None:
    fields = _fields("/v1/AUTH_a/c/pre-", x_delete_after="60")
    response, store = await _post("/v1/AUTH_a/c/pre-", fields,
                                  [("a.txt", b"A" * 100, "text/plain"), ("b", b"", None)])
    assert (response.status, response.body) == (201, b"201 Created")
    assert response.headers == {"Access-Control-Expose-Headers": "etag",
                                "Content-Type": "text/plain"}
    assert set(store.objects) == {"/v1/AUTH_a/c/pre-a.txt", "/v1/AUTH_a/c/pre-b"}
    headers, body = store.objects["/v1/AUTH_a/c/pre-a.txt"]
    assert body == b"A" * 100
    assert headers["content-type"] == "text/plain" and headers["x-delete-after"] == "60"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["user-agent"] == "browser FormPost" and "x-auth-token" not in headers
    assert "content-type" not in store.objects["/v1/AUTH_a/c/pre-b"][0]


async def test_container_url_gets_a_slash() -> None:
    _, store = await _post("/v1/AUTH_a/c", _fields("/v1/AUTH_a/c"), [("x", b"1", None)])
    assert list(store.objects) == ["/v1/AUTH_a/c/x"]


async def test_the_form_type_wins_over_the_parts() -> None:
    fields = _fields("/v1/AUTH_a/c/", **{"content-type": "image/png",
                                          "content-encoding": "gzip"})
    _, store = await _post("/v1/AUTH_a/c/", fields, [("x", b"1", "text/plain")])
    headers = store.objects["/v1/AUTH_a/c/x"][0]
    assert headers["content-type"] == "image/png" and headers["content-encoding"] == "gzip"


async def test_line_breaks_cannot_smuggle_headers() -> None:
    fields = _fields("/v1/AUTH_a/c/", **{"content-encoding": "gzip\r\nX-Evil: 1"})
    body = _form(fields, [("x", b"1", "text/plain\r\n\tX-Evil: 2")])
    store = Store()
    await FormPost(_ctx()).handle(_request("/v1/AUTH_a/c/", body), store)
    headers = store.objects["/v1/AUTH_a/c/x"][0]
    assert headers["content-encoding"] == "gzip X-Evil: 1"
    assert "\n" not in headers["content-type"] and "x-evil" not in headers


async def test_uploads_are_authorized_within_the_account_only() -> None:
    response = await FormPost(_ctx()).handle(
        _request("/v1/AUTH_a/c/", _form(_fields("/v1/AUTH_a/c/"), [("x", b"1", None)])),
        Sneaky())
    assert response.status == 201


class Sneaky(Store):
    """A core whose feature sub-requests try another account."""

    async def __call__(self, req: Request) -> Response:
        assert req.authorize is not None
        await req.authorize(req)
        with pytest.raises(HTTPUnauthorized):
            await req.authorize(req.subrequest("GET", "/v1/AUTH_b/c/o"))
        return await super().__call__(req)


@pytest.mark.parametrize("digest", ["sha256", "sha512"])
async def test_longer_digests(digest: str) -> None:
    response, _ = await _post("/v1/AUTH_a/c/", _fields("/v1/AUTH_a/c/", digest=digest),
                              [("x", b"1", None)])
    assert response.status == 201


async def test_too_large_file_stops_the_put() -> None:
    response, store = await _post("/v1/AUTH_a/c/", _fields("/v1/AUTH_a/c/", size=10),
                                  [("x", b"0123456789", None), ("y", b"01234567890", None)])
    assert (response.status, response.body) == (400, b"FormPost: max_file_size exceeded")
    assert list(store.objects) == ["/v1/AUTH_a/c/x"]


async def test_signature_failures() -> None:
    path = "/v1/AUTH_a/c/"
    for fields, text in ((_fields(path, expires=int(time.time()) - 1), "Form Expired"),
                         ({**_fields(path), "signature": "x"}, "Invalid Signature"),
                         ({**_fields(path), "max_file_size": "101"}, "Invalid Signature"),
                         (_fields("/v1/AUTH_a/c/other"), "Invalid Signature")):
        with pytest.raises(HTTPUnauthorized) as caught:
            await _post(path, fields, [("x", b"1", None)])
        assert caught.value.body == f"FormPost: {text}"
    with pytest.raises(HTTPUnauthorized):  # no container in the path: no keys
        await _post("/v1/AUTH_a", _fields("/v1/AUTH_a"), [("x", b"1", None)])


async def test_redirects() -> None:
    fields = _fields("/v1/AUTH_a/c/", redirect="http://x/y?a=1", count=1)
    response, _ = await _post("/v1/AUTH_a/c/", fields, [("x", b"1", None), ("z", b"2", None)])
    assert response.status == 303
    assert response.headers["Location"] == \
        "http://x/y?a=1&status=400&message=max%20file%20count%20exceeded"
    fields = _fields("/v1/AUTH_a/c/", redirect="http://x/\r\nSet-Cookie: a")
    response, _ = await _post("/v1/AUTH_a/c/", fields, [("x", b"1", None)])
    assert response.headers["Location"] == \
        "http://x/%0D%0ASet-Cookie: a?status=201&message="


async def test_a_failed_put_passes_its_answer_back() -> None:
    response, _ = await _post("/v1/AUTH_a/c/", _fields("/v1/AUTH_a/c/"), [("x", b"1", None)],
                              Store(HTTPNotFound()))
    assert response.status == 404 and b"Not Found" in cast(bytes, response.body)


async def test_fields_after_a_file_do_not_apply_to_it() -> None:
    path = "/v1/AUTH_a/c/"
    body = _body([({"Content-Disposition": 'form-data; name="x"; filename="f"'}, b"1")] +
                 [({"Content-Disposition": f'form-data; name="{k}"'}, v.encode())
                  for k, v in _fields(path).items()])
    response = await FormPost(_ctx()).handle(_request(path, body), Store())
    assert response.body == b"400 Bad Request\r\nFormPost: Max File Count Exceeded"


async def test_not_a_form_passes_through() -> None:
    seen: list[Request] = []

    async def core(req: Request) -> Response:
        seen.append(req)
        return Response(204)

    for method, ctype in (("POST", "multipart/form-data"), ("POST", "text/plain"),
                          ("PUT", f"multipart/form-data; boundary={BOUNDARY}")):
        scope = {"type": "http", "method": method, "path": "/v1/AUTH_a/c",
                 "raw_path": b"/v1/AUTH_a/c", "query_string": b"",
                 "headers": [(b"content-type", ctype.encode())]}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await FormPost(_ctx()).handle(Request.from_scope(scope, receive), core)
    assert len(seen) == 3


def test_info() -> None:
    assert FormPost(_ctx()).info() == {"allowed_digests": ["sha1", "sha256", "sha512"],
                                       "deprecated_digests": ["sha1"]}
    assert FormPost(_ctx(tempurl_allowed_digests=["sha256"])).info() == {
        "allowed_digests": ["sha256"]}
