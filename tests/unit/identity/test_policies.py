"""Identity's default policy with Keystone's personas, evaluated by the common engine.

Credentials are shaped as ``RequestContext.credentials()`` builds them from a token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pocketstack.common.policy import PolicyEngine
from pocketstack.identity.policies import RULES

ENGINE = PolicyEngine(RULES)
API_DIR = Path(__file__).parents[3] / "src" / "pocketstack" / "identity" / "api"
ALL = ("admin", "member", "reader")


def creds(user: str, roles: tuple[str, ...], *, project: str | None = None,
          project_domain: str | None = None, domain: str | None = None,
          system: bool = False, admin_project: bool = False) -> dict[str, Any]:
    return {"user_id": user, "roles": list(roles), "project_id": project,
            "domain_id": domain, "project_domain_id": project_domain if project else None,
            "user_domain_id": "d1", "system_scope": "all" if system else None,
            "is_admin_project": admin_project}


SYSTEM_ADMIN = creds("sa", ALL, system=True)
SYSTEM_READER = creds("sr", ("reader",), system=True)
CLOUD_ADMIN = creds("ca", ALL, project="adminp", project_domain="default", admin_project=True)
DOMAIN_ADMIN = creds("da", ALL, domain="d1")
DOMAIN_READER = creds("dr", ("reader",), domain="d1")
PROJECT_ADMIN = creds("pa", ALL, project="p1", project_domain="d1")
PROJECT_MEMBER = creds("pm", ("member", "reader"), project="p1", project_domain="d1")
PROJECT_READER = creds("pr", ("reader",), project="p1", project_domain="d1")
PERSONAS = {"system_admin": SYSTEM_ADMIN, "system_reader": SYSTEM_READER,
            "cloud_admin": CLOUD_ADMIN, "domain_admin": DOMAIN_ADMIN,
            "domain_reader": DOMAIN_READER, "project_admin": PROJECT_ADMIN,
            "project_member": PROJECT_MEMBER, "project_reader": PROJECT_READER}


def allowed(action: str, target: dict[str, Any]) -> set[str]:
    return {name for name, cred in PERSONAS.items()
            if ENGINE.enforce(action, cred, {"target": target})}


CLOUD_WIDE_READERS = {"system_admin", "system_reader", "cloud_admin"}
CLOUD_WIDE_ADMINS = {"system_admin", "cloud_admin"}


def test_every_action_the_api_enforces_has_a_rule() -> None:
    used = set()
    for module in API_DIR.glob("*.py"):
        used |= set(re.findall(r'"(identity:[a-z_]+)"', module.read_text()))
    assert used, "no enforce() calls found"
    assert used <= set(RULES), sorted(used - set(RULES))
    unused = {a for a in RULES if a.startswith("identity:")} - used
    assert not unused, sorted(unused)


def test_cloud_wide_writes_are_for_cloud_admins_only() -> None:
    for action in ("identity:create_domain", "identity:update_domain", "identity:delete_domain",
                   "identity:create_role", "identity:delete_role", "identity:create_service",
                   "identity:create_endpoint", "identity:create_region",
                   "identity:create_implied_role", "identity:create_system_grant"):
        assert allowed(action, {}) == CLOUD_WIDE_ADMINS, action


def test_cloud_wide_reads() -> None:
    for action in ("identity:list_domains", "identity:list_services",
                   "identity:list_endpoints", "identity:list_role_inference_rules",
                   "identity:list_system_grants"):
        assert allowed(action, {}) == CLOUD_WIDE_READERS, action
    assert allowed("identity:list_regions", {}) == set(PERSONAS)


def test_users_in_a_domain() -> None:
    mine = {"user": {"id": "u1", "domain_id": "d1"}}
    theirs = {"user": {"id": "u2", "domain_id": "d2"}}
    assert allowed("identity:create_user", mine) == CLOUD_WIDE_ADMINS | {"domain_admin"}
    assert allowed("identity:create_user", theirs) == CLOUD_WIDE_ADMINS
    assert allowed("identity:get_user", mine) == CLOUD_WIDE_READERS | {"domain_admin",
                                                                       "domain_reader"}
    assert allowed("identity:list_users", {"domain_id": "d1"}) == \
        CLOUD_WIDE_READERS | {"domain_admin", "domain_reader"}
    assert allowed("identity:list_users", {"domain_id": "d2"}) == CLOUD_WIDE_READERS
    assert allowed("identity:list_users", {"domain_id": None}) == CLOUD_WIDE_READERS


def test_owner_rules() -> None:
    me = {"user": {"id": "pm", "domain_id": "d9"}}
    assert "project_member" in allowed("identity:get_user", me)
    assert "project_member" in allowed("identity:list_user_projects", me)
    assert "project_member" in allowed("identity:list_groups_for_user", me)
    assert "project_member" not in allowed("identity:update_user", me)
    for action in ("identity:create_application_credential",
                   "identity:list_application_credentials",
                   "identity:delete_application_credential"):
        assert "project_member" in allowed(action, {"user": {"id": "pm"}}), action
        assert "project_member" not in allowed(action, {"user": {"id": "pr"}}), action
    assert allowed("identity:create_application_credential", {"user": {"id": "sa"}}) == \
        {"system_admin"}  # nobody makes application credentials for someone else
    for action in ("identity:get_credential", "identity:create_credential",
                   "identity:delete_credential"):
        assert "project_member" in allowed(action, {"credential": {"user_id": "pm"}})
        assert "project_member" not in allowed(action, {"credential": {"user_id": "pr"}})
    assert allowed("identity:validate_token", {"token": {"user_id": "pr"}}) == \
        CLOUD_WIDE_READERS | {"project_reader"}


def test_projects() -> None:
    p1 = {"project": {"id": "p1", "domain_id": "d1"}}
    p2 = {"project": {"id": "p2", "domain_id": "d1"}}
    elsewhere = {"project": {"id": "p3", "domain_id": "d2"}}
    in_p1 = {"project_admin", "project_member", "project_reader"}
    domain_d1 = {"domain_admin", "domain_reader"}
    assert allowed("identity:get_project", p1) == CLOUD_WIDE_READERS | domain_d1 | in_p1
    assert allowed("identity:get_project", p2) == CLOUD_WIDE_READERS | domain_d1
    assert allowed("identity:get_project", elsewhere) == CLOUD_WIDE_READERS
    assert allowed("identity:update_project", p1) == CLOUD_WIDE_ADMINS | {"domain_admin"}
    assert allowed("identity:delete_project", elsewhere) == CLOUD_WIDE_ADMINS
    assert allowed("identity:create_project_tag", p1) == \
        CLOUD_WIDE_ADMINS | {"domain_admin", "project_admin"}
    assert allowed("identity:create_project_tag", p2) == CLOUD_WIDE_ADMINS | {"domain_admin"}
    assert allowed("identity:list_role_assignments_for_tree", p1) == \
        CLOUD_WIDE_READERS | domain_d1 | {"project_admin"}


def test_grants_need_actor_and_target_in_the_domain() -> None:
    mine = {"user": {"id": "u", "domain_id": "d1"}}
    foreign = {"user": {"id": "u", "domain_id": "d2"}}
    team = {"group": {"id": "g", "domain_id": "d1"}}
    p1 = {"project": {"id": "p1", "domain_id": "d1"}}
    p2 = {"project": {"id": "p2", "domain_id": "d2"}}
    d1 = {"domain": {"id": "d1"}}
    admins = CLOUD_WIDE_ADMINS | {"domain_admin"}
    assert allowed("identity:create_grant", {**mine, **p1}) == admins
    assert allowed("identity:create_grant", {**team, **d1}) == admins
    assert allowed("identity:revoke_grant", {**mine, **d1}) == admins
    assert allowed("identity:create_grant", {**foreign, **p1}) == CLOUD_WIDE_ADMINS
    assert allowed("identity:create_grant", {**mine, **p2}) == CLOUD_WIDE_ADMINS
    assert allowed("identity:create_grant", p1) == CLOUD_WIDE_ADMINS  # actor unknown
    assert allowed("identity:list_grants", {**mine, **p1}) == \
        CLOUD_WIDE_READERS | {"domain_admin", "domain_reader"}


def test_group_membership_needs_group_and_user_in_the_domain() -> None:
    team = {"group": {"id": "g", "domain_id": "d1"}}
    mine = {"user": {"id": "u", "domain_id": "d1"}}
    foreign = {"user": {"id": "u", "domain_id": "d2"}}
    for action in ("identity:add_user_to_group", "identity:remove_user_from_group"):
        assert allowed(action, {**team, **mine}) == CLOUD_WIDE_ADMINS | {"domain_admin"}
        assert allowed(action, {**team, **foreign}) == CLOUD_WIDE_ADMINS
        assert allowed(action, team) == CLOUD_WIDE_ADMINS
    assert allowed("identity:check_user_in_group", {**team, **mine}) == \
        CLOUD_WIDE_READERS | {"domain_admin", "domain_reader"}


@pytest.mark.parametrize("persona", ["project_admin", "project_member", "project_reader"])
def test_project_personas_never_act_cloud_wide(persona: str) -> None:
    cred = PERSONAS[persona]
    for action in RULES:
        if not action.startswith("identity:") or RULES[action] == "":
            continue
        for target in ({}, {"domain_id": None}, {"domain_id": "d1"}):
            if ENGINE.enforce(action, cred, {"target": target}):
                pytest.fail(f"{persona} may {action} on {target}")


def test_admin_of_a_non_admin_project_is_not_cloud_admin() -> None:
    assert not ENGINE.enforce("cloud_admin", PROJECT_ADMIN, {})
    assert ENGINE.enforce("cloud_admin", CLOUD_ADMIN, {})
    reader_of_admin_project = {**CLOUD_ADMIN, "roles": ["reader"]}
    assert ENGINE.enforce("cloud_reader", reader_of_admin_project, {})
    assert not ENGINE.enforce("cloud_admin", reader_of_admin_project, {})
