"""``GET /v3/role_assignments``: the grants as stored, or (``effective``) as they act.

The effective view expands each stored grant the way token scoping sees it: a group grant
becomes one assignment per member (``links.membership``), an inherited grant becomes one per
project below its target (``links.inherited_to``), and each role adds the roles it implies;
domain-specific roles drop out once expanded, as in Keystone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.identity import models as m
from pocketstack.identity.exceptions import ValidationError

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity


@dataclass(frozen=True)
class AssignmentFilter:
    user_id: str | None = None
    group_id: str | None = None
    role_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    inherited_only: bool = False
    effective: bool = False
    include_names: bool = False
    include_subtree: bool = False
    within_domain: str | None = None  # only assignments on this domain or its projects


@dataclass(frozen=True)
class Found:
    """One assignment in the listing (stored or derived)."""

    role_id: str
    user_id: str | None = None
    group_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    inherited: bool = False
    via_group: str | None = None
    via_target: tuple[str, str] | None = None  # (kind, id) of the inherited grant's target
    prior_role: str | None = None
    stored_role: str | None = None  # the granted role when this one is implied


def check_filter(q: AssignmentFilter) -> None:
    """Keystone's 400s for filter combinations that can only ever list nothing."""
    pairs = ((q.domain_id and q.project_id, "Specify a domain or project, not both"),
             (q.system and q.domain_id, "Specify system or domain, not both"),
             (q.system and q.project_id, "Specify system or project, not both"),
             (q.user_id and q.group_id, "Specify a user or group, not both"),
             (q.effective and q.group_id, "Combining effective and group filter will always "
                                          "result in an empty list."),
             (q.effective and q.inherited_only and q.domain_id,
              "Combining effective, domain and inherited filters will always result in an "
              "empty list."),
             (q.include_subtree and not q.project_id,
              "scope.project.id must be specified if include_subtree is also specified"))
    for wrong, message in pairs:
        if wrong:
            raise ValidationError(message)


def list_role_assignments(hub: Identity, q: AssignmentFilter, base_url: str
                          ) -> list[dict[str, Any]]:
    check_filter(q)
    with hub.db.session() as s:
        found = [_from_row(r) for r in _rows(hub, s, q)]
        if q.effective:
            found = _expand(hub, s, found)
        found = [f for f in found if _matches(hub, s, f, q)]
        names = _Names(s) if q.include_names else None
        return [_render(f, base_url, names) for f in _dedupe(found)]


def effective_project_ids(hub: Identity, user_id: str) -> set[str]:
    """Projects on which the user holds at least one role, by any path."""
    q = AssignmentFilter(user_id=user_id, effective=True)
    with hub.db.session() as s:
        found = _expand(hub, s, [_from_row(r) for r in _rows(hub, s, q)])
    return {f.project_id for f in found if f.project_id and f.user_id == user_id}


def effective_domain_ids(hub: Identity, user_id: str) -> set[str]:
    q = AssignmentFilter(user_id=user_id, effective=True)
    with hub.db.session() as s:
        found = _expand(hub, s, [_from_row(r) for r in _rows(hub, s, q)])
    return {f.domain_id for f in found if f.domain_id and f.user_id == user_id}


def _rows(hub: Identity, s: Session, q: AssignmentFilter) -> list[m.Assignment]:
    query = select(m.Assignment)
    if q.user_id:
        actors = [q.user_id]
        if q.effective:
            actors += hub.users.group_ids_of(s, q.user_id)
        query = query.where(m.Assignment.actor_id.in_(actors))
    elif q.group_id:
        query = query.where(m.Assignment.actor_id == q.group_id,
                            m.Assignment.type.like("Group%"))
    if q.role_id and not q.effective:
        query = query.where(m.Assignment.role_id == q.role_id)
    return list(s.scalars(query))


def _from_row(row: m.Assignment) -> Found:
    user = row.actor_id if row.type.startswith("User") else None
    group = None if user else row.actor_id
    kind = row.type.removeprefix("User").removeprefix("Group")
    return Found(role_id=row.role_id, user_id=user, group_id=group,
                 project_id=row.target_id if kind == "Project" else None,
                 domain_id=row.target_id if kind == "Domain" else None,
                 system=kind == "System", inherited=row.inherited)


def _expand(hub: Identity, s: Session, found: list[Found]) -> list[Found]:
    out: list[Found] = []
    for f in found:
        for by_user in _expand_group(s, f):
            out.extend(_expand_inherited(hub, s, by_user))
    return _drop_domain_roles(s, _expand_implied(hub, s, out))


def _expand_group(s: Session, f: Found) -> list[Found]:
    if f.group_id is None:
        return [f]
    members = s.scalars(select(m.Membership.user_id).where(m.Membership.group_id == f.group_id))
    return [replace(f, user_id=u, group_id=None, via_group=f.group_id) for u in members]


def _expand_inherited(hub: Identity, s: Session, f: Found) -> list[Found]:
    if not f.inherited:
        return [f]
    if f.domain_id:
        projects = list(s.scalars(select(m.Project.id).where(m.Project.domain_id == f.domain_id)))
        via = ("domains", f.domain_id)
    else:
        projects = [p["id"] for p in hub.resource.subtree(f.project_id or "")]
        via = ("projects", f.project_id or "")
    return [replace(f, project_id=p, domain_id=None, inherited=False, via_target=via)
            for p in projects]


