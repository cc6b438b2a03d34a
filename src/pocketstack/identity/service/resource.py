"""Domains and projects: the containers everything else is owned by or scoped to.

Rules kept here (Keystone's): names unique per domain; a top-level project's ``parent_id`` is
its domain's id on the wire; a project tree is at most ``MAX_PROJECT_TREE_DEPTH`` deep; a
domain is deleted only once disabled, and takes its projects, users, groups and roles along;
a project is deleted only when it has no children; tags follow the API-WG tag rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

MAX_PROJECT_TREE_DEPTH = 5
MAX_TAGS = 80
DEFAULT_DOMAIN_ID = "default"


def domain_ref(domain: m.Domain) -> dict[str, Any]:
    return {**(domain.extra or {}), "id": domain.id, "name": domain.name,
            "description": domain.description or "", "enabled": domain.enabled,
            "options": domain.options or {}, "tags": []}


def project_ref(project: m.Project, tags: Iterable[str]) -> dict[str, Any]:
    return {**(project.extra or {}), "id": project.id, "name": project.name,
            "domain_id": project.domain_id,
            "parent_id": project.parent_id or project.domain_id,
            "description": project.description or "", "enabled": project.enabled,
            "is_domain": False, "tags": sorted(tags), "options": project.options or {}}


class ResourceService:
    def __init__(self, hub: Identity) -> None:
        self.hub = hub

    # -- domains -------------------------------------------------------------------------------
    def get_domain(self, domain_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return domain_ref(self._domain(s, domain_id))

    def get_domain_by_name(self, name: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            domain = s.scalar(select(m.Domain).where(m.Domain.name == name))
            if domain is None:
                raise NotFound.of("domain", name)
            return domain_ref(domain)

    def list_domains(self, *, name: str | None = None, enabled: bool | None = None,
                     ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        query = select(m.Domain).order_by(m.Domain.name)
        if name is not None:
            query = query.where(m.Domain.name == name)
        if enabled is not None:
            query = query.where(m.Domain.enabled == enabled)
        if ids is not None:
            query = query.where(m.Domain.id.in_(list(ids)))
        with self.hub.db.session() as s:
            return [domain_ref(d) for d in s.scalars(query)]

    def create_domain(self, data: Mapping[str, Any], *, domain_id: str | None = None
                      ) -> dict[str, Any]:
        fields = dict(data)
        domain = m.Domain(id=domain_id or fields.pop("explicit_domain_id", None) or new_id(),
                          name=fields.pop("name"), description=fields.pop("description", ""),
                          enabled=fields.pop("enabled", True), options=fields.pop("options", {}))
        fields.pop("tags", None)
        domain.extra = fields
        with conflict_guard("domain", f"Duplicate entry found with name {domain.name}"), \
                self.hub.db.session() as s:
            s.add(domain)
            s.flush()
            ref = domain_ref(domain)
        self.hub.changed()
        return ref

    def update_domain(self, domain_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        fields.pop("tags", None)
        if "id" in fields and fields.pop("id") != domain_id:
            raise ValidationError("Cannot change the id of a domain.")
        with conflict_guard("domain", f"Duplicate entry found with name {fields.get('name')}"), \
                self.hub.db.session() as s:
            domain = self._domain(s, domain_id)
            check_mutable("domain", domain_id, domain.options, fields)
            disabling = domain.enabled and fields.get("enabled") is False
            if "options" in fields:
                domain.options = merged_options(domain.options, fields.pop("options"))
            for key in ("name", "description", "enabled"):
                if key in fields:
                    setattr(domain, key, fields.pop(key))
            domain.extra = {**(domain.extra or {}), **fields}
            s.flush()
            ref = domain_ref(domain)
        if disabling:
            self.hub.revoke(domain_id=domain_id)
        self.hub.changed()
        return ref

    def delete_domain(self, domain_id: str) -> None:
        with self.hub.db.session() as s:
            domain = self._domain(s, domain_id)
            check_mutable("domain", domain_id, domain.options)
            if domain.enabled:
                raise Forbidden("Cannot delete a domain that is enabled, please disable it "
                                "first.")
            self._purge_domain(s, domain_id)
            s.delete(domain)
        self.hub.revoke(domain_id=domain_id)
        self.hub.changed()

    def _purge_domain(self, s: Session, domain_id: str) -> None:
        project_ids = list(s.scalars(select(m.Project.id).where(m.Project.domain_id == domain_id)))
        user_ids = list(s.scalars(select(m.User.id).where(m.User.domain_id == domain_id)))
        group_ids = list(s.scalars(select(m.Group.id).where(m.Group.domain_id == domain_id)))
        targets = [*project_ids, domain_id]
        actors = [*user_ids, *group_ids]
        s.execute(delete(m.Assignment).where(m.Assignment.target_id.in_(targets)))
        s.execute(delete(m.Assignment).where(m.Assignment.actor_id.in_(actors)))
        s.execute(delete(m.ProjectTag).where(m.ProjectTag.project_id.in_(project_ids)))
        s.execute(m.Project.__table__.update().where(m.Project.domain_id == domain_id)
                  .values(parent_id=None))
        s.execute(delete(m.Project).where(m.Project.domain_id == domain_id))
        s.execute(delete(m.Membership).where(m.Membership.user_id.in_(user_ids)))
        s.execute(delete(m.Membership).where(m.Membership.group_id.in_(group_ids)))
        self.hub.users.purge_users(s, user_ids)
        s.execute(delete(m.User).where(m.User.domain_id == domain_id))
        s.execute(delete(m.Group).where(m.Group.domain_id == domain_id))
        s.execute(delete(m.Role).where(m.Role.domain_id == domain_id))

    # -- projects ------------------------------------------------------------------------------
    def get_project(self, project_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            project = self._project(s, project_id)
            return project_ref(project, self._tags(s, project_id))

    def find_project(self, name: str, domain_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            project = s.scalar(select(m.Project).where(m.Project.name == name,
                                                       m.Project.domain_id == domain_id))
            if project is None:
                raise NotFound.of("project", name)
            return project_ref(project, self._tags(s, project.id))

    def list_projects(self, *, filters: Mapping[str, Any] | None = None,
                      ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        filters = dict(filters or {})
        query = select(m.Project).order_by(m.Project.name)
        for key in ("name", "domain_id", "enabled"):
            if filters.get(key) is not None:
                query = query.where(getattr(m.Project, key) == filters[key])
        if filters.get("parent_id") is not None:
            parent = filters["parent_id"]
            query = query.where((m.Project.parent_id == parent)
                                | ((m.Project.parent_id.is_(None))
                                   & (m.Project.domain_id == parent)))
        if ids is not None:
            query = query.where(m.Project.id.in_(list(ids)))
        with self.hub.db.session() as s:
            projects = list(s.scalars(query))
            tags = self._tags_of(s, [p.id for p in projects])
        refs = [project_ref(p, tags.get(p.id, ())) for p in projects]
        return [r for r in refs if _tags_match(r["tags"], filters)]

    def create_project(self, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        if fields.pop("is_domain", False):
            raise ValidationError("Creating a project acting as a domain is not supported; "
                                  "create a domain instead.")
        tags = _valid_tags(fields.pop("tags", []))
        with conflict_guard("project", f"Duplicate entry found with name {fields.get('name')} "
                                       f"at domain ID {fields.get('domain_id')}"), \
                self.hub.db.session() as s:
            domain_id, parent_id = self._placement(s, fields.pop("domain_id", None),
                                                   fields.pop("parent_id", None))
            project = m.Project(id=fields.pop("id", None) or new_id(), name=fields.pop("name"),
                                domain_id=domain_id, parent_id=parent_id,
                                description=fields.pop("description", "") or "",
                                enabled=fields.pop("enabled", True),
                                options=fields.pop("options", {}) or {}, extra=fields)
            s.add(project)
            s.flush()
            s.add_all(m.ProjectTag(project_id=project.id, name=t) for t in tags)
            s.flush()
            ref = project_ref(project, tags)
        self.hub.changed()
        return ref

    def _placement(self, s: Session, domain_id: str | None, parent_id: str | None
                   ) -> tuple[str, str | None]:
        """Resolve (domain_id, parent project id) for a new project; parent may be a domain."""
        if parent_id is not None and s.get(m.Domain, parent_id) is not None:
            if domain_id is not None and domain_id != parent_id:
                raise ValidationError("Cannot create project: parent domain differs.")
            domain_id, parent_id = parent_id, None
        if parent_id is not None:
            parent = s.get(m.Project, parent_id)
            if parent is None:
                raise NotFound.of("project", parent_id)
            if domain_id is not None and domain_id != parent.domain_id:
                raise ValidationError("Cannot create project, since it specifies its domain_id "
                                      f"{domain_id}, but specifies a parent in a different "
                                      f"domain ({parent.domain_id}).")
            if len(self._ancestors(s, parent)) + 2 > MAX_PROJECT_TREE_DEPTH:
                raise Forbidden("Max hierarchy depth reached for the project tree.")
            domain_id = parent.domain_id
        domain_id = domain_id or DEFAULT_DOMAIN_ID
        domain = s.get(m.Domain, domain_id)
        if domain is None:
            raise ValidationError(f"Could not find domain: {domain_id}.")
        return domain_id, parent_id

    def update_project(self, project_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        for immutable in ("domain_id", "parent_id", "is_domain", "id"):
            if immutable in fields:
                raise ValidationError(f"Update of `{immutable}` is not allowed.")
        with conflict_guard("project", f"Duplicate entry found with name {fields.get('name')}"), \
                self.hub.db.session() as s:
            project = self._project(s, project_id)
            check_mutable("project", project_id, project.options, fields)
            disabling = project.enabled and fields.get("enabled") is False
            if fields.get("enabled") and not project.enabled:
                self._check_parents_enabled(s, project)
            if "tags" in fields:
                self._replace_tags(s, project_id, _valid_tags(fields.pop("tags")))
            if "options" in fields:
                project.options = merged_options(project.options, fields.pop("options"))
            for key in ("name", "description", "enabled"):
                if key in fields:
                    setattr(project, key, fields.pop(key))
            project.extra = {**(project.extra or {}), **fields}
            s.flush()
            ref = project_ref(project, self._tags(s, project_id))
        if disabling:
            self.hub.revoke(project_id=project_id)
        self.hub.changed()
        return ref

    def _check_parents_enabled(self, s: Session, project: m.Project) -> None:
        for ancestor in self._ancestors(s, project):
            if not ancestor.enabled:
                raise Forbidden(f"Cannot enable project {project.id} since it has disabled "
                                "parents")

    def delete_project(self, project_id: str) -> None:
        with self.hub.db.session() as s:
            project = self._project(s, project_id)
            check_mutable("project", project_id, project.options)
            child = s.scalar(select(m.Project.id).where(m.Project.parent_id == project_id))
            if child is not None:
                raise Forbidden(f"Cannot delete the project {project_id} since it is not a "
                                "leaf in the hierarchy. Use the cascade option if you want to "
                                "delete a whole subtree.")
            s.execute(delete(m.Assignment).where(m.Assignment.target_id == project_id))
            s.execute(delete(m.ProjectTag).where(m.ProjectTag.project_id == project_id))
            s.delete(project)
        self.hub.revoke(project_id=project_id)
        self.hub.changed()

    def owning_domain(self, parent_id: str) -> str:
        """The domain a new child of ``parent_id`` (a domain or a project) belongs to."""
        with self.hub.db.session() as s:
            if s.get(m.Domain, parent_id) is not None:
                return parent_id
            return self._project(s, parent_id).domain_id

    # -- hierarchy ----------------------------------------------------------------------------
    def ancestor_ids(self, project_id: str) -> list[str]:
        """Ids of a project's parents, nearest first (domains excluded)."""
        with self.hub.db.session() as s:
            return [p.id for p in self._ancestors(s, self._project(s, project_id))]

    def subtree(self, project_id: str) -> list[dict[str, Any]]:
        """Every project below this one (breadth first)."""
        with self.hub.db.session() as s:
            self._project(s, project_id)
            found: list[m.Project] = []
            frontier = [project_id]
            while frontier:
                children = list(s.scalars(select(m.Project)
                                          .where(m.Project.parent_id.in_(frontier))
                                          .order_by(m.Project.name)))
                found.extend(children)
                frontier = [c.id for c in children]
            tags = self._tags_of(s, [p.id for p in found])
            return [project_ref(p, tags.get(p.id, ())) for p in found]

    def parents(self, project_id: str) -> list[dict[str, Any]]:
        with self.hub.db.session() as s:
            ancestors = self._ancestors(s, self._project(s, project_id))
            tags = self._tags_of(s, [p.id for p in ancestors])
            return [project_ref(p, tags.get(p.id, ())) for p in ancestors]

    @staticmethod
    def _ancestors(s: Session, project: m.Project) -> list[m.Project]:
        chain: list[m.Project] = []
        current = project
        while current.parent_id is not None and len(chain) <= MAX_PROJECT_TREE_DEPTH * 4:
            parent = s.get(m.Project, current.parent_id)
            if parent is None:
                break
            chain.append(parent)
            current = parent
        return chain

    # -- tags ----------------------------------------------------------------------------------
    def list_tags(self, project_id: str) -> list[str]:
        with self.hub.db.session() as s:
            self._project(s, project_id)
            return sorted(self._tags(s, project_id))

    def replace_tags(self, project_id: str, tags: list[str]) -> list[str]:
        tags = _valid_tags(tags)
        with self.hub.db.session() as s:
            self._tagged_project(s, project_id)
            self._replace_tags(s, project_id, tags)
        self.hub.changed()
        return sorted(tags)

    def add_tag(self, project_id: str, tag: str) -> None:
        _valid_tags([tag])
        with self.hub.db.session() as s:
            self._tagged_project(s, project_id)
            tags = set(self._tags(s, project_id))
            if tag not in tags:
                if len(tags) >= MAX_TAGS:
                    raise ValidationError(f"The number of tags cannot exceed {MAX_TAGS}.")
                s.add(m.ProjectTag(project_id=project_id, name=tag))
        self.hub.changed()

    def has_tag(self, project_id: str, tag: str) -> bool:
        with self.hub.db.session() as s:
            self._project(s, project_id)
            return s.get(m.ProjectTag, (project_id, tag)) is not None

    def delete_tag(self, project_id: str, tag: str) -> None:
        with self.hub.db.session() as s:
            self._tagged_project(s, project_id)
            row = s.get(m.ProjectTag, (project_id, tag))
            if row is None:
                raise NotFound(f"Tag {tag} not found for project {project_id}.")
            s.delete(row)
        self.hub.changed()

    def delete_tags(self, project_id: str) -> None:
        with self.hub.db.session() as s:
            self._tagged_project(s, project_id)
            self._replace_tags(s, project_id, [])
        self.hub.changed()

    def _tagged_project(self, s: Session, project_id: str) -> m.Project:
        """The project whose tags are about to change (an immutable one refuses)."""
        project = self._project(s, project_id)
        check_mutable("project", project_id, project.options, {"tags": None})
        return project

    @staticmethod
    def _replace_tags(s: Session, project_id: str, tags: list[str]) -> None:
        s.execute(delete(m.ProjectTag).where(m.ProjectTag.project_id == project_id))
        s.add_all(m.ProjectTag(project_id=project_id, name=t) for t in tags)

    @staticmethod
    def _tags(s: Session, project_id: str) -> list[str]:
        return list(s.scalars(select(m.ProjectTag.name)
                              .where(m.ProjectTag.project_id == project_id)))

    @staticmethod
    def _tags_of(s: Session, project_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for start in range(0, len(project_ids), 500):
            chunk = project_ids[start:start + 500]
            for pid, name in s.execute(select(m.ProjectTag.project_id, m.ProjectTag.name)
                                       .where(m.ProjectTag.project_id.in_(chunk))):
                out.setdefault(pid, []).append(name)
        return out

    # -- lookups used by other services --------------------------------------------------------
    @staticmethod
    def _domain(s: Session, domain_id: str) -> m.Domain:
        domain = s.get(m.Domain, domain_id)
        if domain is None:
            raise NotFound.of("domain", domain_id)
        return domain

    @staticmethod
    def _project(s: Session, project_id: str) -> m.Project:
        project = s.get(m.Project, project_id)
        if project is None:
            raise NotFound.of("project", project_id)
        return project


def _valid_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        raise ValidationError("Invalid input for field 'tags': tags must be a list of strings.")
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"The number of tags cannot exceed {MAX_TAGS}.")
    for tag in tags:
        if not isinstance(tag, str) or not 1 <= len(tag) <= 255 or "/" in tag or "," in tag:
            raise ValidationError(f"Invalid input for field 'tags': {tag!r} is not a valid "
                                  "tag (1-255 characters, no '/' or ',').")
    if len(set(tags)) != len(tags):
        raise ValidationError("Invalid input for field 'tags': tags must be unique.")
    return list(tags)


def _tags_match(tags: list[str], filters: Mapping[str, Any]) -> bool:
    have = set(tags)

    def wanted(key: str) -> set[str] | None:
        value = filters.get(key)
        return None if value is None else {t for t in str(value).split(",") if t}

    if (all_of := wanted("tags")) is not None and not all_of <= have:
        return False
    if (any_of := wanted("tags-any")) is not None and not any_of & have:
        return False
    if (none_of := wanted("not-tags")) is not None and none_of <= have and none_of:
        return False
    return not ((not_any := wanted("not-tags-any")) is not None and not_any & have)
