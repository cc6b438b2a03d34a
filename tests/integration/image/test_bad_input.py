"""Bad input gets Glance's 4xx with Glance's error body, never a 500 and never a traceback
in the cloud's log (checked after every test)."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.image.support import PATCH, Glance, ServiceAccount

BAD_PATCHES: list[tuple[Any, int]] = [
    ([{"op": "move", "path": "/name", "value": "x"}], 400),
    ([{"op": "add", "path": "name", "value": "x"}], 400),
    ([{"op": "add", "path": "/a/b", "value": "x"}], 400),
    ([{"op": "add", "path": "/a"}], 400),
    ({"op": "add", "path": "/a", "value": "x"}, 400),
    (["add"], 400),
    ([{"op": "replace", "path": "/visibility", "value": "galactic"}], 400),
    ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400),
    ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
    ([{"op": "add", "path": "/custom", "value": 42}], 400),
    ([{"op": "replace", "path": "/status", "value": "active"}], 403),
    ([{"op": "replace", "path": "/id", "value": "x"}], 403),
    ([{"op": "add", "path": "/os_glance_secret", "value": "x"}], 403),
    ([{"op": "remove", "path": "/name"}], 403),
    ([{"op": "add", "path": "/locations/-", "value": {"url": "x", "metadata": {}}}], 403),
    ([{"op": "replace", "path": "/nope", "value": "x"}], 409),
    ([{"op": "remove", "path": "/nope"}], 409),
]


@pytest.fixture(autouse=True)
def no_server_errors(cloud: RunningCloud) -> Iterator[None]:
    """No bad request of a test may leave a 5xx or an error (traceback) in the log."""
    start = len(cloud.log())
    yield
    new = cloud.log()[start:]
    assert not re.search(r"ERROR .* /v2/\S* failed", new), new
    assert not re.search(r'image \S+ "[A-Z]+ /v2/\S*" 5\d\d ', new), new


def glance_error(response: httpx.Response, status: int) -> str:
    """``response`` is a Glance (webob) JSON error with ``status``; returns the message."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"message", "code", "title"}
    assert body["code"].startswith(f"{status} ") and body["code"].endswith(body["title"])
    assert body["message"].endswith("<br /><br />\n\n\n")
    return str(body["message"])


@pytest.mark.parametrize(("ops", "status"), BAD_PATCHES)
def test_bad_patches(glance: Glance, ops: Any, status: int) -> None:
    image = glance.create()
    response = glance.http.patch(f"/v2/images/{image['id']}", content=json.dumps(ops),
                                 headers={"Content-Type": PATCH})
    glance_error(response, status)
    assert glance.show(image["id"])["name"] == image["name"]  # nothing half-applied


def test_patch_needs_glance_s_media_type(glance: Glance) -> None:
    image = glance.create()
    for content_type in ("application/json", "application/json-patch+json", ""):
        response = glance.patch(image["id"], {"op": "replace", "path": "/name", "value": "x"},
                                content_type=content_type)
        glance_error(response, 415)
        assert "openstack-images-v2.1-json-patch" in response.headers["accept-patch"]
    response = glance.http.patch(f"/v2/images/{image['id']}", content=b"{not json",
                                 headers={"Content-Type": PATCH})
    glance_error(response, 400)


@pytest.mark.parametrize(("body", "status"), [
    ({"visibility": "galactic"}, 400), ({"name": "x" * 256}, 400), ({"tags": "one"}, 400),
    ({"min_disk": -1}, 400), ({"id": "not-a-uuid"}, 400), ({"status": "active"}, 403),
    ({"checksum": "0" * 32}, 403), ({"self": "/x"}, 403), ({"deleted": "true"}, 403),
    ({"custom": {"nested": 1}}, 400), (["a list"], 400),
])
def test_bad_creates(glance: Glance, body: Any, status: int) -> None:
    response = glance.http.post("/v2/images", json=body)
    glance_error(response, status)


