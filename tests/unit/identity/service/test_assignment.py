"""Effective roles: direct and group grants, inheritance from the domain and from parent
projects, implied roles (transitively), domain-specific roles dropping out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pocketstack.identity.exceptions import Forbidden, ValidationError
from pocketstack.identity.service.assignment import Actor, Target
from pocketstack.identity.service.hub import Identity


def _name() -> str:
    return uuid.uuid4().hex[:12]


class World:
    """A domain with a three-level project tree, a user, a group and role helpers."""

    def __init__(self, hub: Identity) -> None:
        self.hub = hub
        self.domain = hub.resource.create_domain({"name": _name()})
        self.top = self.project()
        self.middle = self.project(parent_id=self.top["id"])
        self.leaf = self.project(parent_id=self.middle["id"])
        self.user = hub.users.create_user({"name": _name(), "domain_id": self.domain["id"]})
        self.group = hub.users.create_group({"name": _name(), "domain_id": self.domain["id"]})

    def project(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("domain_id", self.domain["id"])
        return self.hub.resource.create_project({"name": _name(), **fields})

    def role(self, name: str | None = None, **fields: Any) -> str:
        if name is not None and not fields:
            return str(self.hub.assignments.find_role(name)["id"])
        return str(self.hub.assignments.create_role({"name": name or _name(), **fields})["id"])

    def names(self, target: Target, user_id: str | None = None) -> set[str]:
        with self.hub.db.session() as s:
            ids = self.hub.assignments.effective_role_ids(s, user_id or self.user["id"],
                                                          target)
            return {r["name"] for r in self.hub.assignments.roles_by_id(s, ids)}


@pytest.fixture
def world(hub: Identity) -> World:
    return World(hub)


def _on(project: dict[str, Any]) -> Target:
    return Target(project_id=project["id"])


def test_direct_grant_and_default_implications(world: World) -> None:
    grants = world.hub.assignments
    grants.create_grant(world.role("member"), Actor(user_id=world.user["id"]), _on(world.top))
    assert world.names(_on(world.top)) == {"member", "reader"}
    assert world.names(_on(world.middle)) == set()  # not inherited
    assert world.names(Target(domain_id=world.domain["id"])) == set()
    assert world.names(Target(system=True)) == set()


def test_group_grants_reach_members_only(world: World) -> None:
    hub = world.hub
    hub.assignments.create_grant(world.role("admin"), Actor(group_id=world.group["id"]),
                                 _on(world.middle))
    assert world.names(_on(world.middle)) == set()
    hub.users.add_member(world.group["id"], world.user["id"])
    assert world.names(_on(world.middle)) == {"admin", "member", "reader"}
    hub.users.remove_member(world.group["id"], world.user["id"])
    assert world.names(_on(world.middle)) == set()


def test_inherited_from_domain_reaches_every_project_not_the_domain(world: World) -> None:
    world.hub.assignments.create_grant(world.role("reader"), Actor(user_id=world.user["id"]),
                                       Target(domain_id=world.domain["id"]), inherited=True)
    for project in (world.top, world.middle, world.leaf):
        assert world.names(_on(project)) == {"reader"}
    assert world.names(Target(domain_id=world.domain["id"])) == set()
    elsewhere = world.hub.resource.create_project({"name": _name()})  # Default domain
    assert world.names(_on(elsewhere)) == set()


def test_inherited_from_parent_reaches_the_subtree_only(world: World) -> None:
    world.hub.users.add_member(world.group["id"], world.user["id"])
    world.hub.assignments.create_grant(world.role("member"), Actor(group_id=world.group["id"]),
                                       _on(world.middle), inherited=True)
    assert world.names(_on(world.top)) == set()
    assert world.names(_on(world.middle)) == set()
    assert world.names(_on(world.leaf)) == {"member", "reader"}
    sibling = world.project(parent_id=world.top["id"])
    assert world.names(_on(sibling)) == set()


def test_plain_domain_grant_is_domain_scope_only(world: World) -> None:
    world.hub.assignments.create_grant(world.role("admin"), Actor(user_id=world.user["id"]),
                                       Target(domain_id=world.domain["id"]))
    assert world.names(Target(domain_id=world.domain["id"])) == {"admin", "member", "reader"}
    assert world.names(_on(world.top)) == set()


def test_implied_roles_are_transitive_and_acyclic(world: World) -> None:
    a, b, c = world.role(), world.role(), world.role()
    grants = world.hub.assignments
    grants.create_implied(a, b)
    grants.create_implied(b, c)
    grants.create_grant(a, Actor(user_id=world.user["id"]), _on(world.top))
    names = {r["id"]: r["name"] for r in grants.list_roles()}
    assert world.names(_on(world.top)) == {names[a], names[b], names[c]}
    with pytest.raises(ValidationError):
        grants.create_implied(c, a)
    with pytest.raises(Forbidden):
        grants.create_implied(a, world.role("admin"))
    grants.delete_implied(b, c)
    assert world.names(_on(world.top)) == {names[a], names[b]}


def test_domain_specific_roles_drop_out_but_their_implications_stay(world: World) -> None:
    grants = world.hub.assignments
    local = world.role(domain_id=world.domain["id"])
    grants.create_implied(local, world.role("member"))
    grants.create_grant(local, Actor(user_id=world.user["id"]), _on(world.leaf))
    assert world.names(_on(world.leaf)) == {"member", "reader"}
    other = world.hub.resource.create_domain({"name": _name()})
    foreign = world.hub.resource.create_project({"name": _name(), "domain_id": other["id"]})
    with pytest.raises(Forbidden):
        grants.create_grant(local, Actor(user_id=world.user["id"]), _on(foreign))
    with pytest.raises(Forbidden):
        grants.create_implied(world.role("reader"), local)


def test_every_path_at_once(world: World) -> None:
    """Direct + group + domain-inherited + parent-inherited + implied, deduplicated."""
    hub, grants = world.hub, world.hub.assignments
    hub.users.add_member(world.group["id"], world.user["id"])
    extra = world.role()
    grants.create_implied(world.role("reader"), extra)
    me, team = Actor(user_id=world.user["id"]), Actor(group_id=world.group["id"])
    grants.create_grant(world.role("reader"), me, _on(world.leaf))
    grants.create_grant(world.role("member"), team, Target(domain_id=world.domain["id"]),
                        inherited=True)
    grants.create_grant(world.role("admin"), me, _on(world.top), inherited=True)
    names = {r["id"]: r["name"] for r in grants.list_roles()}
    assert world.names(_on(world.leaf)) == {"admin", "member", "reader", names[extra]}
    assert world.names(_on(world.top)) == {"member", "reader", names[extra]}
    stranger = hub.users.create_user({"name": _name(), "domain_id": world.domain["id"]})
    assert world.names(_on(world.leaf), stranger["id"]) == set()


def test_system_grants(world: World) -> None:
    grants = world.hub.assignments
    grants.create_grant(world.role("reader"), Actor(group_id=world.group["id"]),
                        Target(system=True))
    world.hub.users.add_member(world.group["id"], world.user["id"])
    assert world.names(Target(system=True)) == {"reader"}
    assert world.names(_on(world.top)) == set()


def test_bootstrap_roles_are_immutable(hub: Identity) -> None:
    admin = hub.assignments.find_role("admin")
    assert admin["options"] == {"immutable": True}
    with pytest.raises(Forbidden):
        hub.assignments.delete_role(admin["id"])
    with pytest.raises(Forbidden):
        hub.assignments.update_role(admin["id"], {"name": "root"})
