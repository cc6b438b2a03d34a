"""The image service's vocabulary: who calls (:class:`Caller`) and what it gets back
(:class:`ImageRecord`, :class:`MemberRecord`). Plain data; the API renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# Base attributes a client may set (create or PATCH); everything else is an extra property.
SETTABLE = ("name", "visibility", "protected", "os_hidden", "container_format",
            "disk_format", "min_ram", "min_disk", "owner", "tags")


def utcnow() -> datetime:
    """Naive UTC now (the database stores naive UTC timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


def isotime(value: datetime | None) -> str | None:
    """Glance's wire form of a time: ``2014-05-05T17:15:10Z``."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Caller:
    """The caller as the service layer sees it: the project acting, and whether the policy
    made it an admin (Glance's ``context.is_admin``)."""

    user_id: str
    project_id: str | None
    is_admin: bool = False


@dataclass
class ImageRecord:
    id: str
    name: str | None
    owner: str | None
    status: str
    visibility: str
    protected: bool
    os_hidden: bool
    disk_format: str | None
    container_format: str | None
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    min_disk: int
    min_ram: int
    created_at: datetime
    updated_at: datetime
    store: str | None = None
    location: str | None = None
    properties: dict[str, str | None] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MemberRecord:
    image_id: str
    member_id: str
    status: str
    created_at: datetime
    updated_at: datetime
