"""Static large objects (Swift's ``slo``): raw HTTP, the swift CLI, openstacksdk."""

from __future__ import annotations

import base64
import email.parser
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from openstack.connection import Connection
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Swift, md5, run_cli, uniq

PUT = {"multipart-manifest": "put"}
GET = {"multipart-manifest": "get"}
SEGMENTS = {"a": b"a" * 1000, "b": b"b" * 2000, "c": b"c" * 3000}


def segments(swift: Swift, name: str, parts: dict[str, bytes] = SEGMENTS
             ) -> list[dict[str, Any]]:
    for key, data in parts.items():
        swift.put(f"{name}/seg_{key}", data)
    return [{"path": f"/{name}/seg_{k}", "etag": md5(d), "size_bytes": len(d)}
            for k, d in parts.items()]


def put_manifest(swift: Swift, path: str, manifest: list[dict[str, Any]], *,
                 status: int = 201, **headers: str) -> Any:
    response = swift.request("PUT", path, params=PUT, content=json.dumps(manifest),
                             headers=headers)
    assert response.status_code == status, response.text
    return response


def slo_etag(*etags: str) -> str:
    return md5("".join(etags).encode())


@pytest.fixture
def slo(swift: Swift) -> tuple[str, bytes]:
    name = swift.container()
    put_manifest(swift, f"{name}/man", segments(swift, name))
    return name, b"".join(SEGMENTS.values())


