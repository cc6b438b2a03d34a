"""The plain ASGI token route answers exactly as the FastAPI routes it stands in front of.

Each request goes to two apps over the same hub: one with :class:`TokenRoutes` (the default)
and one with ``fast_tokens=False`` (FastAPI's routes, the behaviour before the fast route).
Status, header names in order, header values and bodies must be equal; only what differs by
nature (request ids, a new token's id, audit id and issue time) is compared by shape.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pocketstack.common.policy import PolicyEngine
from pocketstack.identity.api.app import create_app
from pocketstack.identity.policies import RULES
from pocketstack.identity.service.assignment import Actor, Target
from pocketstack.identity.service.hub import Identity
from pocketstack.identity.tokens import TokenPayload

PATH = "/v3/auth/tokens"
Request = tuple[str, str, dict[str, str], bytes | None]


class Pair:
    """The same hub behind the fast route and behind FastAPI's routes only; ``reached``
    counts, per app, the token requests that got as far as FastAPI."""

    def __init__(self, hub: Identity, monkeypatch: pytest.MonkeyPatch) -> None:
        policy = PolicyEngine(RULES)
        self.fast = create_app(hub, policy, access_log=False)
        self.slow = create_app(hub, policy, access_log=False, fast_tokens=False)
        self.reached = {"fast": 0, "slow": 0}
        self._current = "fast"
        original = FastAPI.__call__

        async def spy(app: FastAPI, scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == PATH and scope["method"] in ("GET", "HEAD", "POST"):
                self.reached[self._current] += 1
            await original(app, scope, receive, send)

        monkeypatch.setattr(FastAPI, "__call__", spy)

    def both(self, method: str, url: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[httpx.Response, httpx.Response]:
        async def call(app: Any) -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport,
                                         base_url="http://keystone.test:5000") as client:
                return await client.request(method, url, headers=headers, content=body)

        async def run() -> tuple[httpx.Response, httpx.Response]:
            self._current = "fast"
            fast = await call(self.fast)
            self._current = "slow"
            return fast, await call(self.slow)

        return asyncio.run(run())


@pytest.fixture
def pair(hub: Identity, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    _add_catalog(hub)
    pair = Pair(hub, monkeypatch)
    yield pair
    assert pair.reached["fast"] == 0 and pair.reached["slow"] > 0


def _add_catalog(hub: Identity) -> None:
    catalog = hub.catalog
    service = catalog.create_service({"type": "object-store", "name": "swift"})
    catalog.create_endpoint({"service_id": service["id"], "interface": "public",
                             "url": "http://swift.test/v1/AUTH_$(project_id)s"})


def _same(fast: httpx.Response, slow: httpx.Response, *, new_token: bool = False) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert [k for k, _ in fast.headers.raw] == [k for k, _ in slow.headers.raw]
    for (name, a), (_, b) in zip(fast.headers.raw, slow.headers.raw, strict=True):
        if name == b"x-openstack-request-id":
            assert a.startswith(b"req-") and b.startswith(b"req-") and len(a) == len(b)
        elif name == b"x-subject-token" and new_token:
            assert a != b
        elif name == b"content-length" and new_token:
            continue
        else:
            assert a == b, name
    if not new_token:
        assert fast.content == slow.content
        return
    a, b = json.loads(fast.content)["token"], json.loads(slow.content)["token"]
    for key in ("audit_ids", "issued_at"):
        assert len(a.pop(key)) == len(b.pop(key))
    if a["methods"] == ["password"]:
        a.pop("expires_at"), b.pop("expires_at")
    assert a == b


def _token(hub: Identity, **scope: Any) -> str:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}}}}
    if scope:
        auth["scope"] = scope
    return hub.auth.authenticate(auth).token_id


def _member(hub: Identity) -> str:
    project = hub.resource.create_project({"name": uuid.uuid4().hex})
    user = hub.users.create_user({"name": uuid.uuid4().hex, "password": "pw"})
    hub.assignments.create_grant(hub.assignments.find_role("member")["id"],
                                 Actor(user_id=user["id"]), Target(project_id=project["id"]))
    return hub.auth.authenticate({
        "identity": {"methods": ["password"], "password": {"user": {
            "id": user["id"], "password": "pw"}}},
        "scope": {"project": {"id": project["id"]}}}).token_id


def test_validate_and_check_answer_as_fastapi_does(hub: Identity, pair: Pair) -> None:
    admin = _token(hub, project={"name": "admin", "domain": {"id": "default"}})
    unscoped = _token(hub)
    revoked = _token(hub, project={"name": "admin", "domain": {"id": "default"}})
    hub.tokens.revoke(revoked)
    member = _member(hub)
    both = {"X-Auth-Token": admin, "X-Subject-Token": admin}
    cases: list[Request] = [
        ("GET", PATH, {}, None),
        ("GET", PATH, {"X-Auth-Token": admin}, None),
        ("GET", PATH, {"X-Auth-Token": admin, "X-Subject-Token": ""}, None),
        ("GET", PATH, {"X-Auth-Token": "garbage", "X-Subject-Token": admin}, None),
        ("GET", PATH, {"X-Auth-Token": admin, "X-Subject-Token": "garbage"}, None),
        ("GET", PATH, {"X-Auth-Token": admin, "X-Subject-Token": revoked}, None),
        ("GET", PATH, {"X-Auth-Token": revoked, "X-Subject-Token": admin}, None),
        ("GET", PATH, both, None),
        ("GET", PATH + "?nocatalog", both, None),
        ("GET", PATH + "?nocatalog=0", both, None),
        ("GET", PATH + "?nocatalog=1&allow_expired=1", both, None),
        ("GET", PATH, {"X-Auth-Token": admin, "X-Subject-Token": unscoped}, None),
        ("GET", PATH, {"X-Auth-Token": member, "X-Subject-Token": admin}, None),
        ("GET", PATH, {"X-Auth-Token": member, "X-Subject-Token": member}, None),
        ("HEAD", PATH, both, None),
        ("HEAD", PATH, {"X-Auth-Token": admin, "X-Subject-Token": "garbage"}, None),
        ("HEAD", PATH, {"X-Subject-Token": admin}, None),
        ("PUT", PATH, both, None),
        ("GET", PATH + "/", both, None),
    ]
    for method, url, headers, body in cases:
        fast, slow = pair.both(method, url, headers, body)
        _same(fast, slow)
    fast, _ = pair.both("GET", PATH, both)
    assert fast.status_code == 200 and b"http://swift.test/v1/AUTH_" in fast.content


def test_allow_expired_answers_as_fastapi_does(hub: Identity, pair: Pair) -> None:
    admin = _token(hub, project={"name": "admin", "domain": {"id": "default"}})
    parent = hub.tokens.validate(admin).payload
    expired = hub.tokens.formatter.pack(TokenPayload(
        user_id=parent.user_id, methods=("password",),
        expires_at=datetime.now(UTC) - timedelta(minutes=5), audit_ids=parent.audit_ids,
        project_id=parent.project_id))
    headers = {"X-Auth-Token": admin, "X-Subject-Token": expired}
    for url in (PATH, PATH + "?allow_expired=1", PATH + "?allow_expired=false"):
        fast, slow = pair.both("GET", url, headers)
        _same(fast, slow)


def test_issue_answers_as_fastapi_does(hub: Identity, pair: Pair) -> None:
    admin = _token(hub, project={"name": "admin", "domain": {"id": "default"}})
    password = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": admin}},
                        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    json_type = {"Content-Type": "application/json"}
    issued: list[tuple[str, dict[str, str], Any]] = [
        (PATH, json_type, password),
        (PATH + "?nocatalog", json_type, password),
        (PATH, json_type, rescope),
        (PATH + "?nocatalog", json_type, rescope),
        (PATH, {}, {"auth": {"identity": {"methods": ["token"], "token": {"id": admin}},
                             "scope": "unscoped"}}),
    ]
    for url, headers, body in issued:
        fast, slow = pair.both("POST", url, headers, json.dumps(body).encode())
        _same(fast, slow, new_token=True)
    wrong = json.loads(json.dumps(password))
    wrong["auth"]["identity"]["password"]["user"]["password"] = "nope"
    refused: list[tuple[dict[str, str], bytes]] = [
        (json_type, b"{not json"),
        (json_type, b"[]"),
        ({"Content-Type": "text/plain"}, b"{}"),
        (json_type, b"{}"),
        (json_type, json.dumps({"auth": {}, "extra": 1}).encode()),
        (json_type, json.dumps(wrong).encode()),
        (json_type, json.dumps({"auth": {"identity": {"methods": ["token"],
                                                      "token": {"id": "garbage"}}}}).encode()),
        (json_type, json.dumps({"auth": {"identity": {"methods": ["token"], "token": {
            "id": admin}}, "scope": {"project": {"name": "nope",
                                                 "domain": {"id": "default"}}}}}).encode()),
        ({**json_type, "X-Auth-Token": "garbage"}, json.dumps(rescope).encode()),
    ]
    for headers, raw in refused:
        fast, slow = pair.both("POST", PATH, headers, raw)
        _same(fast, slow)
