"""Swift's answers in the details its own functional tests check: headers of 304/412/416,
ranged copies, paths with empty parts, the 401 realm, metadata limits over a whole account
or container, UTF-8 metadata, listings' storage policies and content types."""

from __future__ import annotations

import json
import os
import socket
import xml.etree.ElementTree as ET
from urllib.parse import quote

import httpx
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Persona, Swift, md5, raw_request, uniq

UTF8_VALUE = "x\u5605\u00e9\u2603".encode()  # U+5605 ends in 0x85, which str.strip() eats


def test_not_modified_and_precondition_failed_keep_the_headers(swift: Swift,
                                                               container: str) -> None:
    data = b"conditional"
    swift.put(f"{container}/o", data, **{"X-Object-Meta-Fruit": "kiwi",
                                         "Content-Type": "text/x-fruit"})
    for method in ("GET", "HEAD"):
        for headers, status in (({"If-None-Match": md5(data)}, 304),
                                ({"If-Match": "bogus"}, 412)):
            response = swift.request(method, f"{container}/o", headers=headers)
            assert response.status_code == status
            assert response.headers["etag"] == md5(data)
            assert response.headers["accept-ranges"] == "bytes"
            assert response.headers["x-object-meta-fruit"] == "kiwi"
            assert response.headers["content-type"] == "text/x-fruit"
            assert response.headers["content-length"] == "0" and response.content == b""


def test_unsatisfiable_range_has_the_object_headers(swift: Swift, container: str) -> None:
    data = os.urandom(50)
    swift.put(f"{container}/o", data, **{"X-Object-Meta-Fruit": "fig"})
    for header in ("bytes=-0", "bytes=100-200"):
        response = swift.get(f"{container}/o", Range=header)
        assert response.status_code == 416
        assert response.headers["content-range"] == "bytes */50"
        assert response.headers["etag"] == md5(data)
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["x-object-meta-fruit"] == "fig"
    suffix = swift.get(f"{container}/o", Range="bytes=-10")
    assert (suffix.status_code, suffix.content) == (206, data[-10:])
    assert suffix.headers["etag"] == md5(data)


def test_copy_of_a_range_copies_the_range(swift: Swift, container: str) -> None:
    data = os.urandom(1024)
    swift.put(f"{container}/src", data, **{"X-Object-Meta-Kept": "yes"})
    response = swift.request("COPY", f"{container}/src", headers={
        "Destination": f"{container}/part", "Range": "bytes=100-200"})
    assert response.status_code == 201
    copied = swift.get(f"{container}/part")
    assert copied.content == data[100:201]
    assert copied.headers["etag"] == md5(data[100:201])
    assert copied.headers["x-object-meta-kept"] == "yes"
    listed = {e["name"]: e for e in swift.listing(container)}
    assert listed["part"]["bytes"] == 101
    response = swift.request("PUT", f"{container}/tail", headers={
        "X-Copy-From": f"/{container}/src", "Range": "bytes=-24"})
    assert response.status_code == 201
    assert swift.get(f"{container}/tail").content == data[-24:]
    refused = swift.request("PUT", f"{container}/never", headers={
        "X-Copy-From": f"{container}/src", "If-Match": "bogus"})
    assert refused.status_code == 412
    assert swift.request("HEAD", f"{container}/never").status_code == 404


def test_copy_headers_are_percent_decoded_utf8(swift: Swift) -> None:
    source, dest = swift.container(f"src-\u2603-{uniq()}"), swift.container(f"\u00e9-{uniq()}")
    swift.put(f"{source}/\u5605 o", b"payload")
    response = swift.request("PUT", f"{dest}/copy", headers={
        "X-Copy-From": quote(f"{source}/\u5605 o"),
        "X-Copy-From-Account": quote(swift.account)})
    assert response.status_code == 201, response.text
    assert swift.get(f"{dest}/copy").content == b"payload"
    response = swift.request("COPY", f"{source}/\u5605 o", headers={
        "Destination": quote(f"/{dest}/\u5605 again")})
    assert response.status_code == 201, response.text
    assert swift.get(f"{dest}/\u5605 again").content == b"payload"
    for bad in ("//x/y", "only-a-container", "%FF/o"):
        assert swift.request("PUT", f"{dest}/bad", headers={"X-Copy-From": bad}
                             ).status_code == 412, bad
    assert swift.request("COPY", f"{source}/\u5605 o").status_code == 412  # no Destination


