"""Regions, services, endpoints, and the service catalog every token carries.

The catalog is built once from the tables and kept until the next catalog write (Keystone
caches it too); per token only the ``%(project_id)s`` substitution is done, so issuing and
validating tokens costs no catalog query.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pocketstack.identity import models as m
from pocketstack.identity.exceptions import Conflict, Forbidden, NotFound, ValidationError
from pocketstack.identity.service.common import NeedsDatabase, conflict_guard, new_id

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity

INTERFACES = ("public", "internal", "admin")
# Keystone substitutes both spellings; $(x)s is the old one.
_SUBSTITUTION = re.compile(r"[%$]\((\w+)\)s")


def region_ref(region: m.Region) -> dict[str, Any]:
    return {**(region.extra or {}), "id": region.id, "description": region.description or "",
            "parent_region_id": region.parent_region_id}


def service_ref(service: m.Service) -> dict[str, Any]:
    return {**(service.extra or {}), "id": service.id, "type": service.type,
            "enabled": service.enabled}


def endpoint_ref(endpoint: m.Endpoint) -> dict[str, Any]:
    return {**(endpoint.extra or {}), "id": endpoint.id, "service_id": endpoint.service_id,
            "interface": endpoint.interface, "url": endpoint.url,
            "region_id": endpoint.region_id, "region": endpoint.region_id,
            "enabled": endpoint.enabled}


class CatalogService:
    def __init__(self, hub: Identity) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._template: list[dict[str, Any]] | None = None

    # -- regions -------------------------------------------------------------------------------
    def get_region(self, region_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return region_ref(self._region(s, region_id))

    def list_regions(self, *, parent_region_id: str | None = None) -> list[dict[str, Any]]:
        query = select(m.Region).order_by(m.Region.id)
        if parent_region_id is not None:
            query = query.where(m.Region.parent_region_id == parent_region_id)
        with self.hub.db.session() as s:
            return [region_ref(r) for r in s.scalars(query)]

    def create_region(self, data: Mapping[str, Any], *, region_id: str | None = None
                      ) -> dict[str, Any]:
        fields = dict(data)
        body_id = fields.pop("id", None)
        if region_id and body_id and body_id != region_id:
            raise ValidationError("Conflicting region IDs specified: "
                                  f'"{region_id}" != "{body_id}"')
        region = m.Region(id=region_id or body_id or new_id(),
                          description=fields.pop("description", "") or "",
                          parent_region_id=fields.pop("parent_region_id", None), extra=fields)
        with conflict_guard("region", f"Duplicate ID, {region.id}."), \
                self.hub.db.session() as s:
            if s.get(m.Region, region.id) is not None:
                raise Conflict(type="region", details=f"Duplicate ID, {region.id}.")
            if region.parent_region_id is not None:
                self._region(s, region.parent_region_id)
            s.add(region)
            s.flush()
            ref = region_ref(region)
        self.changed()
        return ref

    def update_region(self, region_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        fields.pop("id", None)
        with self.hub.db.session() as s:
            region = self._region(s, region_id)
            if "parent_region_id" in fields:
                parent = fields.pop("parent_region_id")
                if parent is not None:
                    self._check_no_cycle(s, region_id, parent)
                region.parent_region_id = parent
            if "description" in fields:
                region.description = fields.pop("description") or ""
            region.extra = {**(region.extra or {}), **fields}
            s.flush()
            ref = region_ref(region)
        self.changed()
        return ref

    def _check_no_cycle(self, s: Session, region_id: str, parent_id: str) -> None:
        current: str | None = parent_id
        while current is not None:
            if current == region_id:
                raise ValidationError(f"Circular reference or a repeated entry found in region "
                                      f"tree - {region_id}.")
            current = self._region(s, current).parent_region_id

    def delete_region(self, region_id: str) -> None:
        with self.hub.db.session() as s:
            self._region(s, region_id)
            doomed = self._region_subtree(s, region_id)
            used = s.scalar(select(m.Endpoint.id).where(m.Endpoint.region_id.in_(doomed)))
            if used is not None:  # Keystone's RegionDeletionError is a 403
                raise Forbidden(f"Unable to delete region {region_id} because it or its "
                                "child regions have associated endpoints.")
            for rid in reversed(doomed):
                s.execute(delete(m.Region).where(m.Region.id == rid))
        self.changed()

    @staticmethod
    def _region_subtree(s: Session, region_id: str) -> list[str]:
        out, frontier = [region_id], [region_id]
        while frontier:
            frontier = list(s.scalars(select(m.Region.id)
                                      .where(m.Region.parent_region_id.in_(frontier))))
            out.extend(frontier)
        return out

    # -- services ------------------------------------------------------------------------------
    def get_service(self, service_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return service_ref(self._service(s, service_id))

    def list_services(self, *, type: str | None = None, name: str | None = None
                      ) -> list[dict[str, Any]]:
        query = select(m.Service).order_by(m.Service.type)
        if type is not None:
            query = query.where(m.Service.type == type)
        with self.hub.db.session() as s:
            refs = [service_ref(x) for x in s.scalars(query)]
        return [r for r in refs if name is None or r.get("name") == name]

    def create_service(self, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        service = m.Service(id=fields.pop("id", None) or new_id(), type=fields.pop("type"),
                            enabled=fields.pop("enabled", True), extra=fields)
        with self.hub.db.session() as s:
            s.add(service)
            s.flush()
            ref = service_ref(service)
        self.changed()
        return ref

    def update_service(self, service_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        fields.pop("id", None)
        with self.hub.db.session() as s:
            service = self._service(s, service_id)
            for key in ("type", "enabled"):
                if key in fields:
                    setattr(service, key, fields.pop(key))
            service.extra = {**(service.extra or {}), **fields}
            s.flush()
            ref = service_ref(service)
        self.changed()
        return ref

    def delete_service(self, service_id: str) -> None:
        with self.hub.db.session() as s:
            self._service(s, service_id)
            s.execute(delete(m.Endpoint).where(m.Endpoint.service_id == service_id))
            s.execute(delete(m.Service).where(m.Service.id == service_id))
        self.changed()

    # -- endpoints -----------------------------------------------------------------------------
    def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return endpoint_ref(self._endpoint(s, endpoint_id))

    def list_endpoints(self, *, filters: Mapping[str, Any] | None = None
                       ) -> list[dict[str, Any]]:
        filters = filters or {}
        query = select(m.Endpoint).order_by(m.Endpoint.service_id, m.Endpoint.interface)
        for key in ("interface", "service_id", "region_id"):
            if filters.get(key) is not None:
                query = query.where(getattr(m.Endpoint, key) == filters[key])
        with self.hub.db.session() as s:
            return [endpoint_ref(e) for e in s.scalars(query)]

    def create_endpoint(self, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        region_id = fields.pop("region_id", None) or fields.pop("region", None)
        fields.pop("region", None)
        endpoint = m.Endpoint(id=fields.pop("id", None) or new_id(),
                              service_id=fields.pop("service_id"),
                              interface=_interface(fields.pop("interface")),
                              url=_url(fields.pop("url")), region_id=region_id,
                              enabled=fields.pop("enabled", True), extra=fields)
        with self.hub.db.session() as s:
            self._service_for_endpoint(s, endpoint.service_id)
            if region_id is not None:
                self._region_for_endpoint(s, region_id)
            s.add(endpoint)
            s.flush()
            ref = endpoint_ref(endpoint)
        self.changed()
        return ref

    def update_endpoint(self, endpoint_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        fields.pop("id", None)
        if "region" in fields and "region_id" not in fields:
            fields["region_id"] = fields.pop("region")
        fields.pop("region", None)
        with self.hub.db.session() as s:
            endpoint = self._endpoint(s, endpoint_id)
            if "service_id" in fields:
                endpoint.service_id = self._service_for_endpoint(s, fields.pop("service_id")).id
            if "region_id" in fields:
                region_id = fields.pop("region_id")
                if region_id is not None:
                    self._region_for_endpoint(s, region_id)
                endpoint.region_id = region_id
            if "interface" in fields:
                endpoint.interface = _interface(fields.pop("interface"))
            if "url" in fields:
                endpoint.url = _url(fields.pop("url"))
            if "enabled" in fields:
                endpoint.enabled = fields.pop("enabled")
            endpoint.extra = {**(endpoint.extra or {}), **fields}
            s.flush()
            ref = endpoint_ref(endpoint)
        self.changed()
        return ref

    def delete_endpoint(self, endpoint_id: str) -> None:
        with self.hub.db.session() as s:
            s.delete(self._endpoint(s, endpoint_id))
        self.changed()

    # -- the catalog ---------------------------------------------------------------------------
    def catalog_for(self, *, user_id: str, project_id: str | None,
                    domain_id: str | None = None, cached_only: bool = False
                    ) -> list[dict[str, Any]]:
        """The catalog as a token scoped to this project sees it (``cached_only``:
        NeedsDatabase when the catalog must be read first)."""
        values = {"user_id": user_id, "project_id": project_id, "tenant_id": project_id,
                  "domain_id": domain_id}
        out = []
        for service in self._catalog_template(cached_only=cached_only):
            endpoints = []
            for endpoint in service["endpoints"]:
                url = _substitute(endpoint["url"], values)
                if url is not None:
                    endpoints.append({**endpoint, "url": url})
            out.append({**service, "endpoints": endpoints})
        return out

    def _catalog_template(self, *, cached_only: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            if self._template is None:
                if cached_only:
                    raise NeedsDatabase()
                with self.hub.db.session() as s:
                    self._template = _build_template(s)
            return self._template

    def changed(self) -> None:
        with self._lock:
            self._template = None
        self.hub.changed()

    # -- lookups -------------------------------------------------------------------------------
    @staticmethod
    def _region(s: Session, region_id: str) -> m.Region:
        region = s.get(m.Region, region_id)
        if region is None:
            raise NotFound.of("region", region_id)
        return region

    @staticmethod
    def _service(s: Session, service_id: str) -> m.Service:
        service = s.get(m.Service, service_id)
        if service is None:
            raise NotFound.of("service", service_id)
        return service

    @staticmethod
    def _endpoint(s: Session, endpoint_id: str) -> m.Endpoint:
        endpoint = s.get(m.Endpoint, endpoint_id)
        if endpoint is None:
            raise NotFound.of("endpoint", endpoint_id)
        return endpoint

    @staticmethod
    def _service_for_endpoint(s: Session, service_id: str) -> m.Service:
        service = s.get(m.Service, service_id)
        if service is None:
            raise ValidationError(f"Could not find service: {service_id}.")
        return service

    @staticmethod
    def _region_for_endpoint(s: Session, region_id: str) -> m.Region:
        region = s.get(m.Region, region_id)
        if region is None:
            raise ValidationError(f"Could not find region: {region_id}.")
        return region


def _build_template(s: Session) -> list[dict[str, Any]]:
    services = {x.id: x for x in s.scalars(select(m.Service).where(m.Service.enabled.is_(True)))}
    grouped: dict[str, list[dict[str, Any]]] = {sid: [] for sid in services}
    query = select(m.Endpoint).where(m.Endpoint.enabled.is_(True)).order_by(m.Endpoint.interface)
    for endpoint in s.scalars(query):
        if endpoint.service_id in grouped:
            grouped[endpoint.service_id].append({
                "id": endpoint.id, "interface": endpoint.interface,
                "region_id": endpoint.region_id, "region": endpoint.region_id,
                "url": endpoint.url})
    return [{"id": sid, "type": x.type, "name": (x.extra or {}).get("name", ""),
             "endpoints": grouped[sid]}
            for sid, x in sorted(services.items(), key=lambda kv: kv[1].type)]


def _substitute(url: str, values: Mapping[str, str | None]) -> str | None:
    """Fill ``%(project_id)s``-style fields; None when a needed value is missing (Keystone
    leaves such endpoints out of the catalog)."""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return value

    result = _SUBSTITUTION.sub(fill, url)
    return None if missing else result


def _interface(value: Any) -> str:
    if value not in INTERFACES:
        raise ValidationError(f"Invalid input for field 'interface': {value!r} is not one of "
                              f"{list(INTERFACES)}")
    return str(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise ValidationError("Invalid input for field 'url'.")
    if _SUBSTITUTION.search(value) and any(k not in ("project_id", "tenant_id", "user_id",
                                                     "domain_id")
                                           for k in _SUBSTITUTION.findall(value)):
        raise ValidationError(f"Invalid input for field 'url': unknown substitution in "
                              f"{value!r}.")
    return value
