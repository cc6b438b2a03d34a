"""Roles, implied roles, grants, and the effective roles a user holds on a scope.

Effective roles of a user on a project are, as in Keystone: the roles granted to the user or
any of the user's groups on the project itself, plus the grants marked *inherited* on any of
its parent projects or on its domain; then every role those imply, transitively; domain-
specific roles themselves never appear in the result (only the global roles they imply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pocketstack.identity import models as m
from pocketstack.identity.exceptions import Forbidden, NotFound, ValidationError
from pocketstack.identity.service.common import (
    check_mutable,
    conflict_guard,
    merged_options,
    new_id,
)

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity

SYSTEM = "system"
PROHIBITED_IMPLIED_ROLES = frozenset({"admin"})


def role_ref(role: m.Role) -> dict[str, Any]:
    return {**(role.extra or {}), "id": role.id, "name": role.name, "domain_id": role.domain_id,
            "description": role.description, "options": role.options or {}}


@dataclass(frozen=True)
class Target:
    """What a grant is on: exactly one of a project, a domain or the system."""

    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False

    @property
    def kind(self) -> str:
        return "Project" if self.project_id else "Domain" if self.domain_id else "System"

    @property
    def id(self) -> str:
        return self.project_id or self.domain_id or SYSTEM


@dataclass(frozen=True)
class Actor:
    user_id: str | None = None
    group_id: str | None = None

    @property
    def kind(self) -> str:
        return "User" if self.user_id else "Group"

    @property
    def id(self) -> str:
        return self.user_id or self.group_id or ""


class AssignmentService:
    def __init__(self, hub: Identity) -> None:
        self.hub = hub

    # -- roles ---------------------------------------------------------------------------------
    def get_role(self, role_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return role_ref(self._role(s, role_id))

    def find_role(self, name: str, domain_id: str | None = None) -> dict[str, Any]:
        with self.hub.db.session() as s:
            role = s.scalar(select(m.Role).where(m.Role.name == name,
                                                 m.Role.domain_id.is_(domain_id)
                                                 if domain_id is None
                                                 else m.Role.domain_id == domain_id))
            if role is None:
                raise NotFound.of("role", name)
            return role_ref(role)

    def list_roles(self, *, name: str | None = None, domain_id: str | None = None
                   ) -> list[dict[str, Any]]:
        query = select(m.Role).order_by(m.Role.name)
        if name is not None:
            query = query.where(m.Role.name == name)
        query = query.where(m.Role.domain_id.is_(None) if domain_id is None
                            else m.Role.domain_id == domain_id)
        with self.hub.db.session() as s:
            return [role_ref(r) for r in s.scalars(query)]

    def create_role(self, data: Mapping[str, Any], *, role_id: str | None = None
                    ) -> dict[str, Any]:
        fields = dict(data)
        role = m.Role(id=role_id or new_id(), name=fields.pop("name"),
                      domain_id=fields.pop("domain_id", None),
                      description=fields.pop("description", None),
                      options=fields.pop("options", None) or {})
        role.extra = fields
        with conflict_guard("role", f"Duplicate entry found with name {role.name}"), \
                self.hub.db.session() as s:
            if role.domain_id is not None:
                self.hub.resource._domain(s, role.domain_id)
            s.add(role)
            s.flush()
            ref = role_ref(role)
        self.hub.changed()
        return ref

    def update_role(self, role_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        fields.pop("id", None)
        if "domain_id" in fields:
            with self.hub.db.session() as s:
                if self._role(s, role_id).domain_id != fields.pop("domain_id"):
                    raise ValidationError("Update of `domain_id` is not allowed.")
        with conflict_guard("role", f"Duplicate entry found with name {fields.get('name')}"), \
                self.hub.db.session() as s:
            role = self._role(s, role_id)
            check_mutable("role", role_id, role.options, fields)
            if "options" in fields:
                role.options = merged_options(role.options, fields.pop("options"))
            for key in ("name", "description"):
                if key in fields:
                    setattr(role, key, fields.pop(key))
            role.extra = {**(role.extra or {}), **fields}
            s.flush()
            ref = role_ref(role)
        self.hub.changed()
        return ref

    def delete_role(self, role_id: str) -> None:
        with self.hub.db.session() as s:
            role = self._role(s, role_id)
            check_mutable("role", role_id, role.options)
            holders = self._holders(s, [role_id])
            s.execute(delete(m.Assignment).where(m.Assignment.role_id == role_id))
            s.execute(delete(m.ImpliedRole).where((m.ImpliedRole.prior_role_id == role_id)
                                                  | (m.ImpliedRole.implied_role_id == role_id)))
            s.delete(role)
        for user_id in holders:
            self.hub.revoke(user_id=user_id)
        self.hub.changed()

    # -- implied roles -------------------------------------------------------------------------
    def create_implied(self, prior_id: str, implied_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            prior, implied = self._role(s, prior_id), self._role(s, implied_id)
            if implied.name in PROHIBITED_IMPLIED_ROLES:
                raise Forbidden(f"{implied.name} is not permitted to be an implied role")
            if implied.domain_id is not None:
                raise Forbidden("Domain-specific roles cannot be implied roles.")
            if prior_id == implied_id or prior_id in self._closure(s, {implied_id}):
                raise ValidationError("Implied role would create a cycle.")
            added = s.get(m.ImpliedRole, (prior_id, implied_id)) is None
            if added:
                s.add(m.ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
            ref = {"prior_role": _role_summary(prior), "implies": _role_summary(implied)}
        if added:  # an existing rule (every restart's bootstrap) changes no cached decision
            self.hub.changed()
        return ref

    def get_implied(self, prior_id: str, implied_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            prior, implied = self._role(s, prior_id), self._role(s, implied_id)
            if s.get(m.ImpliedRole, (prior_id, implied_id)) is None:
                raise NotFound(f"{prior_id} does not imply {implied_id}.")
            return {"prior_role": _role_summary(prior), "implies": _role_summary(implied)}

    def delete_implied(self, prior_id: str, implied_id: str) -> None:
        with self.hub.db.session() as s:
            self._role(s, prior_id)
            self._role(s, implied_id)
            row = s.get(m.ImpliedRole, (prior_id, implied_id))
            if row is None:
                raise NotFound(f"{prior_id} does not imply {implied_id}.")
            holders = self._holders(s, [prior_id])
            s.delete(row)
        for user_id in holders:
            self.hub.revoke(user_id=user_id)
        self.hub.changed()

    def list_implied(self, prior_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            prior = self._role(s, prior_id)
            implied = list(s.scalars(select(m.Role).join(
                m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
                .where(m.ImpliedRole.prior_role_id == prior_id).order_by(m.Role.name)))
            return {"prior_role": _role_summary(prior),
                    "implies": [_role_summary(r) for r in implied]}

    def list_inferences(self) -> list[dict[str, Any]]:
        with self.hub.db.session() as s:
            rows = list(s.scalars(select(m.ImpliedRole)))
            roles = {r.id: r for r in s.scalars(select(m.Role))}
        grouped: dict[str, list[m.Role]] = {}
        for row in rows:
            grouped.setdefault(row.prior_role_id, []).append(roles[row.implied_role_id])
        return [{"prior_role": _role_summary(roles[prior]),
                 "implies": [_role_summary(r) for r in sorted(implied, key=lambda r: r.name)]}
                for prior, implied in sorted(grouped.items(), key=lambda kv: roles[kv[0]].name)]

    # -- grants --------------------------------------------------------------------------------
    def create_grant(self, role_id: str, actor: Actor, target: Target, *,
                     inherited: bool = False) -> None:
        with self.hub.db.session() as s:
            self._check_grant_parts(s, role_id, actor, target)
            key = (actor.kind + target.kind, actor.id, target.id, role_id, inherited)
            if s.get(m.Assignment, key) is None:
                s.add(m.Assignment(type=key[0], actor_id=actor.id, target_id=target.id,
                                   role_id=role_id, inherited=inherited))
        self.hub.changed()

    def check_grant(self, role_id: str, actor: Actor, target: Target, *,
                    inherited: bool = False) -> None:
        with self.hub.db.session() as s:
            self._check_grant_parts(s, role_id, actor, target)
            key = (actor.kind + target.kind, actor.id, target.id, role_id, inherited)
            if s.get(m.Assignment, key) is None:
                raise NotFound(f"Could not find role assignment with role: {role_id}, "
                               f"{actor.kind.lower()}: {actor.id}, on {target.kind.lower()}: "
                               f"{target.id}.")

    def delete_grant(self, role_id: str, actor: Actor, target: Target, *,
                     inherited: bool = False) -> None:
        with self.hub.db.session() as s:
            self._check_grant_parts(s, role_id, actor, target)
            key = (actor.kind + target.kind, actor.id, target.id, role_id, inherited)
            row = s.get(m.Assignment, key)
            if row is None:
                raise NotFound(f"Could not find role assignment with role: {role_id}, "
                               f"{actor.kind.lower()}: {actor.id}, on {target.kind.lower()}: "
                               f"{target.id}.")
            s.delete(row)
            users = [actor.user_id] if actor.user_id else list(s.scalars(
                select(m.Membership.user_id).where(m.Membership.group_id == actor.group_id)))
        for user_id in users:
            scoped = target.project_id if not inherited else None
            self.hub.revoke(user_id=user_id, project_id=scoped)
        self.hub.changed()

    def list_grants(self, actor: Actor, target: Target, *, inherited: bool = False
                    ) -> list[dict[str, Any]]:
        with self.hub.db.session() as s:
            self._check_actor(s, actor)
            self._check_target(s, target)
            query = (select(m.Role).join(m.Assignment, m.Assignment.role_id == m.Role.id)
                     .where(m.Assignment.type == actor.kind + target.kind,
                            m.Assignment.actor_id == actor.id,
                            m.Assignment.target_id == target.id,
                            m.Assignment.inherited == inherited).order_by(m.Role.name))
            return [role_ref(r) for r in s.scalars(query)]

    def _check_grant_parts(self, s: Session, role_id: str, actor: Actor, target: Target) -> None:
        role = self._role(s, role_id)
        self._check_actor(s, actor)
        domain_of_target = self._check_target(s, target)
        if role.domain_id is not None and role.domain_id != domain_of_target:
            raise Forbidden(f"Domain-specific role {role_id} can only be granted within its "
                            f"domain {role.domain_id}.")

    def _check_actor(self, s: Session, actor: Actor) -> None:
        if actor.user_id:
            self.hub.users._user(s, actor.user_id)
        else:
            self.hub.users._group(s, actor.group_id or "")

    def _check_target(self, s: Session, target: Target) -> str | None:
        if target.project_id:
            return self.hub.resource._project(s, target.project_id).domain_id
        if target.domain_id:
            return self.hub.resource._domain(s, target.domain_id).id
        return None

    # -- effective roles -----------------------------------------------------------------------
    def effective_role_ids(self, s: Session, user_id: str, target: Target) -> set[str]:
        """Global role ids the user holds on the target, through groups, inheritance and
        implication."""
        actors = [user_id, *self.hub.users.group_ids_of(s, user_id)]
        direct = set(s.scalars(select(m.Assignment.role_id).where(
            m.Assignment.actor_id.in_(actors), m.Assignment.target_id == target.id,
            m.Assignment.inherited.is_(False),
            m.Assignment.type.in_(["User" + target.kind, "Group" + target.kind]))))
        if target.project_id:
            direct |= self._inherited_role_ids(s, actors, target.project_id)
        return self._global_only(s, self._closure(s, direct))

    def _inherited_role_ids(self, s: Session, actors: list[str], project_id: str) -> set[str]:
        project = self.hub.resource._project(s, project_id)
        parents = [p.id for p in self.hub.resource._ancestors(s, project)]
        return set(s.scalars(select(m.Assignment.role_id).where(
            m.Assignment.actor_id.in_(actors), m.Assignment.inherited.is_(True),
            m.Assignment.target_id.in_([*parents, project.domain_id]))))

    def _closure(self, s: Session, role_ids: set[str]) -> set[str]:
        """The roles given plus every role they imply, transitively."""
        seen = set(role_ids)
        frontier = set(role_ids)
        while frontier:
            implied = set(s.scalars(select(m.ImpliedRole.implied_role_id)
                                    .where(m.ImpliedRole.prior_role_id.in_(frontier))))
            frontier = implied - seen
            seen |= frontier
        return seen

    @staticmethod
    def _global_only(s: Session, role_ids: set[str]) -> set[str]:
        if not role_ids:
            return set()
        return set(s.scalars(select(m.Role.id).where(m.Role.id.in_(role_ids),
                                                     m.Role.domain_id.is_(None))))

    def roles_by_id(self, s: Session, role_ids: Iterable[str]) -> list[dict[str, str]]:
        ids = list(role_ids)
        if not ids:
            return []
        rows = s.execute(select(m.Role.id, m.Role.name).where(m.Role.id.in_(ids))
                         .order_by(m.Role.name))
        return [{"id": rid, "name": name} for rid, name in rows]

    def _holders(self, s: Session, role_ids: list[str]) -> set[str]:
        """Users who hold any of these roles directly or through a group (for revocation)."""
        actors = set(s.scalars(select(m.Assignment.actor_id)
                               .where(m.Assignment.role_id.in_(role_ids))))
        members = set(s.scalars(select(m.Membership.user_id)
                                .where(m.Membership.group_id.in_(actors))))
        users = set(s.scalars(select(m.User.id).where(m.User.id.in_(actors))))
        return users | members

    @staticmethod
    def _role(s: Session, role_id: str) -> m.Role:
        role = s.get(m.Role, role_id)
        if role is None:
            raise NotFound.of("role", role_id)
        return role


def _role_summary(role: m.Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name}
