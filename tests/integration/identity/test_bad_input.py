"""Bad input gets a 4xx in Keystone's error format, never a 500 (and no traceback in the log).

Each case is (method, path, body, content type, expected status); ``body`` is raw bytes, or
a JSON-able value. ``{admin}`` in a path is the bootstrap admin's user id.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api, assert_error

PASSWORD = {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": "pocketstack-test-admin"}}}


def _auth(identity: Any = None, scope: Any = "absent") -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": PASSWORD if identity is None else identity}
    if scope != "absent":
        auth["scope"] = scope
    return {"auth": auth}


CASES: list[tuple[str, str, Any, str, int]] = [
    # malformed bodies
    ("POST", "/users", b"{not json", "application/json", 400),
    ("POST", "/users", b"\xff\xfe\x00", "application/json", 400),
    ("POST", "/users", b"[]", "application/json", 400),
    ("POST", "/users", b"", "application/json", 400),
    ("POST", "/users", b'{"user": {"name": "x"}}', "text/plain", 415),
    ("POST", "/users", {"user": "not-an-object"}, "application/json", 400),
    # wrong types
    ("POST", "/users", {"user": {"name": "x", "enabled": "yes"}}, "application/json", 400),
    ("POST", "/users", {"user": {"name": 42}}, "application/json", 400),
    ("POST", "/users", {"user": {"name": "x", "password": 42}}, "application/json", 400),
    ("POST", "/projects", {"project": {"name": "x", "tags": "a"}}, "application/json", 400),
    ("POST", "/projects", {"project": {"name": "x", "enabled": 1}}, "application/json", 400),
    ("PATCH", "/users/{admin}", {"user": {"enabled": "no"}}, "application/json", 400),
    ("POST", "/regions", {"region": {"description": ["x"]}}, "application/json", 400),
    ("POST", "/credentials", {"credential": {"type": "ec2", "user_id": "{admin}",
                                             "blob": {"access": "x"}}},
     "application/json", 400),
    ("POST", "/credentials", {"credential": {"type": "ec2", "user_id": "{admin}",
                                             "project_id": "p", "blob": "not json"}},
     "application/json", 400),
    # unknown top-level keys and unknown attributes of closed entities
    ("POST", "/users", {"user": {"name": "x"}, "extra": 1}, "application/json", 400),
    ("POST", "/domains", {"domain": {"name": "x", "colour": "red"}}, "application/json", 400),
    ("POST", "/users/{admin}/password", {"user": {"password": "a", "original_password": "b",
                                                  "more": 1}}, "application/json", 400),
    # missing required fields
    ("POST", "/users", {"user": {}}, "application/json", 400),
    ("POST", "/users", {}, "application/json", 400),
    ("POST", "/roles", {"role": {"description": "x"}}, "application/json", 400),
    ("POST", "/services", {"service": {}}, "application/json", 400),
    ("POST", "/endpoints", {"endpoint": {"interface": "public"}}, "application/json", 400),
    ("POST", "/credentials", {"credential": {"type": "ec2"}}, "application/json", 400),
    ("POST", "/users/{admin}/application_credentials", {"application_credential": {}},
     "application/json", 400),
    ("POST", "/users/{admin}/application_credentials", {"application_credential": {
        "name": "x", "expires_at": "tomorrow"}}, "application/json", 400),
    ("POST", "/users/{admin}/application_credentials", {"application_credential": {
        "name": "x", "roles": [{"id": None}]}}, "application/json", 400),
    ("POST", "/users/{admin}/application_credentials", {"application_credential": {
        "name": "x", "access_rules": [{"id": None, "path": "/x"}]}}, "application/json", 400),
    ("PUT", "/projects/{project}/tags", {"tag": []}, "application/json", 400),
    # bad values
    ("POST", "/domains", {"domain": {"name": ""}}, "application/json", 400),
    ("POST", "/users", {"user": {"name": "x" * 256}}, "application/json", 400),
    ("POST", "/users", {"user": {"name": "x", "password": "p" * 5000}},
     "application/json", 403),
    ("POST", "/projects", {"project": {"name": "x", "domain_id": "nope"}},
     "application/json", 400),
    ("POST", "/projects", {"project": {"name": "x", "is_domain": True}},
     "application/json", 400),
    ("GET", "/role_assignments?scope.OS-INHERIT:inherited_to=domains", None,
     "application/json", 400),
    # missing scopes, ids and auth parts
    ("POST", "/auth/tokens", {}, "application/json", 400),
    ("POST", "/auth/tokens", {"auth": {}}, "application/json", 400),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"]}}},
     "application/json", 400),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": "password"}}},
     "application/json", 400),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": []}}}, "application/json", 400),
    ("POST", "/auth/tokens", _auth({"methods": ["password"], "password": {"user": {
        "password": "x"}}}), "application/json", 400),
    ("POST", "/auth/tokens", _auth({"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "x"}}}), "application/json", 400),
    ("POST", "/auth/tokens", _auth({"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": "default", "password": "x"}}}), "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope={}), "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope={"project": {}}), "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope={"project": {"name": "admin"}}),
     "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope={"domain": {}}), "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope={"system": {"all": False}}), "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope={"project": {"id": "x"}, "domain": {"id": "y"}}),
     "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope="everything"), "application/json", 400),
    ("POST", "/auth/tokens", _auth(scope={"OS-TRUST:trust": {"id": "x"}}),
     "application/json", 403),
    ("POST", "/auth/tokens", _auth(scope={"project": {"id": "no-such-project"}}),
     "application/json", 401),
    ("POST", "/auth/tokens", _auth({"methods": ["application_credential"],
                                    "application_credential": {"secret": "x"}}),
     "application/json", 400),
    ("POST", "/auth/tokens", _auth({"methods": ["token"], "token": {}}), "application/json",
     400),
    # unknown auth methods, invalid tokens
    ("POST", "/auth/tokens", _auth({"methods": ["kerberos"], "kerberos": {}}),
     "application/json", 401),
    ("POST", "/auth/tokens", _auth({"methods": ["token"], "token": {"id": "garbage"}}),
     "application/json", 401),
    ("POST", "/auth/tokens", _auth({"methods": ["application_credential"],
                                    "application_credential": {"id": "x", "secret": "y"}}),
     "application/json", 401),
    # unknown paths and methods
    ("GET", "/no-such-collection", None, "application/json", 404),
    ("GET", "/users/no-such-user", None, "application/json", 404),
    ("PUT", "/users", {}, "application/json", 405),
    ("GET", "/users/{admin}/password", None, "application/json", 405),
]


def _ids(case: tuple[str, str, Any, str, int]) -> str:
    method, path, body, _, status = case
    text = body.decode("latin-1") if isinstance(body, bytes) else json.dumps(body)
    return f"{status}-{method}-{path}-{text[:40]}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_bad_input_is_a_keystone_4xx(cloud: RunningCloud, api: Api,
                                     case: tuple[str, str, Any, str, int]) -> None:
    method, path, body, content_type, status = case
    token = api.ok(api.validate(api.token or ""))["token"]
    ids = {"{admin}": token["user"]["id"], "{project}": token["project"]["id"]}
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    for name, value in ids.items():
        path = path.replace(name, value)
        body = body.replace(name.encode(), value.encode()) if body else body
    client = api.as_token(None) if path == "/auth/tokens" else api
    response = client.request(method, path, content=body,
                              headers={"Content-Type": content_type})
    assert_error(response, status)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-openstack-request-id"].startswith("req-")
    _no_traceback(cloud)


def test_huge_bodies_are_413(cloud: RunningCloud, api: Api) -> None:
    limit = 114688  # [identity] max_request_body_size default
    big = json.dumps({"user": {"name": "x", "description": "d" * limit}}).encode()
    assert_error(api.post("/users", content=big, headers={"Content-Type": "application/json"}),
                 413)

    def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        for _ in range(limit // 8192 + 2):
            yield b" " * 8192

    response = httpx.post(f"{cloud.auth_url}/users", content=chunks(),
                          headers={"X-Auth-Token": api.token or "",
                                   "Content-Type": "application/json"})
    assert_error(response, 413)
    assert_error(httpx.post(f"{cloud.auth_url}/auth/tokens", content=big,
                            headers={"Content-Type": "application/json"}), 413)
    _no_traceback(cloud)


def test_invalid_tokens_are_401(cloud: RunningCloud, api: Api) -> None:
    for token in ("garbage", "gAAAAA" + "x" * 150, "a" * 5000, api.token[:-2] + "xx"):  # type: ignore[index]
        assert_error(api.get("/users", token=token), 401)
    response = api.as_token(None).get("/users")
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Keystone uri=")
    _no_traceback(cloud)


def _no_traceback(cloud: RunningCloud) -> None:
    log = cloud.log()
    assert "Traceback" not in log and '" 500 ' not in log, log[-4000:]
