"""The policy language, the engine (linking, cycles, overrides) and keystone-style rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.common.policy import (
    PolicyEngine,
    PolicyFileError,
    PolicyNotAuthorized,
    UnknownAction,
    load_overrides,
    parse_rule,
)

NO_TARGET: dict[str, Any] = {}


def _check(rule: str, credentials: dict[str, Any] | None = None, target: Any = None) -> bool:
    engine = PolicyEngine({"action": rule})
    return engine.enforce("action", credentials or {}, target or {})


# ------------------------------------------------------------------ the language


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("@", True),
        ("!", False),
        ("", True),  # oslo.policy: the empty rule allows everyone
        ("not @", False),
        ("not not @", True),
        ("@ or ! and !", True),  # and binds tighter than or
        ("(@ or !) and !", False),
        ("! and ! or @", True),
        ("not ! and !", False),  # not binds tighter than and
        ("not (! and !)", True),
        ("! or not ! and @", True),
        ("((@))", True),
        ("(! or (! or (@ and not !)))", True),
        ("@ AND ! OR NOT !", True),  # keywords are case-insensitive
    ],
)
def test_operators_and_precedence(rule: str, expected: bool) -> None:
    assert _check(rule) is expected


def _expressions() -> st.SearchStrategy[tuple[str, str]]:
    """(policy rule, equivalent Python expression) pairs."""
    leaves = st.sampled_from([("@", "True"), ("!", "False")])

    def extend(children: st.SearchStrategy[tuple[str, str]]) -> st.SearchStrategy[Any]:
        binary = st.tuples(children, st.sampled_from(["and", "or"]), children).map(
            lambda t: (f"{t[0][0]} {t[1]} {t[2][0]}", f"{t[0][1]} {t[1]} {t[2][1]}")
        )
        negated = children.map(lambda c: (f"not {c[0]}", f"not {c[1]}"))
        grouped = children.map(lambda c: (f"({c[0]})", f"({c[1]})"))
        return binary | negated | grouped

    return st.recursive(leaves, extend, max_leaves=12)


@given(_expressions())
def test_precedence_matches_python(pair: tuple[str, str]) -> None:
    rule, python = pair
    assert _check(rule) is eval(python)  # same precedence: not > and > or


def test_role_check_is_case_insensitive() -> None:
    assert _check("role:Admin", {"roles": ["reader", "admin"]})
    assert not _check("role:admin", {"roles": ["reader"]})
    assert not _check("role:admin", {})
    assert not _check("role:admin", {"roles": "admin"})  # a string is not a role list


def test_role_check_with_target_substitution() -> None:
    assert _check("role:%(role.name)s", {"roles": ["member"]}, {"role": {"name": "Member"}})
    assert not _check("role:%(role.name)s", {"roles": ["member"]}, {})


def test_generic_check_against_target_paths() -> None:
    creds = {"user_id": "u1", "project_id": "p1"}
    assert _check("user_id:%(target.user.id)s", creds, {"target": {"user": {"id": "u1"}}})
    assert not _check("user_id:%(target.user.id)s", creds, {"target": {"user": {"id": "u2"}}})
    assert _check("project_id:%(project_id)s", creds, {"project_id": "p1"})
    # Keystone's flattened form works too
    assert _check("user_id:%(target.user.id)s", creds, {"target.user.id": "u1"})


def test_missing_or_none_never_matches() -> None:
    rule = "domain_id:%(target.project.domain_id)s"
    assert not _check(rule, {"domain_id": "d"}, {})
    assert not _check(rule, {"domain_id": "d"}, {"target": {"project": None}})
    assert not _check(rule, {"domain_id": "d"}, {"target": "not-a-dict"})
    # oslo.policy renders both sides as "None" and allows this: we don't
    assert not _check(rule, {"domain_id": None}, {"target": {"project": {"domain_id": None}}})
    assert not _check(rule, {}, {"target": {"project": {"domain_id": None}}})


def test_generic_check_nested_credentials_and_lists() -> None:
    creds = {"token": {"domain": {"id": "d1"}}, "groups": [{"id": "g1"}, {"id": "g2"}]}
    target = {"target": {"user": {"domain_id": "d1"}}}
    assert _check("token.domain.id:%(target.user.domain_id)s", creds, target)
    assert _check("groups.id:g2", creds)
    assert not _check("groups.id:g3", creds)
    assert not _check("token.domain.id:d1.x", creds)
    assert not _check("token.missing.id:d1", creds)


def test_literal_matches() -> None:
    assert _check("system_scope:all", {"system_scope": "all"})
    assert not _check("system_scope:all", {"system_scope": None})
    assert not _check("system_scope:all", {})
    assert _check("is_admin_project:True", {"is_admin_project": True})
    assert not _check("is_admin_project:True", {"is_admin_project": False})
    assert _check("is_admin_project:False", {"is_admin_project": False})
    assert _check("token.is_admin_project:True", {"token": {"is_admin_project": True}})


def test_python_literal_kind_against_target() -> None:
    assert _check("True:%(user.enabled)s", {}, {"user": {"enabled": True}})
    assert not _check("True:%(user.enabled)s", {}, {"user": {"enabled": False}})
    assert _check("'Member':%(role.name)s", {}, {"role": {"name": "Member"}})


def test_templates_mix_literals_and_percent() -> None:
    target = {"a": "x", "b": "y"}
    assert _check("name:%(a)s-%(b)s", {"name": "x-y"}, target)
    assert _check("ratio:100%%", {"ratio": "100%"})


def test_parentheses_hugging_checks() -> None:
    creds = {"roles": ["reader"], "system_scope": "all"}
    assert _check("(role:reader and system_scope:all)", creds)
    assert _check("((role:admin) or (role:reader and (system_scope:all)))", creds)


def test_str_of_parsed_rule() -> None:
    text = str(parse_rule("role:a or not role:b and rule:c"))
    assert text == "(role:a or (not role:b and rule:c))"


# ------------------------------------------------------------------ keystone-style rules

SYSTEM_READER = "role:reader and system_scope:all"
KEYSTONE_RULES = {
    "admin_required": "role:admin or is_admin:1",
    "owner": "user_id:%(user_id)s",
    "admin_or_owner": "rule:admin_required or rule:owner",
    "identity:get_user": (
        "(rule:admin_required) or "
        f"({SYSTEM_READER}) or "
        "(role:reader and domain_id:%(target.user.domain_id)s) or "
        "user_id:%(target.user.id)s"
    ),
    "identity:list_projects": (
        f"({SYSTEM_READER}) or (role:reader and domain_id:%(target.domain_id)s)"
    ),
    "identity:create_project": "role:admin and system_scope:all",
    "identity:list_projects_for_user": "",
}


@pytest.fixture
def engine() -> PolicyEngine:
    return PolicyEngine(KEYSTONE_RULES)


def test_get_user(engine: PolicyEngine) -> None:
    target = {"target": {"user": {"id": "u9", "domain_id": "d1"}}}
    system_reader = {"roles": ["reader"], "system_scope": "all", "user_id": "u1"}
    domain_reader = {"roles": ["reader"], "domain_id": "d1", "user_id": "u2"}
    other_domain_reader = {"roles": ["reader"], "domain_id": "d2", "user_id": "u3"}
    project_member = {"roles": ["member"], "project_id": "p1", "user_id": "u4"}
    herself = {"roles": [], "user_id": "u9"}
    admin = {"roles": ["admin"], "project_id": "p1", "user_id": "u5"}
    assert engine.enforce("identity:get_user", system_reader, target)
    assert engine.enforce("identity:get_user", domain_reader, target)
    assert not engine.enforce("identity:get_user", other_domain_reader, target)
    assert not engine.enforce("identity:get_user", project_member, target)
    assert engine.enforce("identity:get_user", herself, target)
    assert engine.enforce("identity:get_user", admin, target)


def test_project_reader_is_not_system_reader(engine: PolicyEngine) -> None:
    project_reader = {"roles": ["reader"], "project_id": "p1", "system_scope": None}
    assert not engine.enforce("identity:list_projects", project_reader, {"target": {}})
    assert not engine.enforce("identity:create_project", {"roles": ["admin"]}, NO_TARGET)
    system_admin = {"roles": ["admin"], "system_scope": "all"}
    assert engine.enforce("identity:create_project", system_admin, NO_TARGET)


def test_empty_rule_allows_anyone(engine: PolicyEngine) -> None:
    assert engine.enforce("identity:list_projects_for_user", {}, NO_TARGET)


def test_authorize_raises_with_action(engine: PolicyEngine) -> None:
    engine.authorize("identity:create_project", {"roles": ["admin"], "system_scope": "all"}, {})
    with pytest.raises(PolicyNotAuthorized) as info:
        engine.authorize("identity:create_project", {"roles": ["member"]}, {})
    assert info.value.action == "identity:create_project"
    assert not isinstance(info.value, KeyError)


def test_unknown_action_is_a_programming_error(engine: PolicyEngine) -> None:
    with pytest.raises(UnknownAction) as info:
        engine.enforce("identity:nope", {}, {})
    assert isinstance(info.value, KeyError)
    assert "identity:nope" in str(info.value)
    with pytest.raises(UnknownAction):
        engine.authorize("identity:nope", {}, {})


def test_engine_introspection(engine: PolicyEngine) -> None:
    assert "identity:get_user" in engine
    assert "identity:nope" not in engine
    assert "owner" in engine.actions
    assert engine.rule_text("owner") == "user_id:%(user_id)s"


# ------------------------------------------------------------------ engine construction


def test_overrides_replace_and_add_rules() -> None:
    engine = PolicyEngine(
        KEYSTONE_RULES,
        overrides={"identity:create_project": "rule:project_creator", "project_creator": "@"},
    )
    assert engine.enforce("identity:create_project", {}, NO_TARGET)
    assert engine.rule_text("identity:create_project") == "rule:project_creator"
    assert KEYSTONE_RULES["identity:create_project"] == "role:admin and system_scope:all"


def test_override_can_redefine_a_base_rule() -> None:
    engine = PolicyEngine(KEYSTONE_RULES, overrides={"admin_required": "role:superuser"})
    assert not engine.enforce("admin_or_owner", {"roles": ["admin"]}, NO_TARGET)
    assert engine.enforce("admin_or_owner", {"roles": ["SuperUser"]}, NO_TARGET)


@pytest.mark.parametrize(
    "rules",
    [
        {"a": "rule:a"},
        {"a": "rule:b", "b": "rule:c", "c": "role:x or rule:a"},
        {"a": "@", "b": "rule:a and rule:c", "c": "not rule:b"},
    ],
)
def test_cycles_are_detected(rules: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="reference each other"):
        PolicyEngine(rules)


def test_cycle_introduced_by_override() -> None:
    with pytest.raises(ValueError, match="owner -> admin_or_owner -> owner"):
        PolicyEngine(KEYSTONE_RULES, overrides={"owner": "rule:admin_or_owner"})


def test_diamond_is_not_a_cycle() -> None:
    rules = {"a": "rule:b and rule:c", "b": "rule:d", "c": "rule:d", "d": "role:x"}
    assert PolicyEngine(rules).enforce("a", {"roles": ["x"]}, NO_TARGET)


def test_unknown_rule_reference() -> None:
    with pytest.raises(ValueError, match="'a' references unknown rule 'missing'"):
        PolicyEngine({"a": "role:x or rule:missing"})


@pytest.mark.parametrize(
    "text",
    [
        "role:a and",
        "or role:a",
        "(role:a",
        "role:a)",
        "role:a role:b",
        "not",
        "()",
        "justaword",
        ":nokind",
        "rule:",
        "user_id:%(unterminated",
        "user_id:%(x)d",
        "http://example.com/check",
        "role:a and and role:b",
    ],
)
def test_parse_errors_name_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match="policy rule 'identity:broken'"):
        PolicyEngine({"ok": "@", "identity:broken": text})


def test_non_string_rule_rejected() -> None:
    with pytest.raises(ValueError, match="not a string"):
        PolicyEngine({"a": ["role:x"]})  # type: ignore[dict-item]


# ------------------------------------------------------------------ overrides file


def test_load_overrides(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "# operator overrides\n"
        '"identity:create_project": "role:admin or role:project_creator"\n'
        "identity:get_user: rule:admin_required\n"
        'identity:list_projects_for_user: ""\n'
        'identity:delete_project: "!"\n'
    )
    overrides = load_overrides(path)
    assert overrides == {
        "identity:create_project": "role:admin or role:project_creator",
        "identity:get_user": "rule:admin_required",
        "identity:list_projects_for_user": "",
        "identity:delete_project": "!",
    }
    engine = PolicyEngine(KEYSTONE_RULES, overrides=overrides)
    assert engine.enforce("identity:create_project", {"roles": ["project_creator"]}, {})


def test_load_overrides_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("# nothing overridden\n")
    assert load_overrides(path) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [b, c\n", "not valid YAML"),
        ("- role:admin\n", "must be a mapping"),
        ("identity:x:\n", "must be a string"),  # null: refuse to guess allow or deny
        ("identity:x: [role:a]\n", "must be a string"),
        ("identity:x: 42\n", "must be a string"),
        ("1: role:a\n", "is not a string"),
        ("identity:x: !\n", "must be a string|not valid YAML"),  # unquoted '!' is a YAML tag
    ],
)
def test_load_overrides_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(PolicyFileError, match=message) as info:
        load_overrides(path)
    assert str(path) in str(info.value)


def test_load_overrides_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read policy file"):
        load_overrides(tmp_path / "nope.yaml")
