"""Glance's image and member JSON schemas, and the small validator that checks bodies
against them.

The documents are what ``GET /v2/schemas/image(s)`` and ``/member(s)`` serve (clients read
them), built from the same property table the API validates with. The validator covers the
JSON Schema keywords those documents use (type, enum, maxLength, pattern, items) and words
its errors as the jsonschema library does, since Glance passes them through::

    Provided object does not match schema 'image': 'x' is not one of ['community', ...]
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$")
STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]
VISIBILITIES = ["community", "public", "private", "shared"]
MEMBER_STATUSES = ["pending", "accepted", "rejected"]


def _prop(type_: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "description": description, **extra}


def base_properties(disk_formats: Sequence[str], container_formats: Sequence[str]
                    ) -> dict[str, Any]:
    """Glance's ``get_base_properties()`` (the formats come from the configuration)."""
    nullable = ["null", "string"]
    ro = {"readOnly": True}
    return {
        "id": _prop("string", "An identifier for the image", pattern=UUID_PATTERN),
        "name": _prop(nullable, "Descriptive name for the image", maxLength=255),
        "status": _prop("string", "Status of the image", enum=STATUSES, **ro),
        "visibility": _prop("string", "Scope of image accessibility", enum=VISIBILITIES),
        "protected": _prop("boolean", "If true, image will not be deletable."),
        "os_hidden": _prop("boolean", "If true, image will not appear in default image "
                           "list response."),
        "checksum": _prop(nullable, "md5 hash of image contents.", maxLength=32, **ro),
        "os_hash_algo": _prop(nullable, "Algorithm to calculate the os_hash_value",
                              maxLength=64, **ro),
        "os_hash_value": _prop(nullable, "Hexdigest of the image contents using the "
                               "algorithm specified by the os_hash_algo", maxLength=128, **ro),
        "owner": _prop(nullable, "Owner of the image", maxLength=255),
        "size": _prop(["null", "integer"], "Size of image file in bytes", **ro),
        "virtual_size": _prop(["null", "integer"], "Virtual size of image in bytes", **ro),
        "container_format": _prop(nullable, "Format of the container",
                                  enum=[None, *container_formats]),
        "disk_format": _prop(nullable, "Format of the disk", enum=[None, *disk_formats]),
        "created_at": _prop("string", "Date and time of image registration", **ro),
        "updated_at": _prop("string", "Date and time of the last image modification", **ro),
        "tags": _prop("array", "List of strings related to the image",
                      items={"type": "string", "maxLength": 255}),
        "direct_url": _prop("string", "URL to access the image file kept in external store",
                            **ro),
        "min_ram": _prop("integer", "Amount of ram (in MB) required to boot image."),
        "min_disk": _prop("integer", "Amount of disk space (in GB) required to boot image."),
        "self": _prop("string", "An image self url", **ro),
        "file": _prop("string", "An image file url", **ro),
        "stores": _prop("string", "Store in which image data resides.  Only present when "
                        "the operator has enabled multiple stores.  May be a comma-separated "
                        "list of store identifiers.", **ro),
        "schema": _prop("string", "An image schema url", **ro),
        "locations": _prop("array", "A set of URLs to access the image file kept in "
                           "external store", items={
                               "type": "object", "required": ["url", "metadata"],
                               "properties": {"url": {"type": "string", "maxLength": 255},
                                              "metadata": {"type": "object"}}}),
    }


def custom_properties() -> dict[str, Any]:
    """Glance's shipped ``schema-image.json``: documented but optional properties."""
    nullable_uuid = {"type": ["null", "string"], "pattern": UUID_PATTERN}
    link = "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"
    props = {
        "kernel_id": {**nullable_uuid, "description": "ID of image stored in Glance that "
                      "should be used as the kernel when booting an AMI-style image."},
        "ramdisk_id": {**nullable_uuid, "description": "ID of image stored in Glance that "
                       "should be used as the ramdisk when booting an AMI-style image."},
        "instance_uuid": _prop("string", "Metadata which can be used to record which instance "
                               "this image is associated with. (Informational only, does not "
                               "create an instance snapshot.)"),
        "architecture": _prop("string", f"Operating system architecture as specified in "
                              f"{link}"),
        "os_distro": _prop("string", f"Common name of operating system distribution as "
                           f"specified in {link}"),
        "os_version": _prop("string", "Operating system version as specified by the "
                            "distributor."),
        "description": _prop("string", "A human-readable string describing this image."),
    }
    for value in props.values():
        value["is_base"] = False
    return props