def test_malformed_bodies(glance: Glance) -> None:
    glance_error(glance.http.post("/v2/images", content=b"{broken",
                                  headers={"Content-Type": "application/json"}), 400)
    glance_error(glance.http.post("/v2/images", content=b""), 400)
    glance_error(glance.http.post("/v2/images", content=b"x" * 70000), 413)


def test_upload_mistakes(glance: Glance) -> None:
    image = glance.create(disk_format="raw", container_format="bare")
    wrong = glance.http.put(f"/v2/images/{image['id']}/file", content=b"data",
                            headers={"Content-Type": "application/json"})
    glance_error(wrong, 415)
    assert glance.show(image["id"])["status"] == "queued"
    assert glance.upload(image["id"], b"data").status_code == 204
    again = glance.upload(image["id"], b"other data")
    message = glance_error(again, 409)
    assert message.startswith("Image status transition from active to saving is not allowed")
    assert glance.http.get(f"/v2/images/{image['id']}/file").content == b"data"
    glance_error(glance.upload("00000000-0000-0000-0000-000000000000", b"x"), 404)


def test_protected_delete(glance: Glance) -> None:
    image = glance.create(protected=True)
    message = glance_error(glance.http.delete(f"/v2/images/{image['id']}"), 403)
    assert "is protected and cannot be deleted" in message
    assert glance.patch(image["id"], {"op": "replace", "path": "/protected",
                                      "value": False}).status_code == 200
    assert glance.http.delete(f"/v2/images/{image['id']}").status_code == 204
    glance_error(glance.http.delete(f"/v2/images/{image['id']}"), 404)


@pytest.mark.parametrize("params", [
    {"limit": "x"}, {"limit": "-1"}, {"sort_key": "owner"}, {"sort_dir": "sideways"},
    {"sort": "name:up"}, {"visibility": "galactic"}, {"member_status": "maybe"},
    {"os_hidden": "perhaps"}, {"size_min": "big"}, {"changes-since": "2020-01-01"},
    {"created_at": "after:2020-01-01T00:00:00Z"}, {"marker": "no-such-image"},
])
def test_bad_list_queries(glance: Glance, params: dict[str, str]) -> None:
    glance_error(glance.http.get("/v2/images", params=params), 400)


def test_bad_ranges_and_members(glance: Glance) -> None:
    image = glance.active(b"0123456789", visibility="shared")
    response = glance.http.get(f"/v2/images/{image['id']}/file",
                               headers={"Range": "bytes=20-30"})
    glance_error(response, 416)
    assert response.headers["content-range"] == "bytes */10"
    members = f"/v2/images/{image['id']}/members"
    glance_error(glance.http.post(members, json={}), 400)
    glance_error(glance.http.post(members, json={"member": ""}), 400)
    assert glance.http.post(members, json={"member": "p-one"}).status_code == 200
    glance_error(glance.http.post(members, json={"member": "p-one"}), 409)
    glance_error(glance.http.put(f"{members}/p-nobody", json={"status": "accepted"}), 404)
    glance_error(glance.http.get(f"{members}/p-nobody"), 404)


def test_unknown_paths_and_methods(glance: Glance) -> None:
    glance_error(glance.http.get("/v2/nothing-here"), 404)
    glance_error(glance.http.get("/v2/images/x/nothing"), 404)
    response = glance.http.put("/v2/images")
    glance_error(response, 405)
    assert "POST" in response.headers["allow"]


def test_an_upload_cut_short_kills_the_image(cloud: RunningCloud, glance: Glance,
                                             service_account: ServiceAccount) -> None:
    image = glance.create(disk_format="raw", container_format="bare")
    token = glance.http.headers["X-Auth-Token"]
    with socket.create_connection(("127.0.0.1", cloud.ports["image"])) as sock:
        sock.sendall(f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\nHost: glance\r\n"
                     f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
                     f"Content-Length: 10000000\r\n\r\n".encode() + b"x" * 1000000)
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while glance.show(image["id"])["status"] != "killed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert service_account.get(image["id"]).status_code == 404
    assert glance.http.get(f"/v2/images/{image['id']}/file").status_code == 204
    assert glance.http.delete(f"/v2/images/{image['id']}").status_code == 204
