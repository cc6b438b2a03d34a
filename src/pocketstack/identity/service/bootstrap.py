"""First-start (and every-start) bootstrap, as ``keystone-manage bootstrap`` does it.

Idempotent: creates what is missing and leaves what exists, except the admin password (reset
when one is given) and the catalog URLs of pocketstack's own services (kept in step with the
configured host and ports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from pocketstack.identity import models as m
from pocketstack.identity.service.assignment import Actor, Target
from pocketstack.identity.service.catalog import INTERFACES
from pocketstack.identity.service.resource import DEFAULT_DOMAIN_ID

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity

# admin implies member implies reader (Keystone's default role hierarchy).
DEFAULT_ROLES = ("admin", "member", "reader", "service")
IMPLIED = (("admin", "member"), ("member", "reader"))


@dataclass(frozen=True)
class CatalogEntry:
    type: str
    name: str
    description: str
    url: str  # the same URL for the public, internal and admin interfaces


def bootstrap(hub: Identity, *, admin_password: str | None, services: list[CatalogEntry]
              ) -> None:
    settings = hub.settings
    _ensure_domain(hub)
    project_id = _ensure_project(hub, settings.admin_project)
    user_id = _ensure_admin(hub, settings.admin_user, admin_password)
    role_ids = _ensure_roles(hub)
    admin = Actor(user_id=user_id)
    hub.assignments.create_grant(role_ids["admin"], admin, Target(project_id=project_id))
    hub.assignments.create_grant(role_ids["admin"], admin, Target(system=True))
    _ensure_region(hub, settings.region)
    for entry in services:
        ensure_catalog_entry(hub, entry, settings.region)
    hub.load()


def _ensure_domain(hub: Identity) -> None:
    with hub.db.session() as s:
        exists = s.get(m.Domain, DEFAULT_DOMAIN_ID) is not None
    if not exists:
        hub.resource.create_domain({"name": "Default", "description": "The default domain"},
                                   domain_id=DEFAULT_DOMAIN_ID)


def _ensure_project(hub: Identity, name: str) -> str:
    with hub.db.session() as s:
        found = s.scalar(select(m.Project.id).where(m.Project.name == name,
                                                    m.Project.domain_id == DEFAULT_DOMAIN_ID))
    if found:
        return found
    ref = hub.resource.create_project({"name": name, "domain_id": DEFAULT_DOMAIN_ID,
                                       "description": "Bootstrap project for initializing "
                                       "the cloud."})
    return str(ref["id"])


def _ensure_admin(hub: Identity, name: str, password: str | None) -> str:
    with hub.db.session() as s:
        found = s.scalar(select(m.User.id).where(m.User.name == name,
                                                 m.User.domain_id == DEFAULT_DOMAIN_ID))
    if found is None:
        return str(hub.users.create_user({"name": name, "domain_id": DEFAULT_DOMAIN_ID,
                                          "password": password})["id"])
    if password is not None and not hub.users.verify_password(found, password):
        hub.users.update_user(found, {"password": password, "enabled": True})
    return found


def _ensure_roles(hub: Identity) -> dict[str, str]:
    ids = {}
    for name in DEFAULT_ROLES:
        existing = hub.assignments.list_roles(name=name)
        # Immutable, as keystone-manage bootstrap makes them: no accidental delete or rename.
        ids[name] = existing[0]["id"] if existing else hub.assignments.create_role(
            {"name": name, "options": {"immutable": True}})["id"]
    for prior, implied in IMPLIED:
        hub.assignments.create_implied(ids[prior], ids[implied])
    return ids


def _ensure_region(hub: Identity, region: str) -> None:
    with hub.db.session() as s:
        exists = s.get(m.Region, region) is not None
    if not exists:
        hub.catalog.create_region({"description": ""}, region_id=region)


def ensure_catalog_entry(hub: Identity, entry: CatalogEntry, region: str) -> None:
    """One service with a public, internal and admin endpoint at ``entry.url``."""
    found = hub.catalog.list_services(type=entry.type, name=entry.name)
    service_id = found[0]["id"] if found else hub.catalog.create_service(
        {"type": entry.type, "name": entry.name, "description": entry.description})["id"]
    endpoints = hub.catalog.list_endpoints(filters={"service_id": service_id})
    for interface in INTERFACES:
        mine = [e for e in endpoints if e["interface"] == interface
                and e["region_id"] == region]
        if not mine:
            hub.catalog.create_endpoint({"service_id": service_id, "interface": interface,
                                         "url": entry.url, "region_id": region})
        elif mine[0]["url"] != entry.url:
            hub.catalog.update_endpoint(mine[0]["id"], {"url": entry.url})
