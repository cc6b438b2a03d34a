"""``POST /v3/auth/tokens`` in the service layer: methods, scopes, and their failures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pocketstack.identity.exceptions import TokenNotFound, Unauthorized, ValidationError
from pocketstack.identity.service.assignment import Actor, Target
from pocketstack.identity.service.hub import Identity


def _password(user_id: str, password: str, scope: Any = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
        "user": {"id": user_id, "password": password}}}}
    if scope is not None:
        auth["scope"] = scope
    return auth


@pytest.fixture
def member(hub: Identity) -> dict[str, Any]:
    project = hub.resource.create_project({"name": uuid.uuid4().hex})
    user = hub.users.create_user({"name": uuid.uuid4().hex, "password": "pw"})
    member_role = hub.assignments.find_role("member")["id"]
    hub.assignments.create_grant(member_role, Actor(user_id=user["id"]),
                                 Target(project_id=project["id"]))
    return {"user": user, "project": project}


def test_password_and_token_rescope(hub: Identity, member: dict[str, Any]) -> None:
    uid, pid = member["user"]["id"], member["project"]["id"]
    unscoped = hub.auth.authenticate(_password(uid, "pw"))
    assert unscoped.project_id is None and unscoped.role_names == []
    rescoped = hub.auth.authenticate({
        "identity": {"methods": ["token"], "token": {"id": unscoped.token_id}},
        "scope": {"project": {"id": pid}}})
    assert rescoped.project_id == pid and rescoped.expires_at == unscoped.expires_at
    assert rescoped.payload.audit_chain_id == unscoped.payload.audit_id
    with pytest.raises(ValidationError):  # the token method names its token in the body
        hub.auth.authenticate({"identity": {"methods": ["token"], "token": {}}})
    with pytest.raises(Unauthorized):
        hub.auth.authenticate(_password(uid, "wrong"))
    assert hub.auth.failures.record() >= 2  # the failure above was counted


def test_application_credential_caps_token_expiry(hub: Identity,
                                                  member: dict[str, Any]) -> None:
    uid, pid = member["user"]["id"], member["project"]["id"]
    token = hub.auth.authenticate(_password(uid, "pw", {"project": {"id": pid}}))
    soon = datetime.now(UTC) + timedelta(minutes=5)
    cred = hub.app_creds.create(uid, pid, {"name": "c", "expires_at": soon.isoformat()},
                                token.role_ids)
    info = hub.auth.authenticate({"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cred["id"], "secret": cred["secret"]}}})
    assert info.project_id == pid and info.scope.app_cred is not None
    assert info.expires_at <= soon
    assert {r["name"] for r in info.scope.roles} == {"member", "reader"}
    hub.app_creds.delete(uid, cred["id"])
    with pytest.raises(TokenNotFound):
        hub.tokens.validate(info.token_id)
