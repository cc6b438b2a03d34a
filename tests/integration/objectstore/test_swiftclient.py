"""python-swiftclient (``swiftclient.client.Connection``, Keystone v3) on all three levels."""

from __future__ import annotations

import email.utils
import os
import time
from urllib.parse import quote, unquote

import pytest
from swiftclient.client import ClientException, Connection
from tests.integration.objectstore.support import Swift, eventually, md5, uniq


def status_of(call: object, *args: object, **kw: object) -> int:
    assert callable(call)
    with pytest.raises(ClientException) as info:
        call(*args, **kw)
    return int(info.value.http_status or 0)


# -- accounts ----------------------------------------------------------------------------------
def test_account_head_get_post(conn: Connection) -> None:
    name = uniq()
    conn.put_container(name)
    conn.put_object(name, "o", b"abc")
    headers = conn.head_account()
    assert int(headers["x-account-container-count"]) >= 1

    def listed() -> None:  # object counts reach the account asynchronously, as in Swift
        _, containers = conn.get_account(prefix=name)
        assert [(c["name"], c["count"], c["bytes"]) for c in containers] == [(name, 1, 3)]
        assert int(conn.head_account()["x-account-bytes-used"]) >= 3

    eventually(listed)
    key = uniq("k")
    conn.post_account({f"X-Account-Meta-{key}": "v1"})
    assert conn.head_account()[f"x-account-meta-{key}"] == "v1"
    conn.post_account({f"X-Remove-Account-Meta-{key}": "x"})
    assert f"x-account-meta-{key}" not in conn.head_account()


def test_account_put_and_delete_not_allowed(swift: Swift) -> None:
    for method in ("PUT", "DELETE"):
        response = swift.request(method)
        assert response.status_code == 405
        assert "allow" in response.headers


# -- containers --------------------------------------------------------------------------------
def test_container_lifecycle(conn: Connection) -> None:
    name = uniq()
    conn.put_container(name, headers={"X-Container-Meta-Color": "red"})
    assert conn.http_connection  # connected
    headers = conn.head_container(name)
    assert headers["x-container-meta-color"] == "red"
    assert headers["x-container-object-count"] == "0"
    conn.post_container(name, {"X-Container-Meta-Color": "green", "X-Container-Meta-New": "1"})
    headers = conn.head_container(name)
    assert headers["x-container-meta-color"] == "green"
    assert headers["x-container-meta-new"] == "1"
    conn.post_container(name, {"X-Remove-Container-Meta-New": "x"})
    assert "x-container-meta-new" not in conn.head_container(name)
    conn.put_object(name, "o", b"data")
    assert status_of(conn.delete_container, name) == 409
    conn.delete_object(name, "o")
    conn.delete_container(name)
    assert status_of(conn.head_container, name) == 404
    assert status_of(conn.delete_container, name) == 404


def test_container_put_created_then_accepted(swift: Swift) -> None:
    name = uniq()
    assert swift.request("PUT", name).status_code == 201
    assert swift.request("PUT", name).status_code == 202


# -- objects -----------------------------------------------------------------------------------
def test_object_round_trip_and_metadata(conn: Connection, container: str) -> None:
    data = os.urandom(300_000)
    etag = conn.put_object(container, "dir/obj.bin", data, content_type="application/x-test",
                           headers={"X-Object-Meta-Color": "blue",
                                    "Content-Disposition": "attachment",
                                    "Content-Encoding": "identity"})
    assert etag == md5(data)
    headers, body = conn.get_object(container, "dir/obj.bin")
    assert body == data
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "application/x-test"
    assert headers["x-object-meta-color"] == "blue"
    assert headers["content-disposition"] == "attachment"
    assert headers["content-encoding"] == "identity"
    assert headers["etag"] == md5(data)
    head = conn.head_object(container, "dir/obj.bin")
    assert head["content-length"] == str(len(data))
    assert head["last-modified"] == headers["last-modified"]


def test_object_post_replaces_user_metadata(conn: Connection, container: str) -> None:
    conn.put_object(container, "o", b"x", headers={"X-Object-Meta-A": "1",
                                                    "X-Object-Meta-B": "2"})
    conn.post_object(container, "o", {"X-Object-Meta-C": "3", "Content-Type": "text/x-c"})
    headers = conn.head_object(container, "o")
    assert headers["x-object-meta-c"] == "3"
    assert "x-object-meta-a" not in headers and "x-object-meta-b" not in headers
    assert headers["content-type"] == "text/x-c"
    assert conn.get_object(container, "o")[1] == b"x"
    _, listing = conn.get_container(container)
    assert listing[0]["content_type"] == "text/x-c"