def test_get_head_and_listing(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, content = slo
    etag = slo_etag(*(md5(d) for d in SEGMENTS.values()))
    got = swift.get(f"{name}/man")
    assert got.status_code == 200 and got.content == content
    assert got.headers["etag"] == f'"{etag}"'
    assert got.headers["x-static-large-object"] == "True"
    head = swift.request("HEAD", f"{name}/man")
    assert head.headers["content-length"] == "6000" and head.headers["etag"] == f'"{etag}"'
    assert not [h for h in head.headers if "sysmeta" in h.lower()]
    manifest = swift.request("GET", f"{name}/man", params=GET)
    assert head.headers["x-manifest-etag"] == md5(manifest.content)
    entry = next(e for e in swift.listing(name) if e["name"] == "man")
    assert entry["bytes"] == 6000 and entry["hash"] == md5(manifest.content)
    assert entry["slo_etag"] == f'"{etag}"'
    assert entry["content_type"] == "application/octet-stream"
    xml = swift.request("GET", name, params={"format": "xml"}).text
    assert f"<hash>{md5(manifest.content)}</hash>" in xml
    info = swift.request("HEAD", name).headers  # bytes used: the manifest, not the total
    assert int(info["x-container-bytes-used"]) == 6000 + len(manifest.content)


def test_manifest_get_and_raw_form(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, content = slo
    stored = swift.request("GET", f"{name}/man", params=GET)
    assert stored.headers["content-type"] == "application/json; charset=utf-8"
    items = stored.json()
    assert [i["name"] for i in items] == [f"/{name}/seg_{k}" for k in SEGMENTS]
    assert [i["bytes"] for i in items] == [1000, 2000, 3000]
    raw = swift.request("GET", f"{name}/man", params={**GET, "format": "raw"})
    assert raw.headers["etag"] == md5(raw.content)
    assert raw.headers["content-type"] == "application/octet-stream"
    assert all(set(i) == {"path", "etag", "size_bytes"} for i in raw.json())
    put_manifest(swift, f"{name}/again", raw.json())
    assert swift.get(f"{name}/again").content == content


def test_ranges_and_part_numbers(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, content = slo
    for header, start, stop in (("bytes=900-3099", 900, 3100), ("bytes=-10", 5990, 6000),
                                ("bytes=2999-", 2999, 6000)):
        got = swift.get(f"{name}/man", Range=header)
        assert got.status_code == 206 and got.content == content[start:stop], header
        assert got.headers["content-range"] == f"bytes {start}-{stop - 1}/6000"
    multi = swift.get(f"{name}/man", Range="bytes=995-1004,2995-3004")
    assert multi.status_code == 206
    parser = email.parser.BytesFeedParser()
    parser.feed(f"Content-Type: {multi.headers['content-type']}\r\n\r\n".encode())
    parser.feed(multi.content)
    parts = parser.close().get_payload()
    assert [p.get_payload(decode=True) for p in parts] == [b"a" * 5 + b"b" * 5,
                                                          b"b" * 5 + b"c" * 5]
    assert swift.get(f"{name}/man", Range="bytes=7000-").status_code == 416
    part = swift.request("GET", f"{name}/man", params={"part-number": "2"})
    assert part.status_code == 206 and part.content == b"b" * 2000
    assert part.headers["content-range"] == "bytes 1000-2999/6000"
    assert part.headers["x-parts-count"] == "3"
    head = swift.request("HEAD", f"{name}/man", params={"part-number": "3"})
    assert head.status_code == 206 and head.headers["content-length"] == "3000"
    beyond = swift.request("GET", f"{name}/man", params={"part-number": "4"})
    assert beyond.status_code == 416
    assert beyond.content == b"The requested part number is not satisfiable"
    bad = swift.request("GET", f"{name}/man", params={"part-number": "0"})
    assert bad.status_code == 400


def test_conditional_requests(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, _ = slo
    etag = swift.request("HEAD", f"{name}/man").headers["etag"]
    for method in ("GET", "HEAD"):
        def status(method: str = method, **headers: str) -> int:
            return swift.request(method, f"{name}/man", headers=headers).status_code

        assert status(**{"If-Match": etag}) == 200
        assert status(**{"If-Match": '"nope"'}) == 412
        assert status(**{"If-None-Match": etag}) == 304
        assert status(**{"If-None-Match": '"nope"'}) == 200


def test_nested_ranged_and_inline_data_segments(swift: Swift, slo: tuple[str, bytes]
                                                ) -> None:
    name, content = slo
    inner = swift.request("HEAD", f"{name}/man").headers
    outer = [{"data": base64.b64encode(b"<<").decode()},
             {"path": f"/{name}/man", "etag": inner["etag"].strip('"'), "size_bytes": 6000,
              "range": "990-3009"},
             {"path": f"/{name}/seg_a"},
             {"data": base64.b64encode(b">>").decode()}]
    put_manifest(swift, f"{name}/outer", outer)
    expected = b"<<" + content[990:3010] + SEGMENTS["a"] + b">>"
    got = swift.get(f"{name}/outer")
    assert got.content == expected
    etag = slo_etag(md5(b"<<"), f"{inner['etag'].strip(chr(34))}:990-3009;",
                    md5(SEGMENTS["a"]), md5(b">>"))
    assert got.headers["etag"] == f'"{etag}"'
    assert swift.get(f"{name}/outer", Range="bytes=1-25").content == expected[1:26]


@pytest.mark.parametrize("accept, check", [
    ("text/plain", lambda body: "Errors:\n" in body and ", 404 Not Found" in body),
    ("application/json", lambda body: json.loads(body)["Errors"][0][1] == "404 Not Found"),
    ("application/xml", lambda body: "<status>404 Not Found</status>" in body),
])
def test_bad_segments_are_reported_in_one_400(swift: Swift, accept: str, check: Any) -> None:
    name = swift.container()
    good = segments(swift, name)
    bad = [good[0], {"path": f"/{name}/missing"},
           {**good[1], "etag": "0" * 32}, {**good[2], "size_bytes": 1}]
    response = swift.request("PUT", f"{name}/man", params=PUT, content=json.dumps(bad),
                             headers={"Accept": accept})
    assert response.status_code == 400 and check(response.text), response.text
    if accept == "text/plain":
        assert response.text.splitlines()[1:] == [f"/{name}/missing, 404 Not Found",
                                                  f"/{name}/seg_b, Etag Mismatch",
                                                  f"/{name}/seg_c, Size Mismatch"]
    assert swift.request("HEAD", f"{name}/man").status_code == 404


@pytest.mark.parametrize("body, message", [
    (b"not json", "Manifest must be valid JSON.\n"),
    (b"{}", "Manifest must be a list.\n"),
    (b'["x"]', "Index 0: not a JSON object\n"),
    (b'[{"path": "/c/o", "egat": "x"}]', 'Index 0: extraneous keys "egat"\n'),
    (b'[{"path": "/c"}]', "Index 0: path does not refer to an object. Path must be of "
                          "the form /container/object.\n"),
    (b'[{"path": "/c/o", "range": "x-y"}]', "Index 0: invalid range\n"),
    (b'[{"path": "/c/o", "range": "1-2,4-5"}]',
     "Index 0: multiple ranges (only one allowed)\n"),
    (b'[{"path": "/c/o", "size_bytes": "many"}]', "Index 0: invalid size_bytes\n"),
    (b'[{"data": "***"}]', "Index 0: data must be valid base64\n"
                           "Inline data segments require at least one object-backed "
                           "segment.\n"),
    (b'[{"nothing": 1}]', "Index 0: expected keys to include one of 'data' or 'path'\n"),
])
def test_malformed_manifests_are_400(swift: Swift, body: bytes, message: str) -> None:
    name = swift.container()
    response = swift.request("PUT", f"{name}/man", params=PUT, content=body)
    assert response.status_code == 400 and response.text == message


def test_self_reference_limits_and_reserved_header(swift: Swift) -> None:
    name = swift.container()
    selfish = [{"path": f"/{name}/man"}]
    response = swift.request("PUT", f"{name}/man", params=PUT, content=json.dumps(selfish))
    assert response.text == "Index 0: manifest must not include itself as a segment\n"
    too_many = [{"path": f"/{name}/s{i}"} for i in range(1001)]
    response = swift.request("PUT", f"{name}/man", params=PUT, content=json.dumps(too_many))
    assert response.status_code == 413
    assert response.text == "Number of object-backed segments must be <= 1000"
    huge = b"[" + b" " * (8 * 1024 * 1024) + b"]"
    response = swift.request("PUT", f"{name}/man", params=PUT, content=huge)
    assert response.status_code == 413 and response.text == "Manifest File > 8388608 bytes"
    for method in ("PUT", "POST"):
        reserved = swift.request(method, f"{name}/plain", content=b"x",
                                 headers={"X-Static-Large-Object": "true"})
        assert reserved.status_code == 400 and "reserved header" in reserved.text
    sysmeta = swift.request("PUT", f"{name}/plain", content=b"x",
                            headers={"X-Object-Sysmeta-Slo-Size": "99"})
    assert sysmeta.status_code == 201
    assert swift.request("HEAD", f"{name}/plain").headers["content-length"] == "1"


def test_client_etag_is_checked(swift: Swift) -> None:
    name = swift.container()
    manifest = segments(swift, name)
    etag = slo_etag(*(m["etag"] for m in manifest))
    put_manifest(swift, f"{name}/ok", manifest, status=201, ETag=f'"{etag}"')
    put_manifest(swift, f"{name}/no", manifest, status=422, ETag="0" * 32)


def test_broken_segments_fail_the_get(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, _ = slo
    swift.ok("DELETE", f"{name}/seg_a", 204)
    assert swift.get(f"{name}/man").status_code == 409  # before any byte: 409
    swift.put(f"{name}/seg_a", b"A" * 1000)  # same size, other content
    assert swift.get(f"{name}/man").status_code == 409


def test_multipart_delete_removes_segments(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, _ = slo
    inner = swift.request("HEAD", f"{name}/man").headers["etag"].strip('"')
    swift.put(f"{name}/extra", b"x" * 10)
    put_manifest(swift, f"{name}/outer", [{"path": f"/{name}/man", "etag": inner},
                                          {"path": f"/{name}/extra"}])
    response = swift.request("DELETE", f"{name}/outer", params={"multipart-manifest":
                                                                 "delete"},
                             headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"Response Status": "200 OK", "Response Body": "",
                               "Number Deleted": 6, "Number Not Found": 0, "Errors": []}
    assert swift.names(name) == []
    swift.put(f"{name}/plain", b"x")
    refused = swift.request("DELETE", f"{name}/plain", params={"multipart-manifest":
                                                                "delete"})
    assert refused.status_code == 200 and "Not an SLO manifest" in refused.text
    assert "Response Status: 400 Bad Request" in refused.text
    assert swift.names(name) == ["plain"]


def test_copy_content_or_manifest(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, content = slo
    slo_tag = swift.request("HEAD", f"{name}/man").headers["etag"]
    swift.ok("COPY", f"{name}/man", 201, headers={"Destination": f"{name}/flat",
                                                  "X-Object-Meta-Color": "red"})
    flat = swift.get(f"{name}/flat")
    assert flat.content == content and "x-static-large-object" not in flat.headers
    assert flat.headers["x-object-meta-color"] == "red"
    swift.ok("PUT", f"{name}/twin", 201, params=GET, headers={"X-Copy-From": f"{name}/man"})
    twin = swift.request("HEAD", f"{name}/twin")
    assert twin.headers["x-static-large-object"] == "True"
    assert twin.headers["etag"] == slo_tag
    assert swift.get(f"{name}/twin").content == content


def test_post_keeps_the_listed_size(swift: Swift, slo: tuple[str, bytes]) -> None:
    name, _ = slo
    swift.ok("POST", f"{name}/man", 202, headers={"Content-Type": "image/png",
                                                  "X-Object-Meta-A": "1"})
    entry = next(e for e in swift.listing(name) if e["name"] == "man")
    assert entry["bytes"] == 6000 and entry["content_type"] == "image/png"
    swift.ok("POST", f"{name}/man", 202, headers={"X-Object-Meta-B": "2"})
    head = swift.request("HEAD", f"{name}/man").headers
    assert head["content-type"] == "image/png" and head["x-static-large-object"] == "True"


def test_heartbeat_put(swift: Swift) -> None:
    name = swift.container()
    response = swift.request("PUT", f"{name}/man", params={**PUT, "heartbeat": "on"},
                             content=json.dumps(segments(swift, name)),
                             headers={"Accept": "application/json"})
    assert response.status_code == 202
    report = json.loads(response.content.split(b"\r\n\r\n", 1)[1])
    assert report["Response Status"] == "201 Created" and report["Errors"] == []
    assert report["Etag"].startswith('"')


def test_swift_cli_use_slo_round_trip(cloud: RunningCloud, swift: Swift,
                                      tmp_path: Path) -> None:
    data = os.urandom(2_500_000)
    (tmp_path / "big.bin").write_bytes(data)
    name = uniq()
    run_cli(cloud, "swift", "upload", name, "big.bin", "--use-slo", "-S", "1000000",
            cwd=tmp_path)
    head = swift.request("HEAD", f"{name}/big.bin").headers
    assert head["x-static-large-object"] == "True" and head["content-length"] == str(len(data))
    assert len(swift.names(f"{name}_segments")) == 3
    out = tmp_path / "out"
    out.mkdir()
    run_cli(cloud, "swift", "download", name, "big.bin", cwd=out)
    assert (out / "big.bin").read_bytes() == data
    run_cli(cloud, "swift", "delete", name, "big.bin")
    assert swift.names(f"{name}_segments") == []



def test_openstacksdk_uploads_a_file_as_slo(sdk: Connection, swift: Swift,
                                            tmp_path: Path) -> None:
    data = os.urandom(2_300_000)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    name = uniq()
    sdk.create_container(name)
    sdk.create_object(name, "file.bin", filename=str(path), segment_size=1_000_000)
    meta = sdk.object_store.get_object_metadata("file.bin", container=name)
    assert meta.is_static_large_object and meta.content_length == len(data)
    downloaded = sdk.object_store.download_object("file.bin", container=name)
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(data).digest()
    assert sdk.delete_object(name, "file.bin")
    assert swift.names(name) == []
