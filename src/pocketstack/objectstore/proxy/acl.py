"""Swift ACLs: container ACLs (v1 strings) and account ACLs (v2 JSON), and who they let in.

Container ACLs (``X-Container-Read`` / ``X-Container-Write``) are comma-separated items::

    .r:*                 any Referer (read ACL only)       .r:-host    deny that host
    .r:host              that Referer host                 .r:.dom     any host ending ".dom"
    .rlistings           referrer grants include the container listing
    project:user         cross-project grant; each side an id, ``*``, or (legacy) a name
    role                 any role of a user scoped to the account's own project

Account ACLs (``X-Account-Access-Control``) are JSON, ``{"admin": [...], "read-write":
[...], "read-only": [...]}``, whose entries are grantees as above or bare project ids.

Evaluation follows Swift's keystoneauth middleware. It is the *non-owner* path: the proxy
first grants owners (operator roles, reseller admin) and only then asks `authorize_container`
or `account_access_level`. Order of the container checks, as keystoneauth:

1. a ``project:user`` grantee matching the identity allows;
2. a Referer allowed by the ``.r:`` items allows object reads, and container listings only
   with ``.rlistings``; an allowed Referer *without* ``.rlistings`` on a listing denies, even
   if step 4 would have matched (keystoneauth's ``acl_authorized is not None`` rule);
3. an identity scoped to another project than the account's is denied;
4. a role of the identity named in the ACL (case-insensitively) allows.

An anonymous request (no identity) only gets steps 2's grants.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import quote, unquote, urlparse

from pocketstack.objectstore.constraints import ConstraintError

REFERRER_DESIGNATORS: Final = (".r", ".ref", ".referer", ".referrer")
RLISTINGS: Final = ".rlistings"
READ_METHODS: Final = frozenset({"GET", "HEAD"})
WRITE_METHODS: Final = frozenset({"PUT", "POST", "DELETE"})

AccessLevel = Literal["admin", "read-write", "read-only"]
ACCESS_LEVELS: Final[tuple[AccessLevel, ...]] = ("admin", "read-write", "read-only")
"""Strongest first: the order in which an account ACL is searched."""


@dataclass(frozen=True)
class Identity:
    """Who a validated token says the caller is (ids, names and roles of its scope)."""

    user_id: str
    project_id: str
    user_name: str | None = None
    project_name: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)


# -- container ACLs --------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerAcl:
    """One parsed container ACL: ``.r:`` designations (without ``.r:``) and grantees."""

    referrers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def rlistings(self) -> bool:
        """Do referrer grants include the container listing?"""
        return RLISTINGS in self.groups


@dataclass(frozen=True)
class ContainerAcls:
    """A container's read and write ACLs, as stored with the container."""

    read: ContainerAcl = ContainerAcl()
    write: ContainerAcl = ContainerAcl()

    @classmethod
    def from_headers(cls, read: str | None, write: str | None) -> ContainerAcls:
        """Parse the stored ``X-Container-Read`` / ``X-Container-Write`` values."""
        return cls(read=parse_container_acl(read), write=parse_container_acl(write))


def _clean_referrer(header: str, raw_item: str, designation: str) -> str:
    """The canonical ``.r:[-]host`` for one referrer item, or ValueError."""
    if "write" in header:
        raise ValueError(f"Referrers not allowed in write ACL: {raw_item!r}")
    negate = designation.startswith("-")
    if negate:
        designation = designation[1:].strip()
    if designation.startswith("*") and designation != "*":
        designation = designation[1:].strip()
    if not designation or designation == ".":
        raise ValueError(
            f"No host/domain value after referrer designation in ACL: {raw_item!r}"
        )
    return ".r:" + ("-" if negate else "") + designation


def clean_acl(name: str, value: str) -> str:
    """Normalize a container ACL header value, or raise ValueError, as Swift's ``clean_acl``.

    Drops empty items and the spaces around items; shortens ``.ref``/``.referer``/
    ``.referrer`` to ``.r`` and ``*.example.com`` to ``.example.com``. Raises ValueError (the
    proxy answers 400 with ``str(error)`` as the body) for referrers in a header whose name
    contains "write", a referrer without a host, or an unknown ``.designator:``.
    """
    header = name.lower()
    items: list[str] = []
    for raw_item in value.split(","):
        raw_item = raw_item.strip()
        if not raw_item:
            continue
        first, colon, second = raw_item.partition(":")
        first = first.strip()
        if not colon or not first.startswith("."):
            items.append(raw_item)
        elif first in REFERRER_DESIGNATORS:
            items.append(_clean_referrer(header, raw_item, second.strip()))
        else:
            raise ValueError(f"Unknown designator {first!r} in ACL: {raw_item!r}")
    return ",".join(items)


