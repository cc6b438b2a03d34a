"""Domains, projects (hierarchy, tags), users, groups and roles through the ``openstack`` CLI,
with the list filters it sends; the raw API where the CLI has no verb."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api, assert_error, osc, uniq


def _names(rows: list[dict[str, Any]]) -> set[str]:
    return {r["Name"] for r in rows}


def test_domain_lifecycle(cloud: RunningCloud, api: Api) -> None:
    name = uniq("dom")
    created = cloud.openstack("domain", "create", "--description", "first", name)
    assert created["name"] == name and created["enabled"] is True
    listed = {d["Name"]: d for d in cloud.openstack("domain", "list")}
    assert listed[name]["Description"] == "first"
    osc(cloud, "domain", "set", "--description", "second", name)
    assert api.ok(api.get(f"/domains/{created['id']}"))["domain"]["description"] == "second"
    assert_error(api.post("/domains", json={"domain": {"name": name}}), 409)

    project = api.project(domain_id=created["id"])
    user = api.user(domain_id=created["id"])
    assert_error(api.delete(f"/domains/{created['id']}"), 403)  # still enabled
    osc(cloud, "domain", "set", "--disable", name)
    enabled = api.ok(api.get("/domains", params={"enabled": "false"}))["domains"]
    assert created["id"] in {d["id"] for d in enabled}
    osc(cloud, "domain", "delete", name)
    for path in (f"/domains/{created['id']}", f"/projects/{project['id']}",
                 f"/users/{user['id']}"):
        assert_error(api.get(path), 404)


def test_project_lifecycle(cloud: RunningCloud, api: Api) -> None:
    domain = api.domain()
    name = uniq("prj")
    created = cloud.openstack("project", "create", "--domain", domain["name"], "--description",
                              "demo", "--property", "team=blue", name)
    assert created["domain_id"] == domain["id"] and created["parent_id"] == domain["id"]
    assert created["team"] == "blue" and created["is_domain"] is False
    listed = cloud.openstack("project", "list", "--domain", domain["name"])
    assert _names(listed) == {name}
    renamed = uniq("prj")
    osc(cloud, "project", "set", "--name", renamed, "--disable", "--property", "team=red",
        "--domain", domain["name"], name)
    shown = cloud.openstack("project", "show", "--domain", domain["name"], renamed)
    assert shown["enabled"] is False and shown["team"] == "red"
    assert_error(api.post("/projects", json={"project": {
        "name": renamed, "domain_id": domain["id"]}}), 409)
    disabled = api.ok(api.get("/projects", params={"domain_id": domain["id"],
                                                   "enabled": "false"}))["projects"]
    assert [p["name"] for p in disabled] == [renamed]
    assert api.ok(api.get("/projects", params={"name": renamed}))["projects"][0]["id"] == \
        created["id"]
    osc(cloud, "project", "delete", "--domain", domain["name"], renamed)
    assert_error(api.get(f"/projects/{created['id']}"), 404)


def test_project_hierarchy(cloud: RunningCloud, api: Api) -> None:
    domain = api.domain()
    top = api.project(domain_id=domain["id"])
    middle = cloud.openstack("project", "create", "--domain", domain["name"], "--parent",
                             top["id"], uniq("mid"))
    leaf = api.project(parent_id=middle["id"])
    assert middle["parent_id"] == top["id"] and leaf["domain_id"] == domain["id"]

    shown = cloud.openstack("project", "show", "--parents", "--children", middle["id"])
    assert shown["parents"] == {top["id"]: None}
    assert shown["subtree"] == {leaf["id"]: None}
    listed = api.ok(api.get(f"/projects/{leaf['id']}", params={"parents_as_list": 1}))
    assert [p["project"]["id"] for p in listed["project"]["parents"]] == \
        [middle["id"], top["id"]]
    listed = api.ok(api.get(f"/projects/{top['id']}", params={"subtree_as_list": ""}))
    assert [p["project"]["id"] for p in listed["project"]["subtree"]] == \
        [middle["id"], leaf["id"]]
    ids = api.ok(api.get(f"/projects/{top['id']}", params={"subtree_as_ids": 1}))
    assert ids["project"]["subtree"] == {middle["id"]: {leaf["id"]: None}}
    ids = api.ok(api.get(f"/projects/{leaf['id']}", params={"parents_as_ids": 1}))
    assert ids["project"]["parents"] == {middle["id"]: {top["id"]: None}}

    children = api.ok(api.get("/projects", params={"parent_id": top["id"]}))["projects"]
    assert [p["id"] for p in children] == [middle["id"]]
    roots = api.ok(api.get("/projects", params={"parent_id": domain["id"]}))["projects"]
    assert [p["id"] for p in roots] == [top["id"]]
    assert_error(api.delete(f"/projects/{middle['id']}"), 403)  # not a leaf
    assert_error(api.patch(f"/projects/{leaf['id']}",
                           json={"project": {"parent_id": top["id"]}}), 400)
    assert_error(api.post("/projects", json={"project": {
        "name": uniq(), "parent_id": top["id"], "domain_id": "default"}}), 400)


def test_project_tags(cloud: RunningCloud, api: Api) -> None:
    domain = api.domain()
    d = ["--domain", domain["name"]]
    both = cloud.openstack("project", "create", *d, "--tag", "red", "--tag", "blue",
                           uniq("both"))
    assert sorted(both["tags"]) == ["blue", "red"]
    red = api.project(domain_id=domain["id"], tags=["red"])
    plain = api.project(domain_id=domain["id"])

    def listed(**params: str) -> set[str]:
        refs = api.ok(api.get("/projects", params={"domain_id": domain["id"], **params}))
        return {p["id"] for p in refs["projects"]}

    assert _names(cloud.openstack("project", "list", *d, "--tags", "red,blue")) == \
        {both["name"]}
    assert listed(**{"tags-any": "red,green"}) == {both["id"], red["id"]}
    assert listed(**{"not-tags": "red,blue"}) == {red["id"], plain["id"]}
    assert listed(**{"not-tags-any": "blue"}) == {red["id"], plain["id"]}
    assert listed(tags="red") == {both["id"], red["id"]}

    osc(cloud, "project", "set", *d, "--tag", "green", both["name"])
    osc(cloud, "project", "set", *d, "--remove-tag", "red", both["name"])
    assert sorted(api.ok(api.get(f"/projects/{both['id']}/tags"))["tags"]) == \
        ["blue", "green"]
    osc(cloud, "project", "set", *d, "--clear-tags", both["name"])
    assert api.ok(api.get(f"/projects/{both['id']}"))["project"]["tags"] == []

    tags = f"/projects/{plain['id']}/tags"
    assert api.ok(api.put(tags, json={"tags": ["a", "b"]}))["tags"] == ["a", "b"]
    assert api.put(f"{tags}/c").status_code == 201
    assert api.get(f"{tags}/c").status_code == 204
    assert_error(api.get(f"{tags}/zzz"), 404)
    assert api.delete(f"{tags}/a").status_code == 204
    assert sorted(api.ok(api.get(tags))["tags"]) == ["b", "c"]
    assert api.delete(tags).status_code == 204
    assert api.ok(api.get(tags))["tags"] == []
    assert_error(api.put(tags, json={"tags": ["bad/tag"]}), 400)
    assert_error(api.put(tags, json={"tags": ["dup", "dup"]}), 400)


def test_user_lifecycle(cloud: RunningCloud, api: Api) -> None:
    domain = api.domain()
    project = api.project(domain_id=domain["id"])
    name = uniq("usr")
    created = cloud.openstack("user", "create", "--domain", domain["name"], "--password",
                              "pw-1", "--email", "u@example.org", "--description", "demo",
                              "--project", project["id"], name)
    assert created["domain_id"] == domain["id"] and created["email"] == "u@example.org"
    assert created["default_project_id"] == project["id"] and "password" not in created
    assert _names(cloud.openstack("user", "list", "--domain", domain["name"])) == {name}
    osc(cloud, "user", "set", "--email", "v@example.org", "--disable", created["id"])
    shown = api.ok(api.get(f"/users/{created['id']}"))["user"]
    assert shown["email"] == "v@example.org" and shown["enabled"] is False
    assert shown["description"] == "demo"
    assert "password" not in shown and "password_hash" not in str(shown)
    found = api.ok(api.get("/users", params={"name": name, "domain_id": domain["id"]}))
    assert [u["id"] for u in found["users"]] == [created["id"]]
    disabled = api.ok(api.get("/users", params={"domain_id": domain["id"],
                                                "enabled": "0"}))["users"]
    assert [u["id"] for u in disabled] == [created["id"]]
    assert_error(api.post("/users", json={"user": {"name": name,
                                                   "domain_id": domain["id"]}}), 409)
    osc(cloud, "user", "delete", created["id"])
    assert_error(api.get(f"/users/{created['id']}"), 404)


def test_group_membership(cloud: RunningCloud, api: Api) -> None:
    domain = api.domain()
    user = api.user(domain_id=domain["id"])
    name = uniq("grp")
    created = cloud.openstack("group", "create", "--domain", domain["name"], "--description",
                              "team", name)
    assert created["domain_id"] == domain["id"]
    osc(cloud, "group", "add", "user", "--group-domain", domain["name"], "--user-domain",
        domain["name"], name, user["name"])
    assert " in group " in osc(cloud, "group", "contains", "user", created["id"], user["id"])
    listed = cloud.openstack("group", "list", "--user", user["id"])
    assert _names(listed) == {name}
    members = api.ok(api.get(f"/groups/{created['id']}/users"))["users"]
    assert [u["id"] for u in members] == [user["id"]]
    groups = api.ok(api.get(f"/users/{user['id']}/groups"))["groups"]
    assert [g["id"] for g in groups] == [created["id"]]
    osc(cloud, "group", "remove", "user", created["id"], user["id"])
    assert api.head(f"/groups/{created['id']}/users/{user['id']}").status_code == 404
    api.ok(api.patch(f"/groups/{created['id']}", json={"group": {"name": name + "-x"}}))
    assert api.ok(api.get("/groups", params={"name": name + "-x"}))["groups"][0]["id"] == \
        created["id"]
    osc(cloud, "group", "delete", created["id"])
    assert_error(api.get(f"/groups/{created['id']}"), 404)


def test_role_lifecycle(cloud: RunningCloud, api: Api) -> None:
    name = uniq("role")
    created = cloud.openstack("role", "create", "--description", "demo", name)
    assert created["domain_id"] is None
    osc(cloud, "role", "set", "--name", name + "-x", created["id"])
    assert cloud.openstack("role", "show", name + "-x")["id"] == created["id"]
    assert_error(api.post("/roles", json={"role": {"name": name + "-x"}}), 409)

    domain = api.domain()
    scoped = cloud.openstack("role", "create", "--domain", domain["name"], name)
    assert scoped["domain_id"] == domain["id"]  # same name as a global role: allowed
    in_domain = cloud.openstack("role", "list", "--domain", domain["name"])
    assert _names(in_domain) == {name}
    global_names = {r["name"] for r in api.ok(api.get("/roles"))["roles"]}
    assert name not in global_names and name + "-x" in global_names
    osc(cloud, "role", "delete", "--domain", domain["name"], name)
    osc(cloud, "role", "delete", created["id"])
    assert_error(api.get(f"/roles/{created['id']}"), 404)


def test_immutable_resources(cloud: RunningCloud, api: Api) -> None:
    """Keystone's ``immutable`` option: no change but clearing it, no delete."""
    name = uniq("imm")
    project = cloud.openstack("project", "create", "--immutable", "--property", "k=v", name)
    assert project["options"] == {"immutable": True}
    assert_error(api.patch(f"/projects/{project['id']}",
                           json={"project": {"description": "x"}}), 403)
    assert_error(api.delete(f"/projects/{project['id']}"), 403)
    assert_error(api.put(f"/projects/{project['id']}/tags/x"), 403)
    osc(cloud, "project", "set", "--no-immutable", project["id"])
    assert api.ok(api.get(f"/projects/{project['id']}"))["project"]["options"] == \
        {"immutable": False}
    assert api.delete(f"/projects/{project['id']}").status_code == 204

    role = api.role(options={"immutable": True})
    domain = api.domain(options={"immutable": True})
    for kind, ref in (("roles", role), ("domains", domain)):
        key = kind[:-1]
        path = f"/{kind}/{ref['id']}"
        assert_error(api.patch(path, json={key: {"description": "x"}}), 403)
        assert_error(api.patch(path, json={key: {"description": "x", "options": {
            "immutable": False}}}), 403)
        assert_error(api.delete(path), 403)
        api.ok(api.patch(path, json={key: {"options": {"immutable": None}}}))
        assert api.ok(api.get(path))[key]["options"] == {}
    api.ok(api.patch(f"/domains/{domain['id']}", json={"domain": {"enabled": False}}))
    for kind, ref in (("roles", role), ("domains", domain)):
        assert api.delete(f"/{kind}/{ref['id']}").status_code == 204
