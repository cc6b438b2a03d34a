"""Role grants on projects, domains and the system, for users and groups, inherited or not;
implied roles; domain-specific roles; ``role assignment list`` and its filters."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api, assert_error, osc, password_auth, uniq


def _rows(listing: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    """(role, user, group, project, domain, system, inherited) of each CLI row."""
    return {(r["Role"], r["User"], r["Group"], r["Project"], r["Domain"], r["System"],
             str(r["Inherited"])) for r in listing}


def test_role_add_list_remove(cloud: RunningCloud, api: Api) -> None:
    domain = api.domain()
    project = api.project(domain_id=domain["id"])
    user = api.user(domain_id=domain["id"])
    group = api.group(domain_id=domain["id"])
    api.ok(api.put(f"/groups/{group['id']}/users/{user['id']}"))
    u, g, p, d = user["name"], group["name"], project["name"], domain["name"]
    at_u = f"{u}@{d}"
    osc(cloud, "role", "add", "--user", u, "--user-domain", d, "--project", p,
        "--project-domain", d, "member")
    osc(cloud, "role", "add", "--group", g, "--group-domain", d, "--domain", d,
        "--inherited", "reader")
    osc(cloud, "role", "add", "--user", user["id"], "--system", "all", "reader")

    stored = cloud.openstack("role", "assignment", "list", "--names", "--user", user["id"])
    assert _rows(stored) == {("member", at_u, "", f"{p}@{d}", "", "", "False"),
                             ("reader", at_u, "", "", "", "all", "False")}
    by_group = cloud.openstack("role", "assignment", "list", "--names", "--group",
                               group["id"], "--inherited")
    assert _rows(by_group) == {("reader", "", f"{g}@{d}", "", d, "", "True")}
    effective = cloud.openstack("role", "assignment", "list", "--effective", "--names",
                                "--user", user["id"])
    assert _rows(effective) == {("member", at_u, "", f"{p}@{d}", "", "", "False"),
                                ("reader", at_u, "", f"{p}@{d}", "", "", "False"),
                                ("reader", at_u, "", "", "", "all", "False")}
    on_project = cloud.openstack("role", "assignment", "list", "--effective", "--names",
                                 "--project", p, "--project-domain", d, "--role", "reader")
    assert _rows(on_project) == {("reader", at_u, "", f"{p}@{d}", "", "", "False")}

    osc(cloud, "role", "remove", "--user", user["id"], "--project", project["id"], "member")
    osc(cloud, "role", "remove", "--group", group["id"], "--domain", domain["id"],
        "--inherited", "reader")
    osc(cloud, "role", "remove", "--user", user["id"], "--system", "all", "reader")
    assert cloud.openstack("role", "assignment", "list", "--effective", "--user",
                           user["id"]) == []


def test_grant_apis(api: Api) -> None:
    project = api.project()
    user = api.user()
    member = api.role_id("member")
    base = f"/projects/{project['id']}/users/{user['id']}/roles"
    assert api.head(f"{base}/{member}").status_code == 404
    api.grant("member", user=user["id"], project=project["id"])
    assert api.head(f"{base}/{member}").status_code == 204
    assert api.get(f"{base}/{member}").status_code == 204
    assert [r["name"] for r in api.ok(api.get(base))["roles"]] == ["member"]
    assert_error(api.put(f"{base}/{'0' * 32}"), 404)
    assert_error(api.put(f"/projects/{project['id']}/users/{'0' * 32}/roles/{member}"), 404)
    assert_error(api.put(f"/projects/{'0' * 32}/users/{user['id']}/roles/{member}"), 404)
    inherited = f"/OS-INHERIT/projects/{project['id']}/users/{user['id']}/roles"
    assert api.ok(api.get(f"{inherited}/inherited_to_projects"))["roles"] == []
    assert api.delete(f"{base}/{member}").status_code == 204
    assert_error(api.delete(f"{base}/{member}"), 404)


def test_inheritance_from_parent_project_and_domain(api: Api) -> None:
    domain = api.domain()
    parent = api.project(domain_id=domain["id"])
    child = api.project(parent_id=parent["id"])
    user = api.user(password="pw-inh", domain_id=domain["id"])
    api.grant("member", user=user["id"], project=parent["id"], inherited=True)

    def token_roles(project_id: str) -> set[str] | None:
        response = api.issue(password_auth(user_id=user["id"], password="pw-inh",
                                           scope={"project": {"id": project_id}}))
        if response.status_code == 401:
            return None
        return {r["name"] for r in response.json()["token"]["roles"]}

    assert token_roles(parent["id"]) is None  # inherited grants skip their own target
    assert token_roles(child["id"]) == {"member", "reader"}
    listing = api.ok(api.get("/role_assignments", params={
        "user.id": user["id"], "effective": "1"}))["role_assignments"]
    assert {(a["scope"]["project"]["id"], a["role"]["id"]) for a in listing} == {
        (child["id"], api.role_id("member")), (child["id"], api.role_id("reader"))}
    link = next(a["links"] for a in listing if a["role"]["id"] == api.role_id("member"))
    assert link["assignment"].endswith(f"/OS-INHERIT/projects/{parent['id']}/users/"
                                       f"{user['id']}/roles/{api.role_id('member')}"
                                       "/inherited_to_projects")

    group = api.group(domain_id=domain["id"])
    api.ok(api.put(f"/groups/{group['id']}/users/{user['id']}"))
    api.grant("admin", group=group["id"], domain=domain["id"], inherited=True)
    assert token_roles(parent["id"]) == {"admin", "member", "reader"}
    listing = api.ok(api.get("/role_assignments", params={
        "user.id": user["id"], "effective": "", "scope.project.id": parent["id"],
        "role.id": api.role_id("admin")}))["role_assignments"]
    assert len(listing) == 1
    assert listing[0]["links"]["membership"].endswith(f"/groups/{group['id']}/users/"
                                                      f"{user['id']}")


def test_implied_roles(cloud: RunningCloud, api: Api) -> None:
    prior = cloud.openstack("role", "create", uniq("prior"))
    implied = api.role()
    created = cloud.openstack("implied", "role", "create", prior["id"], "--implied-role",
                              implied["id"])
    assert created == {"prior_role": prior["id"], "implies": implied["id"]}
    rows = cloud.openstack("implied", "role", "list")
    assert (prior["name"], implied["name"]) in {(r["Prior Role Name"],
                                                 r["Implied Role Name"]) for r in rows}
    path = f"/roles/{prior['id']}/implies/{implied['id']}"
    assert api.head(path).status_code == 204
    assert api.ok(api.get(path))["role_inference"]["implies"]["id"] == implied["id"]
    listed = api.ok(api.get(f"/roles/{prior['id']}/implies"))["role_inference"]
    assert [r["id"] for r in listed["implies"]] == [implied["id"]]
    assert_error(api.put(f"/roles/{implied['id']}/implies/{prior['id']}"), 400)  # a cycle
    assert_error(api.put(f"/roles/{prior['id']}/implies/{api.role_id('admin')}"), 403)

    project = api.project()
    user = api.user(password="pw-imp")
    api.grant(prior["id"], user=user["id"], project=project["id"])
    token = api.issue(password_auth(user_id=user["id"], password="pw-imp",
                                    scope={"project": {"id": project["id"]}}))
    assert {r["id"] for r in token.json()["token"]["roles"]} == {prior["id"], implied["id"]}
    effective = api.ok(api.get("/role_assignments", params={
        "user.id": user["id"], "effective": 1}))["role_assignments"]
    derived = next(a for a in effective if a["role"]["id"] == implied["id"])
    assert derived["links"]["prior_role"].endswith(f"/roles/{prior['id']}")

    osc(cloud, "implied", "role", "delete", prior["id"], "--implied-role", implied["id"])
    assert api.head(path).status_code == 404
    assert_error(api.validate(token.headers["X-Subject-Token"]), 404)  # roles changed


def test_domain_specific_roles(api: Api) -> None:
    domain, other = api.domain(), api.domain()
    project = api.project(domain_id=domain["id"])
    elsewhere = api.project(domain_id=other["id"])
    user = api.user(password="pw-dsr", domain_id=domain["id"])
    local = api.role(domain_id=domain["id"])
    api.ok(api.put(f"/roles/{local['id']}/implies/{api.role_id('reader')}"), 201)
    assert_error(api.put(f"/roles/{api.role_id('reader')}/implies/{local['id']}"), 403)
    api.grant(local["id"], user=user["id"], project=project["id"])
    assert_error(api.put(f"/projects/{elsewhere['id']}/users/{user['id']}/roles/"
                         f"{local['id']}"), 403)
    assert_error(api.put(f"/system/users/{user['id']}/roles/{local['id']}"), 403)

    token = api.issue(password_auth(user_id=user["id"], password="pw-dsr",
                                    scope={"project": {"id": project["id"]}}))
    assert [r["name"] for r in token.json()["token"]["roles"]] == ["reader"]
    stored = api.ok(api.get("/role_assignments", params={
        "user.id": user["id"], "include_names": 1}))["role_assignments"]
    assert [(a["role"]["id"], a["role"]["domain"]["id"]) for a in stored] == \
        [(local["id"], domain["id"])]
    effective = api.ok(api.get("/role_assignments", params={
        "user.id": user["id"], "effective": 1}))["role_assignments"]
    assert [a["role"]["id"] for a in effective] == [api.role_id("reader")]


def test_role_assignment_filters(api: Api) -> None:
    domain = api.domain()
    project = api.project(domain_id=domain["id"])
    user, group = api.user(domain_id=domain["id"]), api.group(domain_id=domain["id"])
    api.grant("member", user=user["id"], project=project["id"])
    api.grant("reader", group=group["id"], domain=domain["id"])

    def listed(**params: Any) -> list[dict[str, Any]]:
        return list(api.ok(api.get("/role_assignments", params=params))["role_assignments"])

    assert len(listed(**{"scope.project.id": project["id"]})) == 1
    assert [a["group"]["id"] for a in listed(**{"scope.domain.id": domain["id"]})] == \
        [group["id"]]
    assert [a["user"]["id"] for a in listed(**{"user.id": user["id"]})] == [user["id"]]
    named = listed(**{"group.id": group["id"], "include_names": "true"})[0]
    assert named["group"]["name"] == group["name"] and named["role"]["name"] == "reader"
    assert named["scope"]["domain"] == {"id": domain["id"], "name": domain["name"]}
    system = listed(**{"scope.system": "all"})
    assert all("system" in a["scope"] for a in system) and system
    for bad in ({"scope.project.id": project["id"], "scope.domain.id": domain["id"]},
                {"user.id": user["id"], "group.id": group["id"]},
                {"effective": 1, "group.id": group["id"]},
                {"include_subtree": 1}):
        assert_error(api.get("/role_assignments", params=bad), 400)
    tree = listed(**{"scope.project.id": project["id"], "include_subtree": 1})
    assert [a["user"]["id"] for a in tree] == [user["id"]]
