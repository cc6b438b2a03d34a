"""Glance's JSON-patch dialect: media types, pointers, read-only and reserved names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pocketstack.image.exceptions import BadRequest, Forbidden, UnsupportedMediaType
from pocketstack.image.service import patch
from pocketstack.image.service.schema import ImageSchema

SCHEMA = ImageSchema(["raw", "qcow2"], ["bare"])


def parse(ops: Any, draft: int = 10) -> list[patch.Change]:
    return patch.parse(draft, json.dumps(ops).encode(), SCHEMA)


def test_media_types() -> None:
    assert patch.draft_of("application/openstack-images-v2.1-json-patch") == 10
    assert patch.draft_of("application/openstack-images-v2.0-json-patch; charset=utf-8") == 4
    with pytest.raises(UnsupportedMediaType) as caught:
        patch.draft_of("application/json")
    assert caught.value.headers["Accept-Patch"] == (
        "application/openstack-images-v2.0-json-patch, "
        "application/openstack-images-v2.1-json-patch")


def test_both_drafts() -> None:
    assert parse([{"op": "add", "path": "/a~1b", "value": "v"}]) == \
        [patch.Change("add", ("a/b",), "v")]
    assert parse([{"remove": "/foo"}], draft=4) == [patch.Change("remove", ("foo",), draft=4)]


@pytest.mark.parametrize("ops", [
    {"op": "add"}, [1], [{"op": "move", "path": "/a", "value": 1}], [{"path": "/a"}],
    [{"op": "add", "value": "x"}], [{"op": "add", "path": "a", "value": "x"}],
    [{"op": "add", "path": "/a//b", "value": "x"}], [{"op": "add", "path": "/a/", "value": "x"}],
    [{"op": "add", "path": "/a~2", "value": "x"}], [{"op": "add", "path": "/a/b", "value": "x"}],
    [{"op": "add", "path": "/a"}], [{"op": "replace", "path": "/visibility", "value": "nope"}],
    [{"op": "replace", "path": "/protected", "value": "yes"}],
    [{"op": "replace", "path": "/kernel_id", "value": "not-a-uuid"}],
    [{"op": "add", "path": "/custom", "value": 1}],
    [{"op": "add", "path": "/" + "x" * 256, "value": "1"}],
])
def test_malformed_changes_are_400(ops: Any) -> None:
    with pytest.raises(BadRequest):
        parse(ops)


def test_bad_json_is_400() -> None:
    with pytest.raises(BadRequest):
        patch.parse(10, b"{nope", SCHEMA)


@pytest.mark.parametrize("name", ["status", "id", "checksum", "size", "created_at", "self",
                                  "os_hash_value", "deleted", "location", "os_glance_x",
                                  "locations"])
def test_read_only_and_reserved_names_are_403(name: str) -> None:
    with pytest.raises(Forbidden):
        parse([{"op": "replace", "path": f"/{name}", "value": "x"}])
