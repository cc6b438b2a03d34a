"""Tokens: issue, validate, check, revoke, rescope; project, domain and system scope;
``/v3/auth/{catalog,projects,domains,system}``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import (
    Api,
    admin_env,
    assert_error,
    make_persona,
    osc,
    password_auth,
)

from pocketstack.identity.tokens import FernetKeyRepository, TokenFormatter, TokenPayload


def test_cli_token_issue_validate_check_revoke(cloud: RunningCloud, api: Api) -> None:
    issued = cloud.openstack("token", "issue")
    token = issued["id"]
    body = api.ok(api.validate(token))["token"]
    assert body["project"]["id"] == issued["project_id"]
    assert body["project"]["name"] == "admin" and body["is_admin_project"] is True
    assert body["user"]["id"] == issued["user_id"] and body["user"]["name"] == "admin"
    assert body["user"]["domain"] == {"id": "default", "name": "Default"}
    assert body["methods"] == ["password"] and len(body["audit_ids"]) == 1
    assert {"admin", "member", "reader"} <= {r["name"] for r in body["roles"]}
    assert {s["type"] for s in body["catalog"]} >= {"identity"}
    assert body["expires_at"].endswith("Z") and body["issued_at"].endswith("Z")
    assert "catalog" not in api.ok(api.validate(token, nocatalog=1))["token"]
    head = api.head("/auth/tokens", headers={"X-Subject-Token": token})
    assert head.status_code == 200 and head.headers["X-Subject-Token"] == token
    assert not head.content

    osc(cloud, "token", "revoke", token)
    assert_error(api.validate(token), 404)
    assert api.head("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 404
    assert_error(api.get("/projects", token=token), 401)


def test_validate_needs_subject_and_a_valid_caller(api: Api) -> None:
    assert_error(api.get("/auth/tokens"), 400)
    assert_error(api.validate("not-a-token"), 404)
    assert_error(api.get("/auth/tokens", token="not-a-token",
                         headers={"X-Subject-Token": api.token or ""}), 401)
    assert_error(api.as_token(None).validate(api.token or ""), 401)


def test_user_validates_own_token_only(api: Api) -> None:
    member = make_persona(api, "member")
    mine = api.as_token(member.token)
    assert mine.validate(member.token).status_code == 200
    assert_error(mine.validate(api.token or ""), 403)
    assert mine.delete("/auth/tokens", headers={"X-Subject-Token": member.token}
                       ).status_code == 204
    assert_error(api.validate(member.token), 404)


def test_allow_expired(cloud: RunningCloud, api: Api) -> None:
    """A token past its expiry validates only with ?allow_expired (services use that for
    long-running operations); the token is sealed with the cloud's own keys."""
    repo = FernetKeyRepository(cloud.data_dir / "keys" / "fernet")
    admin_id = api.ok(api.get("/users", params={"name": "admin"}))["users"][0]["id"]
    project_id = api.ok(api.validate(api.token or ""))["token"]["project"]["id"]
    now = datetime.now(UTC)
    payload = TokenPayload(user_id=admin_id, methods=("password",),
                           expires_at=now - timedelta(seconds=30),
                           audit_ids=("AAAAAAAAAAAAAAAAAAAAAA",), project_id=project_id)
    token = TokenFormatter.from_repository(repo).pack(payload, now=now.timestamp() - 60)
    assert_error(api.validate(token), 404)
    body = api.ok(api.validate(token, allow_expired=1))["token"]
    assert body["project"]["id"] == project_id
    assert_error(api.get("/projects", token=token), 401)


def test_rescope_unscoped_token_keeps_expiry_and_audit_chain(api: Api) -> None:
    member = make_persona(api, "member")
    unscoped = api.issue(password_auth(user_id=member.id, password=member.password))
    assert unscoped.status_code == 201
    parent = unscoped.json()["token"]
    assert not {"project", "domain", "system", "roles", "catalog"} & parent.keys()
    assert member.project is not None
    rescoped = api.issue({"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped.headers["X-Subject-Token"]}},
        "scope": {"project": {"name": member.project["name"], "domain": {"name": "Default"}}}}})
    assert rescoped.status_code == 201, rescoped.text
    child = rescoped.json()["token"]
    assert child["project"]["id"] == member.project["id"]
    assert child["expires_at"] == parent["expires_at"]
    assert child["audit_ids"][1] == parent["audit_ids"][0] and len(child["audit_ids"]) == 2
    assert set(child["methods"]) == {"token", "password"}
    assert [r["name"] for r in child["roles"]] == ["member", "reader"]