MEMBER_PROPERTIES: dict[str, Any] = {
    "member_id": {"type": "string",
                  "description": "An identifier for the image member (tenantId)"},
    "image_id": {"type": "string", "description": "An identifier for the image",
                 "pattern": UUID_PATTERN},
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {"type": "string",
                   "description": "Date and time of last modification of image member"},
    "status": {"type": "string", "description": "The status of this image member",
               "enum": MEMBER_STATUSES},
    "schema": {"type": "string"},
}


class SchemaError(ValueError):
    """A body does not match a schema; the message is jsonschema's, prefixed as Glance does."""


class ImageSchema:
    """The image schema of one cloud (its formats) and the validator of image bodies."""

    def __init__(self, disk_formats: Sequence[str], container_formats: Sequence[str]) -> None:
        self.properties = {**base_properties(disk_formats, container_formats),
                           **custom_properties()}
        self.base_names = frozenset(base_properties((), ()))
        self.names = frozenset(self.properties)

    # -- documents -----------------------------------------------------------------------------
    def image_document(self) -> dict[str, Any]:
        return {"name": "image", "properties": copy.deepcopy(self.properties),
                "additionalProperties": {"type": "string"},
                "links": [{"rel": "self", "href": "{self}"},
                          {"rel": "enclosure", "href": "{file}"},
                          {"rel": "describedby", "href": "{schema}"}]}

    def images_document(self) -> dict[str, Any]:
        return {"name": "images", "properties": {
            "images": {"type": "array", "items": self.image_document()},
            "first": {"type": "string"}, "next": {"type": "string"},
            "schema": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}

    @staticmethod
    def member_document() -> dict[str, Any]:
        return {"name": "member", "properties": copy.deepcopy(MEMBER_PROPERTIES)}

    @staticmethod
    def members_document() -> dict[str, Any]:
        return {"name": "members", "properties": {
            "members": {"type": "array", "items": ImageSchema.member_document()},
            "schema": {"type": "string"}},
            "links": [{"rel": "describedby", "href": "{schema}"}]}

    # -- validation ----------------------------------------------------------------------------
    def validate(self, body: Mapping[str, Any]) -> None:
        """SchemaError unless ``body`` matches the image schema (extra values: strings)."""
        for key, value in body.items():
            spec = self.properties.get(key, {"type": "string"})
            problem = check(value, spec)
            if problem is not None:
                keyword, message = problem
                where = f"schema['properties'][{key!r}]" if key in self.properties \
                    else "schema['additionalProperties']"
                raise SchemaError(f"Provided object does not match schema 'image': {message}"
                                  f"\n\nFailed validating {keyword!r} in {where}")


_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def check(value: Any, spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first failing keyword of ``spec`` for ``value`` and jsonschema's message."""
    types = spec.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[name](value) for name in names):
            return "type", f"{value!r} is not of type {', '.join(map(repr, names))}"
    if "enum" in spec and value not in spec["enum"]:
        return "enum", f"{value!r} is not one of {spec['enum']!r}"
    if isinstance(value, str):
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            return "maxLength", f"{value!r} is too long"
        if "pattern" in spec and not re.search(spec["pattern"], value):
            return "pattern", f"{value!r} does not match {spec['pattern']!r}"
    if isinstance(value, list) and isinstance(spec.get("items"), Mapping):
        for item in value:
            problem = check(item, spec["items"])
            if problem is not None:
                return problem
    if isinstance(value, dict) and spec.get("required"):
        for name in spec["required"]:
            if name not in value:
                return "required", f"{name!r} is a required property"
    return None