def _expand_implied(hub: Identity, s: Session, found: list[Found]) -> list[Found]:
    out = list(found)
    for f in found:
        for implied in sorted(hub.assignments._closure(s, {f.role_id}) - {f.role_id}):
            out.append(replace(f, role_id=implied, prior_role=f.role_id,
                               stored_role=f.role_id))
    return out


def _drop_domain_roles(s: Session, found: list[Found]) -> list[Found]:
    role_ids = {f.role_id for f in found}
    domain_roles = set(s.scalars(select(m.Role.id).where(m.Role.id.in_(role_ids),
                                                         m.Role.domain_id.is_not(None))))
    return [f for f in found if f.role_id not in domain_roles]


def _matches(hub: Identity, s: Session, f: Found, q: AssignmentFilter) -> bool:
    if q.user_id and f.user_id != q.user_id:
        return False
    if q.group_id and f.group_id != q.group_id:
        return False
    if q.role_id and f.role_id != q.role_id:
        return False
    if q.system and not f.system:
        return False
    if q.domain_id and f.domain_id != q.domain_id:
        return False
    if q.inherited_only and not f.inherited:
        return False
    if q.within_domain and not _in_domain(s, f, q.within_domain):
        return False
    if q.project_id:
        wanted = {q.project_id}
        if q.include_subtree:
            wanted |= {p["id"] for p in hub.resource.subtree(q.project_id)}
        return f.project_id in wanted
    return True


def _in_domain(s: Session, f: Found, domain_id: str) -> bool:
    if f.domain_id is not None:
        return f.domain_id == domain_id
    if f.project_id is not None:
        project = s.get(m.Project, f.project_id)
        return project is not None and project.domain_id == domain_id
    return False


def _dedupe(found: Iterable[Found]) -> list[Found]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for f in found:
        key = (f.role_id, f.user_id, f.group_id, f.project_id, f.domain_id, f.system,
               f.inherited)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


class _Names:
    """Looks up names for include_names, one query per entity kind and id."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.domains = {d.id: d.name for d in s.scalars(select(m.Domain))}

    def domain(self, domain_id: str | None) -> dict[str, Any]:
        return {"id": domain_id, "name": self.domains.get(domain_id or "")}

    def role(self, role_id: str) -> dict[str, Any]:
        role = self.s.get(m.Role, role_id)
        ref: dict[str, Any] = {"id": role_id, "name": role.name if role else None}
        if role is not None and role.domain_id:
            ref["domain"] = self.domain(role.domain_id)
        return ref

    def owned(self, model: type[m.User] | type[m.Group] | type[m.Project],
              ident: str) -> dict[str, Any]:
        row = self.s.get(model, ident)
        if row is None:
            return {"id": ident}
        return {"id": ident, "name": row.name, "domain": self.domain(row.domain_id)}


def _render(f: Found, base: str, names: _Names | None) -> dict[str, Any]:
    actor = ("users", f.user_id) if f.user_id else ("groups", f.group_id)
    role = names.role(f.role_id) if names else {"id": f.role_id}
    body: dict[str, Any] = {"role": role, "scope": _scope(f, names), "links": {}}
    actor_ref: dict[str, Any] = {"id": actor[1]}
    if names:
        actor_ref = names.owned(m.User if f.user_id else m.Group, actor[1] or "")
    body["user" if f.user_id else "group"] = actor_ref
    body["links"]["assignment"] = _assignment_link(f, base, actor)
    if f.via_group:
        body["links"]["membership"] = f"{base}/v3/groups/{f.via_group}/users/{f.user_id}"
        body["links"]["assignment"] = _assignment_link(f, base, ("groups", f.via_group))
    if f.via_target:
        kind, target = f.via_target
        granted = ("groups", f.via_group) if f.via_group else actor
        body["links"]["inherited_to"] = body["links"]["assignment"] = (
            f"{base}/v3/OS-INHERIT/{kind}/{target}/{granted[0]}/{granted[1]}/roles/"
            f"{f.stored_role or f.role_id}/inherited_to_projects")
    if f.prior_role:
        body["links"]["prior_role"] = f"{base}/v3/roles/{f.prior_role}"
    return body


def _scope(f: Found, names: _Names | None) -> dict[str, Any]:
    if f.system:
        scope: dict[str, Any] = {"system": {"all": True}}
    elif f.project_id:
        project = names.owned(m.Project, f.project_id) if names else {"id": f.project_id}
        scope = {"project": project}
    else:
        scope = {"domain": names.domain(f.domain_id) if names else {"id": f.domain_id}}
    if f.inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
    return scope


def _assignment_link(f: Found, base: str, actor: tuple[str, str | None]) -> str:
    role = f.stored_role or f.role_id
    if f.system:
        return f"{base}/v3/system/{actor[0]}/{actor[1]}/roles/{role}"
    kind, target = ("projects", f.project_id) if f.project_id else ("domains", f.domain_id)
    if f.inherited:
        return (f"{base}/v3/OS-INHERIT/{kind}/{target}/{actor[0]}/{actor[1]}/roles/{role}"
                "/inherited_to_projects")
    return f"{base}/v3/{kind}/{target}/{actor[0]}/{actor[1]}/roles/{role}"