def test_utf8_metadata_round_trips_byte_for_byte(cloud: RunningCloud, swift: Swift,
                                                 container: str) -> None:
    auth = {"X-Auth-Token": swift.token or ""}
    target = f"/v1/{swift.account}/{container}/meta"
    value = UTF8_VALUE.decode("latin-1")  # http.client sends str headers as latin-1
    status, _, _ = raw_request(cloud.objectstore_url, "PUT", target, {
        **auth, "Content-Length": "0", "X-Object-Meta-Utf8": value,
        "Content-Type": "text/\u5605".encode().decode("latin-1")})
    assert status == 201
    status, headers, _ = raw_request(cloud.objectstore_url, "HEAD", target, auth)
    assert headers["x-object-meta-utf8"].encode("latin-1") == UTF8_VALUE
    status, _, _ = raw_request(cloud.objectstore_url, "POST", target, {
        **auth, "X-Object-Meta-Posted": value})
    assert status == 202
    status, headers, _ = raw_request(cloud.objectstore_url, "HEAD", target, auth)
    assert headers["x-object-meta-posted"].encode("latin-1") == UTF8_VALUE
    listed = {e["name"]: e for e in swift.listing(container)}
    assert listed["meta"]["content_type"] == "text/\u5605"  # the listing shows text


def test_metadata_limits_count_what_is_stored(owner: Persona) -> None:
    swift = owner.swift()  # a fresh account: nothing stored on it yet
    for kind, path in (("Container", swift.container()), ("Account", "")):
        value = "v" * 256
        first = {f"X-{kind}-Meta-{i:04d}": value for i in range(15)}  # 15 * 260 = 3900
        swift.ok("POST", path, 204, headers=first)
        fits = {f"X-{kind}-Meta-k": "y" * (4096 - 3900 - 2)}  # 1 + 194 = 195
        swift.ok("POST", path, 204, headers=fits)
        over = {f"X-{kind}-Meta-k": "z" * (4096 - 3900)}  # fine alone, 4097 in total
        response = swift.request("POST", path, headers=over)
        assert response.status_code == 400, kind
        assert response.text == "Total metadata too large; max 4096"
        swift.ok("POST", path, 204, headers={
            **{f"X-Remove-{kind}-Meta-{i:04d}": "x" for i in range(15)},
            f"X-Remove-{kind}-Meta-k": "x"})


def test_paths_with_empty_parts_are_404(cloud: RunningCloud, swift: Swift) -> None:
    auth = {"X-Auth-Token": swift.token or ""}
    for target in (f"/v1//{uniq()}/o", f"/v1/{swift.account}//o", "/v1///o",
                   f"//v1/{swift.account}"):
        assert raw_request(cloud.objectstore_url, "GET", target, auth)[0] == 404, target
    assert raw_request(cloud.objectstore_url, "GET", "/v1/", auth)[:3:2] == (412, b"Bad URL")


