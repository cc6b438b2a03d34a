"""What every client relies on: /info, /healthcheck, transaction ids, CORS, Expect."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Swift, raw_request, uniq

TRANS_ID = re.compile(r"^tx[0-9a-f]{21}-[0-9a-f]{10}$")
# Middleware of later issues: /info must not claim any of them before they exist.
NOT_YET = ("container_sync", "s3api", "encryption", "ratelimit")


def test_info(cloud: RunningCloud) -> None:
    response = httpx.get(f"{cloud.objectstore_url}/info")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    info = response.json()
    swift = info["swift"]
    assert swift["max_file_size"] == 5 * 1024 ** 3 + 2
    assert swift["max_object_name_length"] == 1024
    assert swift["max_meta_count"] == 90 and swift["max_meta_overall_size"] == 4096
    assert swift["container_listing_limit"] == 10000
    assert "v1" in swift["valid_api_versions"]
    policies = {p["name"]: p for p in swift["policies"]}
    assert set(policies) == {"default", "single"}
    assert policies["default"].get("default") is True
    assert not policies["single"].get("default")
    assert not set(info) & set(NOT_YET), sorted(info)
    head = httpx.head(f"{cloud.objectstore_url}/info")
    assert head.status_code == 200 and head.content == b""
    assert httpx.post(f"{cloud.objectstore_url}/info").status_code == 405


def test_the_servers_run_on_uvloop(cloud: RunningCloud) -> None:
    """`pocketstack up` runs its event loop through common.eventloop: libuv wakes its loop
    through an eventfd, where asyncio's loop uses a socket pair."""
    assert cloud.process is not None
    fds = Path(f"/proc/{cloud.process.pid}/fd")
    links = {os.readlink(fd) for fd in fds.iterdir()}
    assert "anon_inode:[eventfd]" in links


def test_healthcheck(cloud: RunningCloud) -> None:
    response = httpx.get(f"{cloud.objectstore_url}/healthcheck")
    assert (response.status_code, response.text) == (200, "OK")
    assert TRANS_ID.match(response.headers["x-trans-id"])


def test_trans_id_on_every_response(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container()
    swift.put(f"{name}/o", b"abc")
    anonymous = Swift(swift.base_url, swift.account, None)
    responses = [
        swift.request("GET", name), swift.request("HEAD", f"{name}/o"),
        swift.request("PUT", f"{name}/p", content=b""), swift.request("DELETE", f"{name}/p"),
        swift.request("GET", f"{name}/o", headers={"If-None-Match": "*"}),   # 304
        swift.request("GET", f"{name}/missing"),                               # 404
        swift.request("GET", f"{name}/o", headers={"Range": "bytes=9-"}),      # 416
        swift.request("PUT", ""),                                              # 405
        swift.request("DELETE", name),                                         # 409
        anonymous.request("GET", name),                                        # 401
        httpx.get(f"{cloud.objectstore_url}/info"),
        httpx.get(f"{cloud.objectstore_url}/v1"),                               # 412
        httpx.options(f"{swift.base_url}{swift.url(name)}"),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 201, 204, 304, 404, 416, 405, 409, 401, 200, 412, 200]
    ids = set()
    for response in responses:
        trans_id = response.headers["x-trans-id"]
        assert TRANS_ID.match(trans_id), trans_id
        assert response.headers["x-openstack-request-id"] == trans_id
        ids.add(trans_id)
    assert len(ids) == len(responses)
    status, headers, _ = raw_request(cloud.objectstore_url, "GET",
                                     f"/v1/{swift.account}/%FF", {})
    assert status == 412 and TRANS_ID.match(headers["x-trans-id"])


def test_error_bodies_are_swifts(swift: Swift) -> None:
    response = swift.request("GET", f"{uniq()}/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.text == ("<html><h1>Not Found</h1><p>The resource could not be "
                             "found.</p></html>")
    head = swift.request("HEAD", f"{uniq()}/missing")
    assert head.status_code == 404 and head.content == b""


def test_cors_preflight_and_actual_request(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container(uniq(), **{
        "X-Container-Meta-Access-Control-Allow-Origin": "https://app.example",
        "X-Container-Meta-Access-Control-Max-Age": "600",
        "X-Container-Meta-Access-Control-Expose-Headers": "X-Custom"})
    swift.put(f"{name}/o", b"cors", **{"X-Object-Meta-Color": "red"})
    url = f"{swift.base_url}{swift.url(name + '/o')}"
    preflight = httpx.options(url, headers={"Origin": "https://app.example",
                                            "Access-Control-Request-Method": "GET",
                                            "Access-Control-Request-Headers": "x-auth-token"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "x-auth-token"
    assert preflight.headers["access-control-max-age"] == "600"
    denied = httpx.options(url, headers={"Origin": "https://evil.example",
                                         "Access-Control-Request-Method": "GET"})
    assert denied.status_code == 401
    assert "access-control-allow-origin" not in denied.headers
    actual = swift.get(f"{name}/o", Origin="https://app.example")
    assert actual.headers["access-control-allow-origin"] == "https://app.example"
    exposed = {h.strip() for h in actual.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "x-object-meta-color", "x-custom", "x-trans-id"} <= exposed
    other = swift.get(f"{name}/o", Origin="https://evil.example")
    assert "access-control-allow-origin" not in other.headers
    plain = httpx.options(url)
    assert plain.status_code == 200 and "GET" in plain.headers["allow"]


def test_cors_without_container_rules_is_401(swift: Swift) -> None:
    name = swift.container()
    preflight = httpx.options(f"{swift.base_url}{swift.url(name)}",
                              headers={"Origin": "https://app.example",
                                       "Access-Control-Request-Method": "PUT"})
    assert preflight.status_code == 401


def test_expect_100_continue(cloud: RunningCloud, swift: Swift, container: str) -> None:
    status, headers, _ = raw_request(
        cloud.objectstore_url, "PUT", f"/v1/{swift.account}/{container}/expect",
        {"X-Auth-Token": swift.token or "", "Content-Length": "5",
         "Expect": "100-continue"}, b"hello")
    assert status == 201
    assert swift.get(f"{container}/expect").content == b"hello"
