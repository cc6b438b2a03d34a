"""Hostile and malformed requests: Swift's 4xx, never a 500, never a file outside the
devices, never a traceback in the server log (checked after every test by conftest)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Swift, raw_request, stray_files, uniq

MAX_FILE_SIZE = 5 * 1024 * 1024 * 1024 + 2


@pytest.fixture
def raw(cloud: RunningCloud, swift: Swift, container: str
        ) -> Iterator[tuple[str, dict[str, str]]]:
    """(``/v1/<account>/<container>`` prefix, auth headers) for hand-written requests."""
    yield f"/v1/{swift.account}/{container}", {"X-Auth-Token": swift.token or ""}
    assert stray_files(cloud.data_dir) == []


def send(cloud: RunningCloud, method: str, target: str, headers: dict[str, str],
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    return raw_request(cloud.objectstore_url, method, target, headers, body)


# -- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["..", ".", "../../../../../../tmp/{m}", "a/../../{m}",
                                  "./{m}", "/{m}", "{m}/", "a//b/{m}", "%2E%2E/%2E%2E/{m}",
                                  "..%2F..%2F{m}", "%5C..%5C{m}"])
def test_dot_dot_and_slashes_are_just_names(cloud: RunningCloud, swift: Swift,
                                            raw: tuple[str, dict[str, str]], name: str) -> None:
    prefix, auth = raw
    marker = f"escape-{uuid.uuid4().hex}"
    target = f"{prefix}/{name.format(m=marker)}"
    status, headers, _ = send(cloud, "PUT", target, {**auth, "Content-Length": "4"}, b"data")
    assert status == 201
    status, _, body = send(cloud, "GET", target, auth)
    assert (status, body) == (200, b"data")
    listed = swift.names(prefix.rsplit("/", 1)[1])
    assert len(listed) == 1
    base = cloud.data_dir.parent
    assert not [p for p in base.rglob(f"*{marker}*")]
    assert not Path("/tmp", marker).exists()
    status, _, _ = send(cloud, "DELETE", target, auth)
    assert status == 204


def test_dot_dot_containers_and_accounts(cloud: RunningCloud, swift: Swift) -> None:
    auth = {"X-Auth-Token": swift.token or ""}
    for container in ("..", "."):
        target = f"/v1/{swift.account}/{container}"
        status, _, _ = send(cloud, "PUT", target, auth)
        assert status in (201, 202)
        assert send(cloud, "PUT", f"{target}/o", {**auth, "Content-Length": "1"}, b"x")[0] == 201
        assert send(cloud, "GET", f"{target}/o", auth)[2] == b"x"
        assert send(cloud, "DELETE", f"{target}/o", auth)[0] == 204
        assert send(cloud, "DELETE", target, auth)[0] == 204
    assert send(cloud, "GET", "/v1/../../etc/passwd", auth)[0] in (401, 403)
    assert send(cloud, "GET", f"/v1/{swift.account}/../{swift.account}", auth)[0] == 404
    assert stray_files(cloud.data_dir) == []


def test_nul_and_invalid_utf8_are_412(cloud: RunningCloud,
                                      raw: tuple[str, dict[str, str]]) -> None:
    prefix, auth = raw
    account = prefix.rsplit("/", 1)[0]
    for target in (f"{prefix}/a%00b", f"{prefix}/%FF%FE", f"{prefix}/ok%C3",
                   f"{account}/bad%FFcontainer", f"{account}/nul%00", "/v1/AUTH_%FF"):
        for method in ("PUT", "GET", "HEAD", "DELETE", "POST"):
            status, headers, body = send(cloud, method, target,
                                         {**auth, "Content-Length": "0"}, b"")
            assert status == 412, (method, target, status, body)
            if method != "HEAD":
                assert body == b"Invalid UTF8 or contains NULL"
            assert headers["x-trans-id"] == headers["x-openstack-request-id"]


def test_name_lengths(swift: Swift, container: str) -> None:
    assert swift.request("PUT", f"{container}/{'o' * 1024}", content=b"x").status_code == 201
    too_long = swift.request("PUT", f"{container}/{'o' * 1025}", content=b"x")
    assert too_long.status_code == 400
    assert too_long.text == "Object name length of 1025 longer than 1024"
    multibyte = swift.request("PUT", f"{container}/{'é' * 513}", content=b"x")
    assert multibyte.status_code == 400  # 1026 bytes of UTF-8
    assert swift.request("GET", f"{container}/{'o' * 2000}").status_code == 404
    assert swift.request("PUT", "c" * 256).status_code == 201
    assert swift.request("PUT", "c" * 257).status_code == 400
    assert swift.request("DELETE", "c" * 256).status_code == 204
    long_account = Swift(swift.base_url, "AUTH_" + "a" * 300, swift.token)
    assert long_account.request("HEAD").status_code == 400
    assert long_account.request("GET", "c").status_code == 400


def test_copy_to_overlong_name(swift: Swift, container: str) -> None:
    swift.put(f"{container}/src", b"x")
    response = swift.request("COPY", f"{container}/src",
                             headers={"Destination": f"{container}/{'d' * 1025}"})
    assert response.status_code == 400
    response = swift.request("PUT", f"{container}/{'d' * 1025}",
                             headers={"X-Copy-From": f"{container}/src"})
    assert response.status_code == 400


def test_bad_paths(cloud: RunningCloud, swift: Swift) -> None:
    auth = {"X-Auth-Token": swift.token or ""}
    assert send(cloud, "GET", "/v1", auth)[:3:2] == (412, b"Bad URL")
    assert send(cloud, "GET", "/nothing", auth)[0] == 412
    assert send(cloud, "GET", f"/v2/{swift.account}", auth)[0] == 400
    assert send(cloud, "GET", f"/v1/{swift.account}//obj", auth)[0] == 404  # as Swift
    assert send(cloud, "PATCH", f"/v1/{swift.account}/c/o", auth)[0] == 405


# -- ranges ------------------------------------------------------------------------------------
def test_bad_ranges(swift: Swift, container: str) -> None:
    data = os.urandom(1000)
    swift.put(f"{container}/o", data)
    for header in ("bytes=1000-", "bytes=5000-6000", "bytes=-0",
                   ",".join(f"bytes={i}-{i}" for i in range(60)).replace(",bytes=", ",")):
        response = swift.get(f"{container}/o", Range=header)
        assert response.status_code == 416, header
        assert response.headers["content-range"] == "bytes */1000"
    for header in ("bytes=9-1", "bytes=a-b", "bytes=", "pages=1-2", "bytes=1-2,x",
                   "bytes=1--2", "bytes"):
        response = swift.get(f"{container}/o", Range=header)
        assert response.status_code == 200, header
        assert response.content == data
    swift.put(f"{container}/empty", b"")
    assert swift.get(f"{container}/empty", Range="bytes=-5").status_code == 200
    assert swift.get(f"{container}/empty", Range="bytes=0-5").status_code == 416


# -- metadata ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["account", "container", "object"])
def test_metadata_limits(swift: Swift, container: str, kind: str) -> None:
    path = {"account": "", "container": container, "object": f"{container}/o"}[kind]
    if kind == "object":
        swift.put(path, b"x")
    prefix = f"X-{kind.title()}-Meta-"
    cases = {
        "count": {f"{prefix}K{i}": "v" for i in range(91)},
        "name": {prefix + "n" * 129: "v"},
        "value": {prefix + "Big": "v" * 257},
        "total": {f"{prefix}K{i:02d}": "v" * 250 for i in range(20)},
    }
    for case, headers in cases.items():
        response = swift.request("POST", path, headers=headers)
        assert response.status_code == 400, (case, response.text)
    if kind == "object":
        put = swift.request("PUT", f"{container}/o2", content=b"x", headers=cases["count"])
        assert put.status_code == 400
    else:
        put = swift.request("PUT", container, headers=cases["value"])
        assert put.status_code == 400 if kind == "container" else 405
    ok = {f"{prefix}K{i}": "v" for i in range(90)}
    assert swift.request("POST", path, headers=ok).status_code in (202, 204)
    cleared = {f"X-Remove-{kind.title()}-Meta-K{i}": "x" for i in range(90)}
    assert swift.request("POST", path, headers=cleared).status_code in (202, 204)


def test_metadata_not_utf8(swift: Swift, container: str) -> None:
    response = swift.request("POST", container, headers={"X-Container-Meta-Bad": b"\xff\xfe"})
    assert response.status_code == 400
    assert response.text == "Metadata must be valid UTF-8"
    empty_name = swift.request("POST", container, headers={"X-Container-Meta-": "v"})
    assert empty_name.status_code == 400
    assert empty_name.text == "Metadata name cannot be empty"
    header_too_long = swift.request("POST", container,
                                    headers={"X-Container-Meta-A": "v" * 8193})
    assert header_too_long.status_code == 400


# -- bodies and expiry -------------------------------------------------------------------------
def test_delete_at_validation(swift: Swift, container: str) -> None:
    for headers, text in (({"X-Delete-At": "soon"}, "Non-integer X-Delete-At"),
                          ({"X-Delete-At": "1"}, "X-Delete-At in past"),
                          ({"X-Delete-After": "abc"}, "Non-integer X-Delete-After"),
                          ({"X-Delete-After": "-5"}, "X-Delete-After in past"),
                          ({"X-Delete-After": "0"}, "X-Delete-After in past")):
        response = swift.request("PUT", f"{container}/o", content=b"x", headers=headers)
        assert (response.status_code, response.text) == (400, text)
    swift.put(f"{container}/o", b"x")
    response = swift.request("POST", f"{container}/o", headers={"X-Delete-At": "1.5e9"})
    assert response.status_code == 400


def test_length_required_and_too_large(cloud: RunningCloud,
                                       raw: tuple[str, dict[str, str]]) -> None:
    prefix, auth = raw
    status, _, body = send(cloud, "PUT", f"{prefix}/nolength", auth)
    assert status == 411
    status, _, body = send(cloud, "PUT", f"{prefix}/huge",
                           {**auth, "Content-Length": str(MAX_FILE_SIZE + 1)})
    assert (status, body) == (413, b"Your request is too large.")
    status, _, _ = send(cloud, "PUT", f"{prefix}/negative",
                        {**auth, "Content-Length": "-1"})
    assert 400 <= status < 500
    status, _, _ = send(cloud, "PUT", f"{prefix}/gzip",
                        {**auth, "Transfer-Encoding": "gzip, chunked"}, b"0\r\n\r\n")
    assert 400 <= status < 502 and status != 500
    status, _, _ = send(cloud, "GET", f"{prefix}/nolength", auth)
    assert status == 404


def test_short_body_is_not_stored(cloud: RunningCloud, swift: Swift, container: str) -> None:
    # Content-Length promises more than is sent, then the client goes away
    status = swift.request("HEAD", f"{container}/short").status_code
    assert status == 404
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(cloud.objectstore_url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall((f"PUT /v1/{swift.account}/{container}/short HTTP/1.1\r\n"
                      f"Host: x\r\nX-Auth-Token: {swift.token}\r\n"
                      "Content-Length: 100000\r\n\r\n").encode() + b"x" * 1000)
    assert swift.request("HEAD", f"{container}/short").status_code == 404
    assert swift.names(container) == []


def test_etag_header_garbage_is_422(swift: Swift, container: str) -> None:
    response = swift.request("PUT", f"{container}/o", content=b"x",
                             headers={"ETag": "not-an-md5"})
    assert response.status_code == 422
    assert swift.request("HEAD", f"{container}/o").status_code == 404


def test_bad_copy_headers(swift: Swift, container: str) -> None:
    swift.put(f"{container}/src", b"x")
    for value in ("", "/", "nocontainer", f"/{container}"):
        response = swift.request("PUT", f"{container}/d", headers={"X-Copy-From": value})
        assert response.status_code == 412, value
    response = swift.request("PUT", f"{container}/d",
                             headers={"X-Copy-From": f"{uniq()}/src"})
    assert response.status_code == 404
    response = swift.request("PUT", f"{container}/d",
                             headers={"X-Copy-From": f"{container}/src",
                                      "X-Copy-From-Account": "AUTH_nobody"})
    assert response.status_code in (403, 404)


def test_bad_listing_params(swift: Swift, container: str) -> None:
    for params in ({"marker": "\udcff"}, {"prefix": "%FF"}):
        query = "&".join(f"{k}={v}" for k, v in params.items()).replace("\udcff", "%FF")
        response = swift.http.get(f"{swift.url(container)}?{query}",
                                  headers={"X-Auth-Token": swift.token or ""})
        assert response.status_code in (400, 204), response.text
    response = swift.http.get(f"{swift.url(container)}?marker=%FF",
                              headers={"X-Auth-Token": swift.token or ""})
    assert response.status_code == 400
    assert response.text == '"marker" parameter not valid UTF-8'
    response = swift.request("GET", container, headers={"Accept": "bogus"})
    assert response.status_code == 400