def test_object_post_missing_is_404(conn: Connection, container: str) -> None:
    assert status_of(conn.post_object, container, "nope", {"X-Object-Meta-A": "1"}) == 404


def test_object_delete(conn: Connection, container: str) -> None:
    conn.put_object(container, "o", b"x")
    conn.delete_object(container, "o")
    assert status_of(conn.get_object, container, "o") == 404
    assert status_of(conn.delete_object, container, "o") == 404
    assert conn.get_container(container)[1] == []


def test_object_in_missing_container_is_404(conn: Connection) -> None:
    assert status_of(conn.put_object, uniq(), "o", b"x") == 404
    assert status_of(conn.get_object, uniq(), "o") == 404


def test_overwrite_returns_newest(conn: Connection, container: str) -> None:
    for i in range(3):
        conn.put_object(container, "o", f"v{i}".encode())
    assert conn.get_object(container, "o")[1] == b"v2"
    assert conn.get_object(container, "o", headers={"X-Newest": "true"})[1] == b"v2"
    assert conn.head_object(container, "o", headers={"X-Newest": "true"})["etag"] == \
        md5(b"v2")
    _, listing = conn.get_container(container)
    assert [(o["name"], o["bytes"], o["hash"]) for o in listing] == [("o", 2, md5(b"v2"))]


def test_chunked_put_streams_generator(conn: Connection, container: str) -> None:
    pieces = [os.urandom(n) for n in (1, 65536, 100_000, 7)]
    etag = conn.put_object(container, "chunked", contents=iter(pieces), chunk_size=65536)
    data = b"".join(pieces)
    assert etag == md5(data)
    assert conn.get_object(container, "chunked")[1] == data
    _, listing = conn.get_container(container)
    assert listing[0]["bytes"] == len(data)


def test_zero_byte_object(conn: Connection, container: str) -> None:
    conn.put_object(container, "empty", b"")
    headers, body = conn.get_object(container, "empty")
    assert body == b"" and headers["content-length"] == "0"
    assert headers["etag"] == md5(b"")


def test_etag_mismatch_is_422(conn: Connection, container: str) -> None:
    assert status_of(conn.put_object, container, "bad", b"data", etag=md5(b"other")) == 422
    assert status_of(conn.head_object, container, "bad") == 404
    etag = conn.put_object(container, "good", b"data", etag=md5(b"data"))
    assert etag == md5(b"data")


def test_if_none_match_star(conn: Connection, container: str) -> None:
    conn.put_object(container, "o", b"1", headers={"If-None-Match": "*"})
    assert status_of(conn.put_object, container, "o", b"2",
                     headers={"If-None-Match": "*"}) == 412
    assert conn.get_object(container, "o")[1] == b"1"


def test_content_type_detection(conn: Connection, container: str) -> None:
    conn.put_object(container, "page.html", b"<p/>", content_type="")
    assert conn.head_object(container, "page.html")["content-type"] == "text/html"
    conn.put_object(container, "pic.png", b"x", content_type="text/plain",
                    headers={"X-Detect-Content-Type": "true"})
    assert conn.head_object(container, "pic.png")["content-type"] == "image/png"
    conn.put_object(container, "noext", b"x", content_type="")
    assert conn.head_object(container, "noext")["content-type"] == "application/octet-stream"


# -- ranges ------------------------------------------------------------------------------------
DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def ranged(conn: Connection, container: str) -> str:
    conn.put_object(container, "r", DATA, content_type="application/x-data")
    return container


def test_single_ranges(swift: Swift, ranged: str) -> None:
    for header, (start, stop) in {"bytes=0-9": (0, 10), "bytes=100-": (100, len(DATA)),
                                  "bytes=-10": (len(DATA) - 10, len(DATA)),
                                  "bytes=10000-99999": (10000, len(DATA))}.items():
        response = swift.get(f"{ranged}/r", Range=header)
        assert response.status_code == 206, header
        assert response.content == DATA[start:stop]
        assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(DATA)}"
        assert response.headers["content-length"] == str(stop - start)


def test_multi_range(swift: Swift, ranged: str) -> None:
    response = swift.get(f"{ranged}/r", Range="bytes=0-1,5-9,-3")
    assert response.status_code == 206
    ctype = response.headers["content-type"]
    assert ctype.startswith("multipart/byteranges;boundary=")
    boundary = ctype.split("=", 1)[1].encode()
    parts = response.content.split(b"--" + boundary)
    assert parts[-1] == b"--"
    bodies = [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts[1:-1]]
    assert bodies == [DATA[0:2], DATA[5:10], DATA[-3:]]
    assert b"Content-Range: bytes 5-9/10240" in parts[2]
    assert int(response.headers["content-length"]) == len(response.content)


