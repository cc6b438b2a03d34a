"""Glance's response bodies: an image (base attributes always, null when unset; additional
properties when set; links as paths), an image list (``first``/``next`` links keeping the
query), a member."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pocketstack.image.service.records import ImageRecord, MemberRecord, isotime

_ATTRIBUTES = ("name", "disk_format", "container_format", "visibility", "size",
               "virtual_size", "status", "checksum", "protected", "min_ram", "min_disk",
               "owner", "os_hidden", "os_hash_algo", "os_hash_value")


def image(record: ImageRecord, schema_names: frozenset[str]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for key, value in record.properties.items():
        # Glance's schema filter: an unset additional property shows as "".
        view[key] = "" if value is None and key not in schema_names else value
    for key in _ATTRIBUTES:
        view[key] = getattr(record, key)
    view["id"] = record.id
    view["created_at"] = isotime(record.created_at)
    view["updated_at"] = isotime(record.updated_at)
    view["tags"] = list(record.tags)
    view["self"] = f"/v2/images/{record.id}"
    view["file"] = f"/v2/images/{record.id}/file"
    view["schema"] = "/v2/schemas/image"
    if record.location and record.store:
        view["stores"] = record.store
    return view


def images(records: list[ImageRecord], schema_names: frozenset[str],
           params: list[tuple[str, str]], limit: int) -> dict[str, Any]:
    """The list body; ``next`` when the page is full (the last id is the next marker)."""
    kept = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"images": [image(r, schema_names) for r in records],
                            "first": "/v2/images", "schema": "/v2/schemas/images"}
    if kept:
        body["first"] = f"/v2/images?{urlencode(kept)}"
    if records and len(records) == limit:
        body["next"] = f"/v2/images?{urlencode([*kept, ('marker', records[-1].id)])}"
    return body


def member(record: MemberRecord) -> dict[str, Any]:
    return {"member_id": record.member_id, "image_id": record.image_id,
            "status": record.status, "created_at": isotime(record.created_at),
            "updated_at": isotime(record.updated_at), "schema": "/v2/schemas/member"}