def parse_container_acl(value: str | None) -> ContainerAcl:
    """Split a cleaned ACL into referrers and grantees (percent-decoded, as newer Swift)."""
    referrers: list[str] = []
    groups: list[str] = []
    for item in (value or "").split(","):
        if item.startswith(".r:"):
            referrers.append(item[len(".r:"):])
        elif item:
            groups.append(unquote(item))
    return ContainerAcl(referrers=tuple(referrers), groups=tuple(groups))


_GROUP_SAFE: Final = "!#$&'()*+/:;<=>?@[]^`{|}\""


def _quote_group(group: str) -> str:
    """A grantee as an ACL item: ``%``, ``,``, spaces and non-ASCII percent-encoded, and
    ``:`` too when the grantee starts with ``.`` (where it would read as a designator)."""
    safe = _GROUP_SAFE.replace(":", "") if group.startswith(".") else _GROUP_SAFE
    return quote(group, safe=safe)


def format_container_acl(acl: ContainerAcl) -> str:
    """The ACL header value for ``acl`` (grantees first, then referrers, as Swift)."""
    items = [_quote_group(group) for group in acl.groups]
    items.extend(".r:" + referrer for referrer in acl.referrers)
    return ",".join(items)


def _referrer_host(referrer: str | None) -> str:
    try:
        host = urlparse(referrer or "").hostname
    except ValueError:  # e.g. an unbalanced "[" in the netloc
        host = None
    return host or "unknown"


def _host_matches(pattern: str, host: str) -> bool:
    return pattern == host or (pattern.startswith(".") and host.endswith(pattern))


def referrer_allowed(referrer: str | None, referrers: Sequence[str]) -> bool:
    """Does the ``Referer`` header pass the ``.r:`` designations? Later items win.

    The Referer's host (``unknown`` when absent or unparsable) is compared with each
    designation: ``*`` matches any host, ``.dom`` any host ending with it; a ``-`` prefix
    turns a match into a denial.
    """
    host = _referrer_host(referrer)
    allow = False
    for designation in referrers:
        if designation.startswith("-"):
            if _host_matches(designation[1:], host):
                allow = False
        elif designation == "*" or _host_matches(designation, host):
            allow = True
    return allow


def grantee_names(identity: Identity, *, allow_names: bool = True) -> frozenset[str]:
    """Every ``project:user`` string that names ``identity`` (ids, ``*``, names).

    Names are legacy (not unique across domains): keystoneauth matches them only when the
    user, its project and the account all live in the default domain; pass
    ``allow_names=False`` otherwise.
    """
    projects = [identity.project_id, "*"]
    users = [identity.user_id, "*"]
    if allow_names:
        projects += [identity.project_name] if identity.project_name else []
        users += [identity.user_name] if identity.user_name else []
    return frozenset(f"{project}:{user}" for project in projects for user in users)


def _role_granted(groups: Iterable[str], roles: Iterable[str]) -> bool:
    wanted = {group.lower() for group in groups}
    return any(role.lower() in wanted for role in roles)


def _acl_for(acls: ContainerAcls, method: str, is_object: bool) -> ContainerAcl | None:
    if method in READ_METHODS:
        return acls.read
    if method in WRITE_METHODS and is_object:
        return acls.write
    return None


def authorize_container(
    acls: ContainerAcls,
    identity: Identity | None,
    *,
    method: str,
    is_object: bool,
    referrer: str | None,
    account_project_id: str | None,
    allow_names: bool = True,
) -> bool:
    """Do a container's ACLs let a non-owner make this request? (keystoneauth semantics)

    GET/HEAD use the read ACL (``is_object=False`` is the container listing or HEAD);
    PUT/POST/DELETE of an *object* use the write ACL; changes to the container itself are
    for owners only, and OPTIONS is always let through (CORS answers it). ``identity`` is
    None for an anonymous request; ``account_project_id`` is the project owning the account
    (role grants only apply to users scoped to it). See the module docstring for the order.
    """
    method = method.upper()
    if method == "OPTIONS":
        return True
    acl = _acl_for(acls, method, is_object)
    if acl is None:
        return False
    if identity is not None and grantee_names(identity, allow_names=allow_names) & set(
        acl.groups
    ):
        return True
    if referrer_allowed(referrer, acl.referrers):
        return is_object or acl.rlistings
    if identity is None or identity.project_id != account_project_id:
        return False
    return _role_granted(acl.groups, identity.roles)


# -- account ACLs ----------------------------------------------------------------------


