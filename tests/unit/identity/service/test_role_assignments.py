"""``GET /v3/role_assignments`` computed: stored grants, the effective expansion (groups,
inheritance, implied roles, domain-specific roles dropped), names and filters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pocketstack.identity.exceptions import ValidationError
from pocketstack.identity.service.assignment import Actor, Target
from pocketstack.identity.service.hub import Identity
from pocketstack.identity.service.role_assignments import (
    AssignmentFilter,
    effective_domain_ids,
    effective_project_ids,
    list_role_assignments,
)

BASE = "http://cloud"


def _name() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def setup(hub: Identity) -> dict[str, Any]:
    domain = hub.resource.create_domain({"name": _name()})
    parent = hub.resource.create_project({"name": _name(), "domain_id": domain["id"]})
    child = hub.resource.create_project({"name": _name(), "parent_id": parent["id"]})
    user = hub.users.create_user({"name": _name(), "domain_id": domain["id"]})
    group = hub.users.create_group({"name": _name(), "domain_id": domain["id"]})
    hub.users.add_member(group["id"], user["id"])
    roles = {r["name"]: r["id"] for r in hub.assignments.list_roles()}
    local = hub.assignments.create_role({"name": _name(), "domain_id": domain["id"]})
    hub.assignments.create_implied(local["id"], roles["reader"])
    grants = hub.assignments
    grants.create_grant(roles["member"], Actor(user_id=user["id"]), Target(
        project_id=parent["id"]))
    grants.create_grant(roles["admin"], Actor(group_id=group["id"]),
                        Target(domain_id=domain["id"]), inherited=True)
    grants.create_grant(local["id"], Actor(user_id=user["id"]), Target(domain_id=domain["id"]))
    return {"domain": domain, "parent": parent, "child": child, "user": user, "group": group,
            "roles": roles, "local": local}


def _list(hub: Identity, **kwargs: Any) -> list[dict[str, Any]]:
    return list_role_assignments(hub, AssignmentFilter(**kwargs), BASE)


def _triples(refs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    out = set()
    for ref in refs:
        actor = (ref.get("user") or ref.get("group"))["id"]
        scope = ref["scope"]
        target = (scope.get("project") or scope.get("domain") or {"id": "system"})["id"]
        out.add((ref["role"]["id"], actor, target))
    return out


def test_stored_grants_as_they_are(hub: Identity, setup: dict[str, Any]) -> None:
    s = setup
    refs = _list(hub, user_id=s["user"]["id"])
    assert _triples(refs) == {(s["roles"]["member"], s["user"]["id"], s["parent"]["id"]),
                              (s["local"]["id"], s["user"]["id"], s["domain"]["id"])}
    inherited = _list(hub, group_id=s["group"]["id"], inherited_only=True)
    assert len(inherited) == 1
    assert inherited[0]["scope"]["OS-INHERIT:inherited_to"] == "projects"
    assert inherited[0]["links"]["assignment"] == (
        f"{BASE}/v3/OS-INHERIT/domains/{s['domain']['id']}/groups/{s['group']['id']}/roles/"
        f"{s['roles']['admin']}/inherited_to_projects")


def test_effective_expansion(hub: Identity, setup: dict[str, Any]) -> None:
    s, r, uid = setup, setup["roles"], setup["user"]["id"]
    refs = _list(hub, user_id=uid, effective=True)
    expected = {(r["member"], uid, s["parent"]["id"]), (r["reader"], uid, s["parent"]["id"])}
    for project in (s["parent"], s["child"]):  # group + domain inheritance + implications
        expected |= {(r[name], uid, project["id"]) for name in ("admin", "member", "reader")}
    expected.add((r["reader"], uid, s["domain"]["id"]))  # implied by the domain-specific role
    assert _triples(refs) == expected
    assert all("group" not in ref for ref in refs)
    assert s["local"]["id"] not in {ref["role"]["id"] for ref in refs}
    via_group = [ref for ref in refs if "membership" in ref["links"]]
    assert via_group and all(ref["links"]["membership"] ==
                             f"{BASE}/v3/groups/{s['group']['id']}/users/{uid}"
                             for ref in via_group)
    implied = [ref for ref in refs if "prior_role" in ref["links"]]
    assert {ref["role"]["id"] for ref in implied} == {r["member"], r["reader"]}


def test_filters_and_names(hub: Identity, setup: dict[str, Any]) -> None:
    s, r = setup, setup["roles"]
    on_child = _list(hub, project_id=s["child"]["id"], effective=True, role_id=r["admin"])
    assert _triples(on_child) == {(r["admin"], s["user"]["id"], s["child"]["id"])}
    named = _list(hub, user_id=s["user"]["id"], project_id=s["parent"]["id"],
                  include_names=True)
    assert named[0]["user"]["name"] == s["user"]["name"]
    assert named[0]["scope"]["project"]["domain"] == {"id": s["domain"]["id"],
                                                      "name": s["domain"]["name"]}
    assert named[0]["role"] == {"id": r["member"], "name": "member"}
    tree = _list(hub, project_id=s["parent"]["id"], include_subtree=True, effective=True)
    assert s["child"]["id"] in {t for _, _, t in _triples(tree)}
    within = _list(hub, within_domain="default")
    assert all(ref["scope"].get("project", {}).get("id") != s["parent"]["id"]
               for ref in within)
    assert effective_project_ids(hub, s["user"]["id"]) == {s["parent"]["id"], s["child"]["id"]}
    assert effective_domain_ids(hub, s["user"]["id"]) == {s["domain"]["id"]}


@pytest.mark.parametrize("bad", [
    {"effective": True, "group_id": "g"},
    {"project_id": "p", "domain_id": "d"},
    {"system": True, "domain_id": "d"},
    {"system": True, "project_id": "p"},
    {"user_id": "u", "group_id": "g"},
    {"effective": True, "inherited_only": True, "domain_id": "d"},
    {"include_subtree": True},
])
def test_useless_filter_combinations(hub: Identity, bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _list(hub, **bad)
