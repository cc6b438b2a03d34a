"""Image records: create, read, list, change, tag, delete, deactivate (Glance's rules).

Policy (who may call what) is enforced by the API before it calls here; this layer keeps
what Glance's domain and database layers keep: visibility (an image the caller may not see
does not exist for it), which attributes may change in which status, reserved names,
quotas, and removing the data with the image.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pocketstack.image.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    ImageNotFound,
    NotFound,
    ServiceUnavailable,
)
from pocketstack.image.service import patch as jsonpatch
from pocketstack.image.service.query import ListQuery
from pocketstack.image.service.records import Caller, ImageRecord
from pocketstack.image.service.schema import SchemaError
from pocketstack.image.store import StoreError

if TYPE_CHECKING:
    from pocketstack.image.service.hub import ImageHub

LOG = logging.getLogger(__name__)
DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
CREATE_READ_ONLY = ("created_at", "updated_at", "status", "checksum", "os_hash_algo",
                    "os_hash_value", "size", "virtual_size")
CREATE_RESERVED = ("location", "locations", "deleted", "deleted_at")
FORMATS_CHANGEABLE_IN = ("queued", "importing")


class ImageService:
    def __init__(self, hub: ImageHub) -> None:
        self.hub = hub
        self.repo = hub.repo
        self.db = hub.db

    # -- reading -------------------------------------------------------------------------------
    async def get(self, caller: Caller, image_id: str) -> ImageRecord:
        """The image, or 404 when it does not exist or the caller may not see it."""
        image = await self.db.run(self.repo.get, image_id, caller)
        if image is None:
            raise ImageNotFound(image_id=image_id)
        return image

    async def list_images(self, caller: Caller, query: ListQuery) -> list[ImageRecord]:
        return await self.db.run(self.repo.list_images, caller, query)

    # -- creating ------------------------------------------------------------------------------
    def parse_create(self, caller: Caller, body: Any) -> tuple[dict[str, Any], dict[str, Any],
                                                                list[str]]:
        """(base attributes, extra properties, tags) of a create body, checked as Glance
        checks it; ``owner`` defaults to the caller's project."""
        if not isinstance(body, dict):
            raise BadRequest("Provided object does not match schema 'image': "
                             f"{body!r} is not of type 'object'")
        for key in DISALLOWED:
            if key in body:
                raise Forbidden(f"Attribute '{key}' is read-only.")
        try:
            self.hub.schema.validate(body)
        except SchemaError as exc:
            raise BadRequest(str(exc)) from exc
        extra = dict(body)
        tags = list(dict.fromkeys(extra.pop("tags", None) or []))
        base = {k: extra.pop(k) for k in list(extra) if k in self.hub.schema.base_names}
        for key in CREATE_READ_ONLY:
            if key in base:
                raise Forbidden(f"Attribute '{key}' is read-only.")
        if "locations" in base:
            raise Forbidden("Attribute 'locations' is reserved.")
        for key in extra:
            if len(key) > 255:
                raise BadRequest("Custom property should not be greater than 255 characters.")
            if key in CREATE_RESERVED or key.startswith(jsonpatch.RESERVED_PREFIX):
                raise Forbidden(f"Attribute '{key}' is reserved.")
        for key in ("min_ram", "min_disk"):
            _non_negative(key, base.get(key, 0))
        base.setdefault("owner", caller.project_id)
        base.setdefault("visibility", "shared")
        return base, extra, tags

    async def create(self, base: Mapping[str, Any], extra: dict[str, Any], tags: list[str]
                     ) -> ImageRecord:
        quotas = self.hub.quotas
        await quotas.check_count(base.get("owner"))
        quotas.check_properties(len(extra))
        quotas.check_tags(len(tags))
        values = {"id": base.get("id") or str(uuid.uuid4()), "name": base.get("name"),
                  "owner": base.get("owner"), "status": "queued",
                  "visibility": base["visibility"], "protected": base.get("protected", False),
                  "os_hidden": base.get("os_hidden", False),
                  "disk_format": base.get("disk_format"),
                  "container_format": base.get("container_format"),
                  "min_disk": base.get("min_disk", 0), "min_ram": base.get("min_ram", 0)}
        return await self.db.run(self.repo.create, values, extra, tags)

    # -- changing ------------------------------------------------------------------------------
    async def update(self, caller: Caller, image: ImageRecord,
                     changes: list[jsonpatch.Change]) -> ImageRecord:
        if not changes:
            return image
        changed = dataclasses.replace(image, properties=dict(image.properties),
                                      tags=list(image.tags))
        for change in changes:
            self._apply(caller, changed, change)
        self.hub.quotas.check_properties(len(changed.properties))
        self.hub.quotas.check_tags(len(changed.tags))
        saved = await self.db.run(self.repo.save, changed,
                                  properties_changed=changed.properties != image.properties,
                                  tags_changed=changed.tags != image.tags)
        return saved

    def _apply(self, caller: Caller, image: ImageRecord, change: jsonpatch.Change) -> None:
        name = change.name
        is_base = name in self.hub.schema.base_names
        if change.op == "remove":
            if is_base:
                raise Forbidden(f"Property {name} may not be removed.")
            if name not in image.properties:
                raise Conflict(f"Property {name} does not exist.")
            del image.properties[name]
        elif is_base:
            self._set_base(caller, image, name, change.value)
        elif change.op == "replace" and name not in image.properties:
            raise Conflict(f"Property {name} does not exist.")
        elif change.op == "add" and change.draft == 4 and name in image.properties:
            raise Conflict(f"Property {name} already present.")
        else:
            image.properties[name] = change.value

    @staticmethod
    def _set_base(caller: Caller, image: ImageRecord, name: str, value: Any) -> None:
        if name == "owner" and not caller.is_admin:
            raise Forbidden("Owner can't be updated by non admin.")
        if name in ("disk_format", "container_format") and \
                image.status not in FORMATS_CHANGEABLE_IN and getattr(image, name) != value:
            raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
        if name in ("min_ram", "min_disk"):
            _non_negative(name, value)
        if name == "tags":
            value = list(dict.fromkeys(value))
        setattr(image, name, value)

    async def add_tag(self, image: ImageRecord, tag: str) -> None:
        if len(tag) > 255:
            raise BadRequest(f"Could not update image: Provided object does not match schema "
                             f"'image': {tag!r} is too long")
        if tag in image.tags:
            return
        self.hub.quotas.check_tags(len(image.tags) + 1)
        changed = dataclasses.replace(image, tags=[*image.tags, tag])
        await self.db.run(self.repo.save, changed, properties_changed=False, tags_changed=True)

    async def delete_tag(self, image: ImageRecord, tag: str) -> None:
        if tag not in image.tags:
            raise NotFound(f"Tag {tag} not found.")
        changed = dataclasses.replace(image, tags=[t for t in image.tags if t != tag])
        await self.db.run(self.repo.save, changed, properties_changed=False, tags_changed=True)

    async def set_active(self, image: ImageRecord, active: bool) -> None:
        """Deactivate (``active`` False) or reactivate; a no-op when already there."""
        want, other, verb = ("active", "deactivated", "reactivate") if active \
            else ("deactivated", "active", "deactivate")
        if image.status == want:
            return
        if image.status != other or not await self.db.run(self.repo.transition, image.id,
                                                          [other], want):
            raise Forbidden(f"Not allowed to {verb} image in status '{image.status}'")

    # -- deleting ------------------------------------------------------------------------------
    async def delete(self, image: ImageRecord) -> None:
        """Remove the data (from the store and the staging area), then the image."""
        if image.protected:
            raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
        store = self.hub.store
        try:
            await store.delete(image.location or store.location_for(image.id))
            await self.hub.staging.delete(self.hub.staging.location_for(image.id))
        except StoreError as exc:
            LOG.warning("cannot delete the data of image %s: %s", image.id, exc)
            raise ServiceUnavailable("The image data cannot be deleted now; the image is "
                                     "kept. Please try again later.") from exc
        if not await self.db.run(self.repo.mark_deleted, image.id):
            raise ImageNotFound(image_id=image.id)


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, int) and value < 0:
        raise BadRequest(f"Invalid value '{value}' for {name}: it must be >= 0.")