@dataclass(frozen=True)
class AccountAcl:
    """A v2 account ACL. A level is None when its key is absent (so it formats back as sent)."""

    admin: tuple[str, ...] | None = None
    read_write: tuple[str, ...] | None = None
    read_only: tuple[str, ...] | None = None

    def level(self, level: AccessLevel) -> tuple[str, ...] | None:
        """The grantees of one level, None when its key is absent."""
        if level == "admin":
            return self.admin
        return self.read_write if level == "read-write" else self.read_only

    def members(self, level: AccessLevel) -> tuple[str, ...]:
        """The grantees of one level (empty when the key is absent)."""
        return self.level(level) or ()

    @property
    def is_empty(self) -> bool:
        """No key at all: Swift then stores nothing and returns no header."""
        return self.admin is None and self.read_write is None and self.read_only is None


class AccountAclError(ConstraintError, ValueError):
    """400 for a bad ``X-Account-Access-Control`` (also a ValueError, like Swift's)."""


def _acl_error(problem: str, value: str) -> AccountAclError:
    body = f"X-Account-Access-Control invalid: {problem}\n\nInput: {value}\n"
    return AccountAclError(400, body, content_type="text/plain; charset=UTF-8")


def _load_json_object(value: str) -> dict[str, object] | None:
    if value == "":
        return {}
    try:
        loaded = json.loads(value)
    except ValueError:
        return None
    return loaded if type(loaded) is dict else None


def _validated_levels(data: dict[str, object]) -> dict[str, tuple[str, ...]] | str:
    """The levels of a parsed ACL, or the problem with it (tempauth's messages)."""
    for key in data:
        if key not in ACCESS_LEVELS:
            return f"Key {json.dumps(key)} not recognized"
    levels: dict[str, tuple[str, ...]] = {}
    for key in ACCESS_LEVELS:
        if key not in data:
            continue
        members = data[key]
        if not isinstance(members, list):
            return f"Value for key {json.dumps(key)} must be a list"
        if not all(isinstance(member, str) for member in members):
            return f"Elements of {json.dumps(key)} list must be strings"
        levels[key] = tuple(members)
    return levels


def parse_account_acl(value: str) -> AccountAcl:
    """Validate an ``X-Account-Access-Control`` header sent by an owner.

    `AccountAclError` 400 (body "X-Account-Access-Control invalid: <problem>\\n\\nInput:
    <value>\\n", as tempauth) for bad JSON or a non-object, an unknown key, a non-list
    value, or a non-string member. An empty value or ``{}`` is the empty ACL (it removes
    the ACL).
    """
    data = _load_json_object(value)
    if data is None:
        raise _acl_error(f"Syntax error in input ({value!r})", value)
    levels = _validated_levels(data)
    if isinstance(levels, str):
        raise _acl_error(levels, value)
    return AccountAcl(
        admin=levels.get("admin"),
        read_write=levels.get("read-write"),
        read_only=levels.get("read-only"),
    )


def load_account_acl(stored: str | None) -> AccountAcl | None:
    """The ACL stored in account sysmeta, leniently (Swift's ``acls_from_account_info``).

    None when nothing usable is stored: no value, invalid data, or no grantee at all.
    """
    if stored is None:
        return None
    data = _load_json_object(stored)
    if data is None:
        return None
    levels = _validated_levels(data)
    if isinstance(levels, str) or not any(levels.values()):
        return None
    return AccountAcl(
        admin=levels.get("admin", ()),
        read_write=levels.get("read-write", ()),
        read_only=levels.get("read-only", ()),
    )


def format_account_acl(acl: AccountAcl) -> str:
    """The header value Swift returns: keys sorted, no spaces, ASCII-only JSON."""
    data = {
        level: list(members)
        for level in ACCESS_LEVELS
        if (members := acl.level(level)) is not None
    }
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"), sort_keys=True)


def account_access_level(
    acl: AccountAcl | None, identity: Identity | None, *, allow_names: bool = True
) -> AccessLevel | None:
    """The strongest level ``acl`` grants ``identity``, or None.

    A grantee matches as in container ACLs (``project:user`` with ids, ``*`` or names), or
    as a bare project id (every user scoped to that project), the keystone reading of
    tempauth's account group.
    """
    if acl is None or identity is None:
        return None
    names = set(grantee_names(identity, allow_names=allow_names))
    names.add(identity.project_id)
    if allow_names and identity.project_name:
        names.add(identity.project_name)
    for level in ACCESS_LEVELS:
        if names.intersection(acl.members(level)):
            return level
    return None


def account_level_allows(level: AccessLevel | None, *, method: str, is_account: bool) -> bool:
    """Does an account ACL level allow the request (tempauth's rules)?

    ``admin`` allows everything (and makes the caller an owner); ``read-write`` allows every
    container and object request but only GET/HEAD on the account itself; ``read-only``
    allows GET/HEAD.
    """
    method = method.upper()
    if level == "admin":
        return True
    if level == "read-write":
        return not is_account or method in READ_METHODS
    if level == "read-only":
        return method in READ_METHODS
    return False
