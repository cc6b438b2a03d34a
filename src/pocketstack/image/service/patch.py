"""Glance's JSON-patch dialect for ``PATCH /v2/images/{id}``, parsed and checked (pure).

Two media types: ``application/openstack-images-v2.1-json-patch`` (RFC 6902 objects,
``{"op": "add", "path": "/foo", "value": "bar"}``) and the deprecated ``...-v2.0-...``
(draft 4: ``{"add": "/foo", "value": "bar"}``). Any other type is a 415 naming both.
Paths are JSON pointers one level deep (``/locations/N`` two); read-only attributes and
reserved names are 403s, malformed documents and values that break the schema 400s. What a
change *means* for an image (409 for a missing property, ...) is the service's business.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pocketstack.image.exceptions import BadRequest, Forbidden, UnsupportedMediaType
from pocketstack.image.service.schema import ImageSchema, SchemaError

MEDIA_TYPES = {"application/openstack-images-v2.0-json-patch": 4,
               "application/openstack-images-v2.1-json-patch": 10}
OPERATIONS = ("add", "remove", "replace")
READ_ONLY = frozenset({"created_at", "updated_at", "status", "checksum", "size",
                       "virtual_size", "direct_url", "self", "file", "schema", "id",
                       "os_hash_algo", "os_hash_value", "stores"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"
_DEPTH = {"locations": {"add": 2, "remove": 2, "replace": 1}}


@dataclass(frozen=True)
class Change:
    op: str
    path: tuple[str, ...]
    value: Any = None
    draft: int = 10

    @property
    def name(self) -> str:
        return self.path[0]


def accept_patch_header() -> str:
    return ", ".join(sorted(MEDIA_TYPES))


def draft_of(content_type: str) -> int:
    """The JSON-patch draft of a PATCH's media type (415 for any other type)."""
    media = content_type.split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(content_type=media or "None",
                                   headers={"Accept-Patch": accept_patch_header()})
    return MEDIA_TYPES[media]


def parse(draft: int, raw: bytes, schema: ImageSchema) -> list[Change]:
    """The changes of one PATCH request body, in order."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Malformed JSON in request body.") from exc
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw_change in body:
        if not isinstance(raw_change, dict):
            raise BadRequest("Operations must be JSON objects.")
        change = _parse_change(raw_change, draft)
        _check(change, schema)
        changes.append(change)
    return changes


def _parse_change(raw: dict[str, Any], draft: int) -> Change:
    if draft == 10:
        op = raw.get("op")
        if op is None or op not in OPERATIONS:
            what = "Unable to find `op` in JSON Schema change" if op is None \
                else f"Invalid operation: `{op}`"
            raise BadRequest(f"{what}. It must be one of the following: "
                             f"{', '.join(OPERATIONS)}.")
        if "path" not in raw:
            raise BadRequest("Unable to find 'path' in JSON Schema change")
        pointer = raw["path"]
    else:
        found = [key for key in OPERATIONS if key in raw]
        if len(found) != 1:
            raise BadRequest("Operation objects must contain exactly one member named "
                             '"add", "remove", or "replace".')
        op = found[0]
        pointer = raw[op]
    path = decode_pointer(pointer)
    if len(path) != _DEPTH.get(path[0], {}).get(op, 1):
        raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
    if op == "remove":
        return Change(op, path, draft=draft)
    if "value" not in raw:
        raise BadRequest(f'Operation "{op}" requires a member named "value".')
    return Change(op, path, raw["value"], draft)


def decode_pointer(pointer: Any) -> tuple[str, ...]:
    """Glance's restricted JSON pointer: ``/a/b`` with ``~1`` for ``/`` and ``~0`` for ``~``."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise BadRequest(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise BadRequest(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise BadRequest(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        raise BadRequest(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise BadRequest(f'Pointer `{pointer}` contains "~" not part of a recognized escape '
                         "sequence.")
    return tuple(part.replace("~1", "/").replace("~0", "~").strip()
                 for part in pointer.lstrip("/").split("/"))


def _check(change: Change, schema: ImageSchema) -> None:
    name = change.name
    if name in READ_ONLY:
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{name}' is reserved.")
    if name == "locations":
        raise Forbidden(f"It's not allowed to {change.op} locations if locations are "
                        "invisible.")
    if not name:
        raise BadRequest("Invalid JSON pointer for this resource: '/'")
    if len(name) > 255:
        raise BadRequest("Custom property should not be greater than 255 characters.")
    if change.op == "remove":
        return
    try:
        schema.validate({name: change.value})
    except SchemaError as exc:
        raise BadRequest(str(exc)) from exc