def test_unscoped_auth_uses_default_project(api: Api) -> None:
    project = api.project()
    user = api.user(password="pw-default", default_project_id=project["id"])
    api.grant("reader", user=user["id"], project=project["id"])
    response = api.issue(password_auth(name=user["name"], password="pw-default"))
    assert response.json()["token"]["project"]["id"] == project["id"]
    explicit = api.issue(password_auth(name=user["name"], password="pw-default",
                                       scope="unscoped"))
    assert "project" not in explicit.json()["token"]


def test_cli_system_and_domain_scoped_tokens(cloud: RunningCloud, api: Api) -> None:
    system = cloud.openstack("token", "issue", env=admin_env(cloud, OS_SYSTEM_SCOPE="all"))
    assert system["system"] == "all" and "project_id" not in system
    body = api.ok(api.validate(system["id"]))["token"]
    assert body["system"] == {"all": True} and "admin" in {r["name"] for r in body["roles"]}

    domain = api.domain()
    admin_id = system["user_id"]
    api.grant("admin", user=admin_id, domain=domain["id"])
    scoped = cloud.openstack("token", "issue",
                             env=admin_env(cloud, OS_DOMAIN_NAME=domain["name"]))
    assert scoped["domain_id"] == domain["id"]
    body = api.ok(api.validate(scoped["id"]))["token"]
    assert body["domain"] == {"id": domain["id"], "name": domain["name"]}
    assert "project" not in body and "admin" in {r["name"] for r in body["roles"]}


def test_scoping_without_a_role_is_401(api: Api) -> None:
    user = api.user(password="pw-norole")
    project, domain = api.project(), api.domain()
    for scope in ({"project": {"id": project["id"]}}, {"domain": {"id": domain["id"]}},
                  {"system": {"all": True}}):
        response = api.issue(password_auth(user_id=user["id"], password="pw-norole",
                                           scope=scope))
        assert_error(response, 401)


def test_password_auth_failures_are_plain_401(api: Api) -> None:
    user = api.user(password="right-pw")
    for body in (password_auth(user_id=user["id"], password="wrong-pw"),
                 password_auth(name=user["name"], password="wrong-pw"),
                 password_auth(name="nobody-" + user["name"], password="right-pw"),
                 password_auth(name=user["name"], domain_id="no-such-domain",
                               password="right-pw")):
        error = assert_error(api.issue(body), 401)
        assert "wrong" not in error["message"].lower()
    ok = api.issue({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user["name"], "domain": {"name": "Default"}, "password": "right-pw"}}}}})
    assert ok.status_code == 201


def test_auth_listings(api: Api) -> None:
    member = make_persona(api, "member")
    mine = api.as_token(member.token)
    catalog = api.ok(mine.get("/auth/catalog"))["catalog"]
    assert "identity" in {s["type"] for s in catalog}
    projects = api.ok(mine.get("/auth/projects"))["projects"]
    assert [p["id"] for p in projects] == [member.project["id"]]  # type: ignore[index]
    assert api.ok(mine.get("/auth/domains"))["domains"] == []
    assert api.ok(mine.get("/auth/system"))["system"] == []
    assert api.ok(api.get("/auth/system"))["system"] == [{"all": True}]

    domain = api.domain()
    api.grant("reader", user=member.id, domain=domain["id"])
    assert [d["id"] for d in api.ok(mine.get("/auth/domains"))["domains"]] == [domain["id"]]

    unscoped = api.token_for(user_id=member.id, password=member.password)
    assert_error(api.as_token(unscoped).get("/auth/catalog"), 403)
    assert len(api.ok(api.as_token(unscoped).get("/auth/projects"))["projects"]) == 1
