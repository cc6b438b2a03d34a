"""Token revocation: what must kill a token at once, and what must not."""

from __future__ import annotations

from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import (
    Api,
    Persona,
    assert_error,
    make_persona,
    osc,
    password_auth,
)


def _dead(api: Api, token: str) -> None:
    assert_error(api.validate(token), 404)
    assert_error(api.as_token(token).get("/auth/projects"), 401)


def _alive(api: Api, token: str) -> None:
    assert api.validate(token).status_code == 200


def _scoped_token(api: Api, who: Persona, password: str | None = None) -> str:
    assert who.project is not None
    return api.token_for(user_id=who.id, password=password or who.password,
                         scope={"project": {"id": who.project["id"]}})


def test_self_service_password_change(cloud: RunningCloud, api: Api) -> None:
    who = make_persona(api, "member")
    other = make_persona(api, "member")
    osc(cloud, "user", "password", "set", "--original-password", who.password,
        "--password", "brand-new-pw", env=who.cli_env(cloud))
    _dead(api, who.token)
    _alive(api, other.token)
    fresh = _scoped_token(api, who, "brand-new-pw")  # issued in the same second: still good
    _alive(api, fresh)
    assert_error(api.issue(password_auth(user_id=who.id, password=who.password)), 401)

    # Keystone's contract: no policy, the original password is the proof (no token needed).
    path = f"/users/{who.id}/password"
    wrong = {"user": {"original_password": "not-it", "password": "x-pw-1"}}
    assert_error(api.as_token(None).post(path, json=wrong), 401)
    right = {"user": {"original_password": "brand-new-pw", "password": "x-pw-2"}}
    assert api.as_token(None).post(path, json=right).status_code == 204
    _dead(api, fresh)
    assert_error(api.as_token(None).post(f"/users/{'0' * 32}/password", json=right), 401)


def test_admin_password_reset_and_disable(cloud: RunningCloud, api: Api) -> None:
    who = make_persona(api, "member")
    osc(cloud, "user", "set", "--password", "reset-by-admin", who.id)
    _dead(api, who.token)
    token = _scoped_token(api, who, "reset-by-admin")
    _alive(api, token)

    osc(cloud, "user", "set", "--disable", who.id)
    _dead(api, token)
    assert_error(api.issue(password_auth(user_id=who.id, password="reset-by-admin")), 401)
    api.ok(api.patch(f"/users/{who.id}", json={"user": {"enabled": True}}))
    _alive(api, _scoped_token(api, who, "reset-by-admin"))


def test_disabled_or_deleted_project(api: Api) -> None:
    who = make_persona(api, "member")
    assert who.project is not None
    unscoped = api.token_for(user_id=who.id, password=who.password)
    api.ok(api.patch(f"/projects/{who.project['id']}", json={"project": {"enabled": False}}))
    _dead(api, who.token)
    _alive(api, unscoped)
    response = api.issue(password_auth(user_id=who.id, password=who.password,
                                       scope={"project": {"id": who.project["id"]}}))
    assert_error(response, 401)
    api.ok(api.patch(f"/projects/{who.project['id']}", json={"project": {"enabled": True}}))
    token = _scoped_token(api, who)
    assert api.delete(f"/projects/{who.project['id']}").status_code == 204
    _dead(api, token)
    _alive(api, unscoped)


def test_disabled_domain(api: Api) -> None:
    domain = api.domain()
    who = make_persona(api, "member", user_domain=domain["id"])
    api.ok(api.patch(f"/domains/{domain['id']}", json={"domain": {"enabled": False}}))
    _dead(api, who.token)
    assert_error(api.issue(password_auth(user_id=who.id, password=who.password)), 401)


def test_role_removal_revokes_project_tokens(api: Api) -> None:
    who = make_persona(api, "member")
    assert who.project is not None
    elsewhere = api.project()
    api.grant("reader", user=who.id, project=elsewhere["id"])
    other_token = api.token_for(user_id=who.id, password=who.password,
                                scope={"project": {"id": elsewhere["id"]}})
    member = api.role_id("member")
    api.ok(api.delete(f"/projects/{who.project['id']}/users/{who.id}/roles/{member}"))
    _dead(api, who.token)
    _alive(api, other_token)
    assert_error(api.issue(password_auth(user_id=who.id, password=who.password,
                                         scope={"project": {"id": who.project["id"]}})), 401)


def test_group_removal_revokes(api: Api) -> None:
    project = api.project()
    group = api.group()
    api.grant("member", group=group["id"], project=project["id"])
    user = api.user(password="pw-grp")
    api.ok(api.put(f"/groups/{group['id']}/users/{user['id']}"))
    token = api.token_for(user_id=user["id"], password="pw-grp",
                          scope={"project": {"id": project["id"]}})
    api.ok(api.delete(f"/groups/{group['id']}/users/{user['id']}"))
    _dead(api, token)
    assert_error(api.issue(password_auth(user_id=user["id"], password="pw-grp",
                                         scope={"project": {"id": project["id"]}})), 401)

    api.ok(api.put(f"/groups/{group['id']}/users/{user['id']}"))
    token = api.token_for(user_id=user["id"], password="pw-grp",
                          scope={"project": {"id": project["id"]}})
    assert api.delete(f"/groups/{group['id']}").status_code == 204
    _dead(api, token)


def test_deleted_user_and_role(api: Api) -> None:
    who = make_persona(api, "member")
    role = api.role()
    assert who.project is not None
    api.grant(role["id"], user=who.id, project=who.project["id"])
    token = _scoped_token(api, who)
    assert api.delete(f"/roles/{role['id']}").status_code == 204
    _dead(api, token)
    token = _scoped_token(api, who)
    assert api.delete(f"/users/{who.id}").status_code == 204
    _dead(api, token)
