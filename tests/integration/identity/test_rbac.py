"""RBAC with Keystone's personas: project member / admin, domain admin / reader, system
reader / admin. A member of project A never reads or changes project B's data."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api, assert_error, make_persona, uniq

Call = tuple[str, str, dict[str, Any] | None]


def _all_forbidden(client: Api, calls: list[Call]) -> None:
    for method, path, body in calls:
        response = client.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.status_code,
                                              response.text)
        assert response.json()["error"]["code"] == 403


def test_project_member_stays_in_its_project(cloud: RunningCloud, api: Api) -> None:
    alice = make_persona(api, "member")
    bob = make_persona(api, "member")
    a, b = alice.project["id"], bob.project["id"]  # type: ignore[index]
    me = api.as_token(alice.token)
    member = api.role_id("member")

    refused = cloud.cli("openstack", "user", "list", env=alice.cli_env(cloud), check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    refused = cloud.cli("openstack", "project", "show", b, env=alice.cli_env(cloud),
                        check=False)
    assert refused.returncode != 0 and "403" in refused.stderr

    _all_forbidden(me, [
        ("GET", "/users", None), ("GET", "/projects", None), ("GET", "/domains", None),
        ("GET", "/groups", None), ("GET", "/roles", None), ("GET", "/role_assignments", None),
        ("GET", "/role_inferences", None),
        ("POST", "/users", {"user": {"name": uniq()}}),
        ("POST", "/roles", {"role": {"name": uniq()}}),
        ("POST", "/projects", {"project": {"name": uniq()}}),
        ("POST", "/domains", {"domain": {"name": uniq()}}),
        ("PATCH", f"/users/{alice.id}", {"user": {"enabled": True}}),
        ("PUT", f"/projects/{a}/users/{alice.id}/roles/{api.role_id('admin')}", None),
        ("PUT", f"/projects/{b}/users/{alice.id}/roles/{member}", None),
        ("PUT", f"/system/users/{alice.id}/roles/{member}", None),
        ("GET", f"/projects/{b}", None), ("PATCH", f"/projects/{b}", {"project": {}}),
        ("DELETE", f"/projects/{b}", None), ("GET", f"/projects/{b}/tags", None),
        ("PUT", f"/projects/{b}/tags/x", None), ("PUT", f"/projects/{a}/tags/x", None),
        ("GET", f"/users/{bob.id}", None), ("GET", f"/users/{bob.id}/projects", None),
        ("GET", f"/users/{bob.id}/groups", None),
        ("GET", f"/projects/{b}/users/{bob.id}/roles", None),
        ("GET", f"/role_assignments?scope.project.id={b}", None),
        ("GET", f"/role_assignments?scope.project.id={b}&include_subtree=1", None),
        ("GET", f"/role_assignments?user.id={alice.id}", None),
        ("DELETE", f"/users/{bob.id}", None),
    ])
    assert_error(me.get("/auth/tokens", headers={"X-Subject-Token": bob.token}), 403)
    assert_error(me.delete("/auth/tokens", headers={"X-Subject-Token": bob.token}), 403)

    assert api.ok(me.get(f"/users/{alice.id}"))["user"]["id"] == alice.id
    assert api.ok(me.get(f"/projects/{a}"))["project"]["id"] == a
    assert api.ok(me.get(f"/projects/{a}/tags"))["tags"] == []
    assert [p["id"] for p in api.ok(me.get(f"/users/{alice.id}/projects"))["projects"]] == [a]
    assert api.ok(me.get(f"/users/{alice.id}/groups"))["groups"] == []
    assert api.ok(me.get("/domains/default"))["domain"]["id"] == "default"
    assert me.get("/regions").status_code == 200


def test_project_admin_is_not_a_cloud_admin(api: Api) -> None:
    boss = make_persona(api, "admin")
    p = boss.project["id"]  # type: ignore[index]
    other = api.project()
    me = api.as_token(boss.token)
    body = api.ok(api.validate(boss.token))["token"]
    assert body["is_admin_project"] is False
    _all_forbidden(me, [
        ("GET", "/users", None), ("GET", "/projects", None),
        ("POST", "/users", {"user": {"name": uniq(), "domain_id": "default"}}),
        ("POST", "/projects", {"project": {"name": uniq(), "parent_id": p}}),
        ("POST", "/roles", {"role": {"name": uniq()}}),
        ("POST", "/domains", {"domain": {"name": uniq()}}),
        ("POST", "/services", {"service": {"type": "x"}}),
        ("PATCH", f"/projects/{p}", {"project": {"description": "mine?"}}),
        ("DELETE", f"/projects/{p}", None),
        ("GET", f"/projects/{other['id']}", None),
        ("PUT", f"/projects/{p}/users/{boss.id}/roles/{api.role_id('member')}", None),
        ("PUT", f"/system/users/{boss.id}/roles/{api.role_id('admin')}", None),
        ("GET", "/role_assignments", None),
        ("PATCH", f"/domains/{api.ok(api.get(f'/projects/{p}'))['project']['domain_id']}",
         {"domain": {"description": "x"}}),
    ])
    # ...but administers its own project's tags and sees its tree's assignments.
    assert me.put(f"/projects/{p}/tags/mine").status_code == 201
    assert api.ok(me.put(f"/projects/{p}/tags", json={"tags": ["a"]}))["tags"] == ["a"]
    tree = api.ok(me.get("/role_assignments", params={"scope.project.id": p,
                                                      "include_subtree": 1}))
    assert {a["user"]["id"] for a in tree["role_assignments"]} == {boss.id}


def test_domain_admin_manages_its_domain_only(cloud: RunningCloud, api: Api) -> None:
    mine, theirs = api.domain(), api.domain()
    admin = make_persona(api, "admin", domain=mine, user_domain=mine["id"])
    me = api.as_token(admin.token)
    env = admin.cli_env(cloud)
    foreign_user = api.user(domain_id=theirs["id"])
    foreign_project = api.project(domain_id=theirs["id"])

    made = cloud.openstack("user", "create", "--domain", mine["id"], "--password", "pw-da",
                           uniq("da-user"), env=env)
    assert made["domain_id"] == mine["id"]
    implicit = api.ok(me.post("/users", json={"user": {"name": uniq()}}), 201)["user"]
    assert implicit["domain_id"] == mine["id"]  # lands in the token's domain
    listed = cloud.openstack("user", "list", env=env)
    assert {u["ID"] for u in listed} == {admin.id, made["id"], implicit["id"]}
    project = api.ok(me.post("/projects", json={"project": {
        "name": uniq(), "domain_id": mine["id"]}}), 201)["project"]
    assert {p["id"] for p in api.ok(me.get("/projects"))["projects"]} == {project["id"]}
    api.ok(me.patch(f"/users/{made['id']}", json={"user": {"email": "x@example.org"}}))
    group = api.ok(me.post("/groups", json={"group": {"name": uniq()}}), 201)["group"]
    assert me.put(f"/groups/{group['id']}/users/{made['id']}").status_code == 204

    member = api.role_id("member")
    assert me.put(f"/projects/{project['id']}/users/{made['id']}/roles/{member}"
                  ).status_code == 204
    assert me.put(f"/domains/{mine['id']}/groups/{group['id']}/roles/{member}"
                  ).status_code == 204
    assignments = api.ok(me.get("/role_assignments"))["role_assignments"]
    assert {(a.get("user") or a.get("group"))["id"] for a in assignments} == \
        {admin.id, made["id"], group["id"]}
    assert api.ok(me.get(f"/domains/{mine['id']}"))["domain"]["id"] == mine["id"]

    _all_forbidden(me, [
        ("POST", "/users", {"user": {"name": uniq(), "domain_id": theirs["id"]}}),
        ("POST", "/projects", {"project": {"name": uniq(), "domain_id": theirs["id"]}}),
        ("GET", "/users?domain_id=" + theirs["id"], None),
        ("GET", f"/users/{foreign_user['id']}", None),
        ("PATCH", f"/users/{foreign_user['id']}", {"user": {"enabled": False}}),
        ("DELETE", f"/users/{foreign_user['id']}", None),
        ("GET", f"/projects/{foreign_project['id']}", None),
        ("PUT", f"/projects/{project['id']}/users/{foreign_user['id']}/roles/{member}",
         None),  # an outsider into my project
        ("PUT", f"/projects/{foreign_project['id']}/users/{made['id']}/roles/{member}",
         None),  # my user into their project
        ("PUT", f"/system/users/{made['id']}/roles/{member}", None),
        ("GET", "/domains", None), ("GET", f"/domains/{theirs['id']}", None),
        ("PATCH", f"/domains/{mine['id']}", {"domain": {"description": "x"}}),
        ("POST", "/roles", {"role": {"name": uniq()}}),
        ("GET", f"/users/{foreign_user['id']}/projects", None),
        ("PUT", f"/groups/{group['id']}/users/{foreign_user['id']}", None),  # into my group
    ])
    assert api.ok(me.get("/role_assignments", params={
        "scope.project.id": foreign_project["id"]}))["role_assignments"] == []
    assert me.delete(f"/users/{made['id']}").status_code == 204


def test_domain_reader_and_system_personas(api: Api) -> None:
    domain = api.domain()
    reader = make_persona(api, "reader", domain=domain, user_domain=domain["id"])
    as_reader = api.as_token(reader.token)
    assert [u["id"] for u in api.ok(as_reader.get("/users"))["users"]] == [reader.id]
    _all_forbidden(as_reader, [("POST", "/users", {"user": {"name": uniq()}}),
                               ("POST", "/projects", {"project": {"name": uniq()}})])

    sys_reader = api.user(password="pw-sysr")
    api.grant("reader", user=sys_reader["id"], system=True)
    token = api.token_for(user_id=sys_reader["id"], password="pw-sysr",
                          scope={"system": {"all": True}})
    as_sys = api.as_token(token)
    assert as_sys.get("/users").status_code == 200
    assert as_sys.get("/role_assignments").status_code == 200
    assert as_sys.get(f"/domains/{domain['id']}").status_code == 200
    _all_forbidden(as_sys, [("POST", "/users", {"user": {"name": uniq()}}),
                            ("POST", "/domains", {"domain": {"name": uniq()}})])

    sys_admin = api.user(password="pw-sysa")
    api.grant("admin", user=sys_admin["id"], system=True)
    token = api.token_for(user_id=sys_admin["id"], password="pw-sysa",
                          scope={"system": {"all": True}})
    made = api.as_token(token).post("/domains", json={"domain": {"name": uniq()}})
    assert made.status_code == 201
