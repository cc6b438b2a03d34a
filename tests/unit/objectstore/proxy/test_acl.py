"""proxy.acl: Swift's container and account ACLs, evaluated as keystoneauth does."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.proxy.acl import (
    AccountAcl,
    AccountAclError,
    ContainerAcl,
    ContainerAcls,
    Identity,
    account_access_level,
    account_level_allows,
    authorize_container,
    clean_acl,
    format_account_acl,
    format_container_acl,
    grantee_names,
    load_account_acl,
    parse_account_acl,
    parse_container_acl,
    referrer_allowed,
)

READ = "X-Container-Read"
WRITE = "X-Container-Write"

ALICE = Identity(user_id="u-alice", user_name="alice", project_id="p-home",
                 project_name="home", roles=frozenset({"member"}))
BOB = Identity(user_id="u-bob", user_name="bob", project_id="p-other",
               project_name="other", roles=frozenset({"Reader"}))


# -- clean_acl -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("bob, sue", "bob,sue"),
        ("bob , sue", "bob,sue"),
        ("bob,,,sue", "bob,sue"),
        (".referrer : *", ".r:*"),
        (".ref:*.example.com", ".r:.example.com"),
        (".r:*, .rlistings", ".r:*,.rlistings"),
        (".referer:-thief.example.com", ".r:-thief.example.com"),
        (".r: - *.thief.com", ".r:-.thief.com"),
        ("p1:u1, *:*,  role", "p1:u1,*:*,role"),
        ("", ""),
        (" , ", ""),
        (":x", ":x"),
        ("a: b", "a: b"),
    ],
)
def test_clean_acl_normalizes_as_swift(raw: str, cleaned: str) -> None:
    assert clean_acl(READ, raw) == cleaned


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (READ, ".r:", "No host/domain value after referrer designation in ACL: '.r:'"),
        (READ, ".r:-", "No host/domain value after referrer designation in ACL: '.r:-'"),
        (READ, ".r:*.", "No host/domain value after referrer designation in ACL: '.r:*.'"),
        (READ, ".r:.", "No host/domain value after referrer designation in ACL: '.r:.'"),
        (READ, ".x:y", "Unknown designator '.x' in ACL: '.x:y'"),
        (WRITE, ".r:*", "Referrers not allowed in write ACL: '.r:*'"),
        ("x-container-write", "a, .ref:host", "Referrers not allowed in write ACL: '.ref:host'"),
    ],
)
def test_clean_acl_rejects_as_swift(name: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        clean_acl(name, raw)
    assert str(info.value) == message


# -- parse / format --------------------------------------------------------------------


def test_parse_container_acl() -> None:
    acl = parse_container_acl(".r:*,.r:-bad.com,.rlistings,p:u,role,a%2Cb")
    assert acl.referrers == ("*", "-bad.com")
    assert acl.groups == (".rlistings", "p:u", "role", "a,b")
    assert acl.rlistings
    assert parse_container_acl(None) == ContainerAcl()
    assert parse_container_acl("") == ContainerAcl()
    assert not parse_container_acl("p:u").rlistings


def test_format_container_acl_puts_groups_first() -> None:
    acl = ContainerAcl(referrers=("*",), groups=("p:u", ".rlistings"))
    assert format_container_acl(acl) == "p:u,.rlistings,.r:*"
    assert format_container_acl(ContainerAcl(groups=("a,b", "50%"))) == "a%2Cb,50%25"
    assert format_container_acl(ContainerAcl(groups=(".r:x",))) == ".r%3Ax"


def test_container_acls_from_headers() -> None:
    acls = ContainerAcls.from_headers(".r:*", "p:u")
    assert acls.read.referrers == ("*",)
    assert acls.write.groups == ("p:u",)
    assert ContainerAcls.from_headers(None, None) == ContainerAcls()


hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,5}){0,2}", fullmatch=True)
referrer_items = st.one_of(
    st.just("*"), st.just("-*"), hosts, hosts.map(lambda h: "." + h),
    hosts.map(lambda h: "-" + h), hosts.map(lambda h: "-." + h),
)
groups = st.text(min_size=1, max_size=20).filter(lambda g: "\x00" not in g)


@given(st.lists(groups, max_size=5), st.lists(referrer_items, max_size=5))
def test_container_acl_round_trips_through_clean_and_parse(
    group_list: list[str], referrer_list: list[str]
) -> None:
    acl = ContainerAcl(referrers=tuple(referrer_list), groups=tuple(group_list))
    text = format_container_acl(acl)
    assert clean_acl(READ, text) == text
    assert parse_container_acl(clean_acl(READ, text)) == acl


@given(st.text(max_size=40))
def test_clean_acl_is_idempotent_when_it_accepts(raw: str) -> None:
    try:
        once = clean_acl(READ, raw)
    except ValueError:
        return
    assert clean_acl(READ, once) == once


# -- referrers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer", "designations", "allowed"),
    [
        ("http://www.example.com/index.html", ["*"], True),
        (None, ["*"], True),
        ("", ["*"], True),
        ("http://www.example.com/", [".example.com"], True),
        ("http://example.com/", [".example.com"], False),
        ("http://www.example.com/", ["www.example.com"], True),
        ("http://WWW.Example.COM/", ["www.example.com"], True),
        ("http://thief.example.com/", [".example.com", "-thief.example.com"], False),
        ("http://good.example.com/", [".example.com", "-thief.example.com"], True),
        ("http://thief.example.com/", ["-thief.example.com", ".example.com"], True),
        ("http://a.thief.com/", ["*", "-.thief.com"], False),
        ("http://a.b.com/", ["*", "-*"], True),
        ("http://a.b.com/", [], False),
        ("not a url", ["unknown"], True),
        ("http://[::1/", ["unknown"], True),
        ("http://www.example.com/", ["other.com"], False),
    ],
)
def test_referrer_allowed(referrer: str | None, designations: list[str], allowed: bool) -> None:
    assert referrer_allowed(referrer, designations) is allowed


# -- container authorization -----------------------------------------------------------


def allowed(
    read: str = "",
    write: str = "",
    *,
    identity: Identity | None = ALICE,
    method: str = "GET",
    is_object: bool = True,
    referrer: str | None = None,
    account_project_id: str | None = "p-home",
    allow_names: bool = True,
) -> bool:
    return authorize_container(
        ContainerAcls.from_headers(read, write), identity, method=method, is_object=is_object,
        referrer=referrer, account_project_id=account_project_id, allow_names=allow_names,
    )


def test_grantee_names_of_an_identity() -> None:
    names = grantee_names(ALICE)
    assert {"p-home:u-alice", "p-home:*", "*:u-alice", "*:*", "home:alice", "home:*",
            "*:alice", "p-home:alice", "home:u-alice"} == names
    assert "home:alice" not in grantee_names(ALICE, allow_names=False)


@pytest.mark.parametrize(
    "grantee", ["p-other:u-bob", "p-other:*", "*:u-bob", "*:*", "other:bob", "other:*", "*:bob"]
)
def test_cross_project_grants_read(grantee: str) -> None:
    assert allowed(read=grantee, identity=BOB)
    assert allowed(read=grantee, identity=BOB, is_object=False)  # listing too


def test_cross_project_names_need_allow_names() -> None:
    assert not allowed(read="other:bob", identity=BOB, allow_names=False)
    assert allowed(read="p-other:u-bob", identity=BOB, allow_names=False)


def test_cross_project_grant_must_match_both_sides() -> None:
    assert not allowed(read="p-other:u-alice", identity=BOB)
    assert not allowed(read="p-home:u-bob", identity=BOB)
    assert not allowed(read="p-other", identity=BOB)  # a bare project is a role name


def test_roles_grant_only_within_the_accounts_project() -> None:
    assert allowed(read="member", identity=ALICE)
    assert allowed(read="MEMBER", identity=ALICE)  # roles compare case-insensitively
    assert not allowed(read="reader", identity=BOB)  # BOB is scoped to another project
    assert allowed(read="reader", identity=BOB, account_project_id="p-other")
    assert not allowed(read="member", identity=ALICE, account_project_id=None)


def test_read_acl_does_not_grant_writes_and_vice_versa() -> None:
    assert not allowed(read="*:*", method="PUT")
    assert allowed(write="*:*", method="PUT")
    assert allowed(write="*:*", method="post")
    assert allowed(write="*:*", method="DELETE")
    assert not allowed(write="*:*", method="GET")
    assert not allowed(write="*:*", method="HEAD")


def test_write_acl_never_grants_container_changes() -> None:
    for method in ("PUT", "POST", "DELETE"):
        assert not allowed(read="*:*", write="*:*", method=method, is_object=False)
    assert not allowed(write="*:*", method="COPY")


def test_options_is_always_let_through() -> None:
    assert allowed(method="OPTIONS", identity=None)


def test_referrer_grants_object_reads_to_anyone() -> None:
    assert allowed(read=".r:*", identity=None)
    assert allowed(read=".r:*", identity=None, method="HEAD")
    assert allowed(read=".r:.example.com", identity=None, referrer="http://a.example.com/x")
    assert not allowed(read=".r:.example.com", identity=None, referrer="http://evil.com/")
    assert not allowed(read="", identity=None)
    assert not allowed(read="*:*", identity=None)


def test_listing_by_referrer_needs_rlistings() -> None:
    assert not allowed(read=".r:*", identity=None, is_object=False)
    assert allowed(read=".r:*,.rlistings", identity=None, is_object=False)


def test_allowed_referrer_without_rlistings_denies_a_role_grant_on_listing() -> None:
    # keystoneauth: acl_authorized is False (not None), so the role check never runs.
    assert not allowed(read=".r:*,member", is_object=False)
    assert allowed(read=".r:*,member", is_object=True)
    assert allowed(read=".r:-nobody.com,member", is_object=False, referrer="http://x.com/")


def test_cross_project_grant_wins_before_the_referrer_rule() -> None:
    assert allowed(read=".r:*,p-other:*", identity=BOB, is_object=False)


# -- account ACLs ----------------------------------------------------------------------


def test_parse_account_acl() -> None:
    acl = parse_account_acl('{"admin":["p1:u1"],"read-only":["p2"]}')
    assert acl == AccountAcl(admin=("p1:u1",), read_only=("p2",))
    assert acl.members("read-write") == ()
    assert acl.level("read-write") is None
    assert parse_account_acl("").is_empty
    assert parse_account_acl("{}").is_empty


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{bad", "Syntax error in input ('{bad')"),
        ("[]", "Syntax error in input ('[]')"),
        ('"admin"', "Syntax error in input ('\"admin\"')"),
        ('{"owner": []}', 'Key "owner" not recognized'),
        ('{"admin": "p1"}', 'Value for key "admin" must be a list'),
        ('{"read-write": [1]}', 'Elements of "read-write" list must be strings'),
    ],
)
def test_bad_account_acl_is_400_with_tempauths_body(value: str, problem: str) -> None:
    with pytest.raises(AccountAclError) as info:
        parse_account_acl(value)
    err = info.value
    assert isinstance(err, ConstraintError) and isinstance(err, ValueError)
    assert err.status == 400
    assert err.message == f"X-Account-Access-Control invalid: {problem}\n\nInput: {value}\n"
    assert err.content_type == "text/plain; charset=UTF-8"


def test_format_account_acl_is_compact_sorted_ascii() -> None:
    acl = parse_account_acl('{"read-only": ["p2", "☃"], "admin": ["p1"]}')
    assert format_account_acl(acl) == '{"admin":["p1"],"read-only":["p2","\\u2603"]}'
    assert format_account_acl(AccountAcl(admin=())) == '{"admin":[]}'
    assert format_account_acl(AccountAcl()) == "{}"


levels = st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=4).map(tuple))


@given(levels, levels, levels)
def test_account_acl_round_trips(
    admin: tuple[str, ...] | None, rw: tuple[str, ...] | None, ro: tuple[str, ...] | None
) -> None:
    acl = AccountAcl(admin=admin, read_write=rw, read_only=ro)
    text = format_account_acl(acl)
    assert text.isascii()
    assert parse_account_acl(text) == acl
    assert json.loads(text) == {k: list(v) for k, v in
                                (("admin", admin), ("read-write", rw), ("read-only", ro))
                                if v is not None}


def test_load_account_acl_is_lenient() -> None:
    assert load_account_acl(None) is None
    assert load_account_acl("{bad") is None
    assert load_account_acl('{"admin": []}') is None
    assert load_account_acl('{"owner": ["x"]}') is None
    loaded = load_account_acl('{"read-only": ["p2"]}')
    assert loaded == AccountAcl(admin=(), read_write=(), read_only=("p2",))


def test_account_access_level_picks_the_strongest() -> None:
    acl = AccountAcl(admin=("p-x:u-x",), read_write=("p-home",), read_only=("*:u-alice",))
    assert account_access_level(acl, ALICE) == "read-write"
    acl = AccountAcl(admin=("home:alice",), read_only=("p-home",))
    assert account_access_level(acl, ALICE) == "admin"
    assert account_access_level(acl, ALICE, allow_names=False) == "read-only"
    assert account_access_level(acl, BOB) is None
    assert account_access_level(None, ALICE) is None
    assert account_access_level(acl, None) is None
    assert account_access_level(AccountAcl(read_only=("*:*",)), BOB) == "read-only"


@pytest.mark.parametrize(
    ("level", "method", "is_account", "expected"),
    [
        ("admin", "DELETE", True, True),
        ("admin", "PUT", False, True),
        ("read-write", "PUT", False, True),
        ("read-write", "DELETE", False, True),
        ("read-write", "GET", True, True),
        ("read-write", "POST", True, False),
        ("read-only", "GET", False, True),
        ("read-only", "head", True, True),
        ("read-only", "PUT", False, False),
        (None, "GET", False, False),
    ],
)
def test_account_level_allows(level: str | None, method: str, is_account: bool,
                              expected: bool) -> None:
    assert account_level_allows(level, method=method, is_account=is_account) is expected  # type: ignore[arg-type]
