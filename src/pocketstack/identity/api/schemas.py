"""Request bodies of the identity API as pydantic models (Keystone's JSON schemas).

Entities Keystone lets carry extra attributes (projects, users, groups, roles, regions,
services, endpoints, credentials) derive from ``Model`` and keep them; the rest refuse
unknown attributes. Types are strict: ``"true"`` is not a boolean.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from pocketstack.identity.api.common import Closed, Model

Name64 = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"\S")]
Name255 = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"\S")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Description = Annotated[str, StringConstraints(max_length=65535)] | None
Options = dict[str, Any]


class DomainCreate(Closed):
    name: Name64
    description: Description = None
    enabled: bool = True
    options: Options = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    explicit_domain_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = \
        None


class DomainUpdate(Closed):
    name: Name64 = None  # type: ignore[assignment]
    description: Description = None
    enabled: bool = True
    options: Options = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


class ProjectCreate(Model):
    name: Name64
    description: Description = None
    domain_id: Id | None = None
    parent_id: Id | None = None
    enabled: bool = True
    is_domain: bool = False
    tags: list[str] = Field(default_factory=list)
    options: Options = Field(default_factory=dict)


class ProjectUpdate(Model):
    name: Name64 = None  # type: ignore[assignment]
    description: Description = None
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)
    options: Options = Field(default_factory=dict)


class UserCreate(Model):
    name: Name255
    domain_id: Id | None = None
    password: str | None = None
    enabled: bool = True
    default_project_id: Id | None = None
    description: Description = None
    email: str | None = None
    options: Options = Field(default_factory=dict)


class UserUpdate(Model):
    name: Name255 = None  # type: ignore[assignment]
    password: str | None = None
    enabled: bool = True
    default_project_id: Id | None = None
    description: Description = None
    email: str | None = None
    options: Options = Field(default_factory=dict)


class PasswordChange(Closed):
    password: str
    original_password: str


class GroupCreate(Model):
    name: Name64
    domain_id: Id | None = None
    description: Description = None


class GroupUpdate(Model):
    name: Name64 = None  # type: ignore[assignment]
    description: Description = None


class RoleCreate(Model):
    name: Name255
    domain_id: Id | None = None
    description: Description = None
    options: Options = Field(default_factory=dict)


class RoleUpdate(Model):
    name: Name255 = None  # type: ignore[assignment]
    description: Description = None
    options: Options = Field(default_factory=dict)


class RegionCreate(Model):
    id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    description: Description = None
    parent_region_id: Annotated[str, StringConstraints(max_length=255)] | None = None


class RegionUpdate(Model):
    description: Description = None
    parent_region_id: Annotated[str, StringConstraints(max_length=255)] | None = None


class ServiceCreate(Model):
    type: Name255
    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    description: Description = None
    enabled: bool = True


class ServiceUpdate(Model):
    type: Name255 = None  # type: ignore[assignment]
    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    description: Description = None
    enabled: bool = True


class EndpointCreate(Model):
    service_id: Id
    interface: Annotated[str, StringConstraints(pattern=r"^(public|internal|admin)$")]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048,
                                          pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*://")]
    region_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    region: Annotated[str, StringConstraints(max_length=255)] | None = None
    enabled: bool = True


class EndpointUpdate(Model):
    service_id: Id = None  # type: ignore[assignment]
    interface: Annotated[str, StringConstraints(pattern=r"^(public|internal|admin)$")] = \
        None  # type: ignore[assignment]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048,
                                          pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*://")] = \
        None  # type: ignore[assignment]
    region_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    region: Annotated[str, StringConstraints(max_length=255)] | None = None
    enabled: bool = True


class CredentialCreate(Model):
    blob: str
    type: Name255
    user_id: Id
    project_id: Id | None = None


class CredentialUpdate(Model):
    blob: str = None  # type: ignore[assignment]
    type: Name255 = None  # type: ignore[assignment]
    user_id: Id = None  # type: ignore[assignment]
    project_id: Id | None = None


class RoleRef(Closed):
    id: Id | None = None
    name: Name255 | None = None
    domain_id: Id | None = None


class AccessRuleIn(Closed):
    id: Id | None = None
    path: Annotated[str, StringConstraints(min_length=1, max_length=225)] | None = None
    method: Annotated[str, StringConstraints(
        pattern=r"^(POST|GET|HEAD|PATCH|PUT|DELETE)$")] | None = None
    service: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


class AppCredCreate(Closed):
    name: Name255
    description: Description = None
    secret: Annotated[str, StringConstraints(min_length=1)] | None = None
    expires_at: str | None = None
    roles: list[RoleRef] | None = None
    unrestricted: bool = False
    access_rules: list[AccessRuleIn] | None = None
    system: str | None = None