def test_401_names_the_account_as_realm(cloud: RunningCloud) -> None:
    hax = 'AUTH_haxx"\nContent-Length: 14\n\n<b>Hello World'
    response = httpx.get(f"{cloud.objectstore_url}/v1/{quote(hax)}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Swift realm="{quote(hax)}"'
    response = httpx.get(f"{cloud.objectstore_url}/v1/AUTH_x/c/o")
    assert response.headers["www-authenticate"] == 'Swift realm="AUTH_x"'
    response = httpx.get(f"{cloud.objectstore_url}/auth/v1.0")
    assert response.headers["www-authenticate"] == 'Swift realm="unknown"'


def test_account_preflight_is_200(swift: Swift) -> None:
    response = httpx.options(f"{swift.base_url}{swift.url()}", headers={
        "Origin": "http://localhost", "Access-Control-Request-Method": "GET"})
    assert response.status_code == 200
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    container = swift.container(uniq(), **{
        "X-Container-Meta-Access-Control-Allow-Origin": "*"})
    response = httpx.options(f"{swift.base_url}{swift.url(container)}", headers={
        "Origin": "http://localhost", "Access-Control-Request-Method": "LICK"})
    assert response.status_code == 401


def test_keep_alive_is_echoed(swift: Swift, container: str) -> None:
    swift.put(f"{container}/o", b"x")
    with httpx.Client() as client:
        url = f"{swift.base_url}{swift.url(container + '/o')}"
        asked = client.get(url, headers={"X-Auth-Token": swift.token or "",
                                         "Connection": "keep-alive"})
        assert asked.headers["connection"] == "keep-alive"
        closing = client.get(url, headers={"X-Auth-Token": swift.token or "",
                                           "Connection": "close"})
        assert closing.headers["connection"] == "close"


def test_if_delete_at(swift: Swift, container: str) -> None:
    swift.put(f"{container}/o", b"x", **{"X-Delete-After": "3600"})
    delete_at = swift.request("HEAD", f"{container}/o").headers["x-delete-at"]
    bad = swift.request("DELETE", f"{container}/missing", headers={"X-If-Delete-At": "bad"})
    assert bad.status_code == 400
    assert bad.text == "Bad X-If-Delete-At header value"
    assert swift.request("DELETE", f"{container}/missing",
                         headers={"X-If-Delete-At": delete_at}).status_code == 404
    assert swift.request("DELETE", f"{container}/o",
                         headers={"X-If-Delete-At": "1234567890"}).status_code == 412
    assert swift.request("DELETE", f"{container}/o",
                         headers={"X-If-Delete-At": delete_at}).status_code == 204


def test_container_name_too_long_is_html(swift: Swift) -> None:
    response = swift.request("PUT", "X" * 2048)
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.text == "Container name length of 2048 longer than 256"


def test_empty_storage_policy_header_means_the_default(swift: Swift) -> None:
    name = uniq()
    swift.ok("PUT", name, 201, headers={"X-Storage-Policy": ""})
    assert swift.request("HEAD", name).headers["x-storage-policy"] == "default"


def test_account_listing_names_each_containers_policy(swift: Swift) -> None:
    gold, plain = uniq("p1"), uniq("p0")
    swift.ok("PUT", gold, 201, headers={"X-Storage-Policy": "single"})
    swift.container(plain)
    entries = {e["name"]: e for e in swift.listing(prefix="p")}
    assert entries[gold]["storage_policy"] == "single"
    assert entries[plain]["storage_policy"] == "default"
    xml = swift.ok("GET", "", 200, params={"format": "xml", "prefix": "p"}).content
    policies = {c.findtext("name"): c.findtext("storage_policy")
                for c in ET.fromstring(xml).iter("container")}
    assert policies[gold] == "single" and policies[plain] == "default"
    assert json.loads(swift.ok("GET", "", 200, params={"format": "json", "prefix": gold}
                               ).content)[0]["storage_policy"] == "single"


# -- the wire, as Swift's server speaks it (proxy.http1) ---------------------------------------
def send_raw(cloud: RunningCloud, request: bytes) -> bytes:
    """One request exactly as given (raw bytes in the request line); the response head."""
    port = int(cloud.objectstore_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                break
            head += chunk
    return head.partition(b"\r\n\r\n")[0]


def test_raw_names_any_method_and_title_cased_headers(cloud: RunningCloud, swift: Swift,
                                                      container: str) -> None:
    auth = f"X-Auth-Token: {swift.token}\r\nHost: x\r\n".encode()
    base = f"/v1/{swift.account}/{container}".encode()
    head = send_raw(cloud, b"PUT " + base + b"/\xe2\x98\x83 HTTP/1.1\r\n" + auth +
                    b"Content-Length: 2\r\nX-Object-Meta-A1b: v\r\n\r\nhi")
    assert head.startswith(b"HTTP/1.1 201 ")
    assert swift.get(f"{container}/\u2603").content == b"hi"
    head = send_raw(cloud, b"HEAD " + base + b"/\xe2\x98\x83 HTTP/1.1\r\n" + auth + b"\r\n")
    assert b"\r\nX-Object-Meta-A1B: v\r\n" in head and b"\r\nEtag: " in head
    head = send_raw(cloud, b"GET " + base + b"/\xff HTTP/1.1\r\n" + auth + b"\r\n")
    assert head.startswith(b"HTTP/1.1 412 ")
    head = send_raw(cloud, b"LICK " + base + b" HTTP/1.1\r\n" + auth + b"\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    head = send_raw(cloud, b"PUT " + base + b"/nolength HTTP/1.1\r\n" + auth +
                    b"\r\nthe body without a length")
    assert head.startswith(b"HTTP/1.1 411 ")