def test_unsatisfiable_and_ignored_ranges(swift: Swift, ranged: str) -> None:
    response = swift.get(f"{ranged}/r", Range="bytes=20000-")
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    for ignored in ("bytes=5-1", "bytes=abc", "items=0-1", "bytes=--1"):
        response = swift.get(f"{ranged}/r", Range=ignored)
        assert response.status_code == 200, ignored
        assert response.content == DATA


def test_range_via_swiftclient(conn: Connection, ranged: str) -> None:
    headers, body = conn.get_object(ranged, "r", headers={"Range": "bytes=1-3"})
    assert body == DATA[1:4]
    assert headers["content-range"] == f"bytes 1-3/{len(DATA)}"


# -- conditional requests ----------------------------------------------------------------------
def test_conditional_get(swift: Swift, ranged: str) -> None:
    etag = md5(DATA)
    path = f"{ranged}/r"
    last_modified = swift.request("HEAD", path).headers["last-modified"]
    assert swift.get(path, **{"If-Match": etag}).status_code == 200
    assert swift.get(path, **{"If-Match": f'"{etag}"'}).status_code == 200
    assert swift.get(path, **{"If-Match": "nope"}).status_code == 412
    not_modified = swift.get(path, **{"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert swift.get(path, **{"If-None-Match": "other"}).status_code == 200
    assert swift.get(path, **{"If-Modified-Since": last_modified}).status_code == 304
    past = email.utils.formatdate(time.time() - 86400, usegmt=True)
    assert swift.get(path, **{"If-Modified-Since": past}).status_code == 200
    assert swift.get(path, **{"If-Unmodified-Since": past}).status_code == 412
    assert swift.get(path, **{"If-Unmodified-Since": last_modified}).status_code == 200
    assert swift.request("HEAD", path, headers={"If-None-Match": etag}).status_code == 304
    assert swift.request("HEAD", path, headers={"If-Match": "x"}).status_code == 412


def test_conditional_get_swiftclient(conn: Connection, ranged: str) -> None:
    assert status_of(conn.get_object, ranged, "r", headers={"If-Match": "nope"}) == 412
    # swiftclient treats 304 as an error status too
    assert status_of(conn.get_object, ranged, "r",
                     headers={"If-None-Match": md5(DATA)}) == 304


# -- server-side copy --------------------------------------------------------------------------
def test_copy_and_copy_from(conn: Connection, swift: Swift, container: str) -> None:
    data = os.urandom(150_000)
    conn.put_object(container, "src", data, content_type="text/x-src",
                    headers={"X-Object-Meta-Orig": "1", "Content-Disposition": "inline"})
    last_modified = conn.head_object(container, "src")["last-modified"]
    response = swift.request("COPY", f"{container}/src",
                             headers={"Destination": f"{container}/dst",
                                      "X-Object-Meta-New": "2"})
    assert response.status_code == 201, response.text
    assert response.headers["x-copied-from"] == f"{container}/src"
    assert response.headers["x-copied-from-account"] == swift.account
    assert email.utils.parsedate_to_datetime(last_modified).timestamp() == \
        float(response.headers["x-copied-from-last-modified"])
    headers, body = conn.get_object(container, "dst")
    assert body == data
    assert headers["x-object-meta-orig"] == "1" and headers["x-object-meta-new"] == "2"
    assert headers["content-type"] == "text/x-src"
    assert headers["content-disposition"] == "inline"
    other = swift.container()
    response = swift.request("PUT", f"{other}/fresh", headers={
        "X-Copy-From": f"/{container}/src", "X-Fresh-Metadata": "true",
        "X-Object-Meta-Only": "this", "Content-Length": "0"})
    assert response.status_code == 201, response.text
    headers, body = conn.get_object(other, "fresh")
    assert body == data
    assert headers["x-object-meta-only"] == "this"
    assert "x-object-meta-orig" not in headers
    _, listing = conn.get_container(other)
    assert [(o["name"], o["bytes"], o["hash"]) for o in listing] == \
        [("fresh", len(data), md5(data))]


def test_copy_via_swiftclient(conn: Connection, container: str) -> None:
    conn.put_object(container, "a", b"payload", headers={"X-Object-Meta-X": "1"})
    conn.copy_object(container, "a", f"/{container}/b", headers={"X-Object-Meta-Y": "2"})
    headers, body = conn.get_object(container, "b")
    assert body == b"payload"
    assert headers["x-object-meta-x"] == "1" and headers["x-object-meta-y"] == "2"
    conn.copy_object(container, "a", f"/{container}/c", fresh_metadata=True)
    assert "x-object-meta-x" not in conn.head_object(container, "c")


def test_copy_errors(swift: Swift, container: str) -> None:
    swift.put(f"{container}/a", b"x")
    assert swift.request("COPY", f"{container}/missing",
                         headers={"Destination": f"{container}/b"}).status_code == 404
    assert swift.request("COPY", f"{container}/a").status_code == 412
    assert swift.request("COPY", f"{container}/a",
                         headers={"Destination": "nocontainer"}).status_code == 412
    response = swift.request("PUT", f"{container}/b", headers={
        "X-Copy-From": "bad", "Content-Length": "0"})
    assert response.status_code == 412
    response = swift.request("COPY", f"{container}/a",
                             headers={"Destination": f"{uniq()}/b"})
    assert response.status_code == 404


# -- more object semantics ---------------------------------------------------------------------
def test_counts_are_current_right_after_writes(conn: Connection, container: str) -> None:
    for i in range(1, 6):
        conn.put_object(container, f"o{i}", b"x" * i)
        headers = conn.head_container(container)
        assert headers["x-container-object-count"] == str(i)
        assert headers["x-container-bytes-used"] == str(sum(range(1, i + 1)))
    conn.delete_object(container, "o1")
    assert conn.head_container(container)["x-container-object-count"] == "4"


def test_if_none_match_other_than_star_is_400(swift: Swift, container: str) -> None:
    response = swift.request("PUT", f"{container}/o", content=b"x",
                             headers={"If-None-Match": md5(b"x")})
    assert response.status_code == 400
    assert response.text == "If-None-Match only supports *"


def test_chunked_put_with_wrong_etag_is_422(conn: Connection, container: str) -> None:
    status = status_of(conn.put_object, container, "o", contents=iter([b"ab", b"cd"]),
                       etag=md5(b"other"), chunk_size=2)
    assert status == 422
    assert status_of(conn.head_object, container, "o") == 404
    etag = conn.put_object(container, "empty", contents=iter([]), chunk_size=2)
    assert etag == md5(b"")


def test_unicode_metadata_round_trip(conn: Connection, container: str) -> None:
    name = "ünï/cødé ✓.txt"
    # (non-ASCII header *names* are refused by the HTTP parser itself: 400)
    conn.put_object(container, name, b"x", headers={"X-Object-Meta-City": "Zürich ✓"})
    headers = conn.head_object(container, name)
    assert headers["x-object-meta-city"] == "Zürich ✓"
    conn.post_container(container, {"X-Container-Meta-Owner": "Jürgen"})
    assert conn.head_container(container)["x-container-meta-owner"] == "Jürgen"
    _, listing = conn.get_container(container)
    assert [o["name"] for o in listing] == [name]


def test_directory_markers_and_swift_bytes(swift: Swift, container: str) -> None:
    swift.put(f"{container}/dir/", b"", **{"Content-Type": "application/directory"})
    swift.put(f"{container}/dir/file", b"abc",
              **{"Content-Type": "text/plain;swift_bytes=99"})
    listing = swift.listing(container)
    assert [(e["name"], e["content_type"]) for e in listing] == \
        [("dir/", "application/directory"), ("dir/file", "text/plain")]
    assert swift.request("HEAD", f"{container}/dir/file").headers["content-type"] == \
        "text/plain"


def test_copy_with_quoted_unicode_names(swift: Swift, container: str) -> None:
    source = "src ✓?&#.txt"
    swift.put(f"{container}/{source}", b"payload")
    quoted = quote(f"{container}/{source}")
    response = swift.request("PUT", f"{container}/copy ✓", headers={"X-Copy-From": quoted})
    assert response.status_code == 201, response.text
    assert unquote(response.headers["x-copied-from"]) == f"{container}/{source}"
    response = swift.request("COPY", f"{container}/{source}",
                             headers={"Destination": quote(f"{container}/dest ✓")})
    assert response.status_code == 201, response.text
    assert swift.get(f"{container}/dest ✓").content == b"payload"
    assert sorted(swift.names(container)) == sorted(["copy ✓", "dest ✓", source])


def test_conditional_put_and_range_priority(swift: Swift, container: str) -> None:
    swift.put(f"{container}/o", b"0123456789")
    etag = md5(b"0123456789")
    both = swift.get(f"{container}/o", Range="bytes=0-1", **{"If-None-Match": etag})
    assert both.status_code == 304
    both = swift.get(f"{container}/o", Range="bytes=0-1", **{"If-Match": etag})
    assert (both.status_code, both.content) == (206, b"01")
    missing = swift.get(f"{container}/nope", **{"If-Match": "*"})
    assert missing.status_code == 404
