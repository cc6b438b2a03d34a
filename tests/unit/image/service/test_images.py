"""ImageService: Glance's rules for records (create, visibility, listing, PATCH, delete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.image.helpers import ADMIN, ALICE, BOB, CAROL, chunks, make_hub

from pocketstack.image.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    ImageNotFound,
    NotFound,
    RequestEntityTooLarge,
)
from pocketstack.image.service import patch, query
from pocketstack.image.service.hub import ImageHub
from pocketstack.image.service.records import Caller, ImageRecord

pytestmark = pytest.mark.anyio


async def create(hub: ImageHub, caller: Caller = ALICE, **body: Any) -> ImageRecord:
    base, extra, tags = hub.images.parse_create(caller, {"name": "img", **body})
    return await hub.images.create(base, extra, tags)


async def listed(hub: ImageHub, caller: Caller, *pairs: tuple[str, str]) -> list[str]:
    wanted = query.parse(pairs, default_limit=25, max_limit=1000)
    return [i.name or "" for i in await hub.images.list_images(caller, wanted)]


def changes(hub: ImageHub, *ops: dict[str, Any]) -> list[patch.Change]:
    import json

    return patch.parse(10, json.dumps(list(ops)).encode(), hub.schema)


async def test_create_defaults(hub: ImageHub) -> None:
    image = await create(hub, foo="bar", tags=["a", "b", "a"])
    assert (image.status, image.visibility, image.owner) == ("queued", "shared", "p-alice")
    assert image.properties == {"foo": "bar"} and image.tags == ["a", "b"]
    assert (image.size, image.checksum, image.protected, image.min_ram) == (None, None, False, 0)


@pytest.mark.parametrize(("body", "error"), [
    ({"status": "active"}, Forbidden), ({"size": 3}, Forbidden), ({"self": "x"}, Forbidden),
    ({"deleted": "1"}, Forbidden), ({"os_glance_x": "1"}, Forbidden),
    ({"locations": []}, Forbidden), ({"visibility": "nope"}, BadRequest),
    ({"min_ram": "1"}, BadRequest), ({"min_disk": -1}, BadRequest),
    ({"disk_format": "floppy"}, BadRequest), ({"id": "not-a-uuid"}, BadRequest),
    ({"custom": 5}, BadRequest), ({"x" * 256: "v"}, BadRequest),
])
async def test_create_refuses(hub: ImageHub, body: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        await create(hub, **body)


async def test_create_with_an_existing_id_conflicts(hub: ImageHub) -> None:
    image = await create(hub)
    with pytest.raises(Conflict):
        await create(hub, id=image.id)


async def test_visibility_rules(hub: ImageHub) -> None:
    private = await create(hub, name="private", visibility="private")
    shared = await create(hub, name="shared")
    await create(hub, name="public", visibility="public")
    community = await create(hub, name="community", visibility="community")
    with pytest.raises(ImageNotFound):
        await hub.images.get(BOB, private.id)
    with pytest.raises(ImageNotFound):
        await hub.images.get(BOB, shared.id)
    assert (await hub.images.get(BOB, community.id)).name == "community"
    assert await listed(hub, BOB) == ["public"]
    assert await listed(hub, BOB, ("visibility", "community")) == ["community"]
    assert sorted(await listed(hub, ALICE)) == ["community", "private", "public", "shared"]
    assert sorted(await listed(hub, ADMIN)) == ["community", "private", "public", "shared"]
    await hub.members.add(shared, {"member": "p-bob"})
    assert (await hub.images.get(BOB, shared.id)).name == "shared"  # pending: readable
    assert await listed(hub, BOB) == ["public"]  # ... but not listed by default
    assert await listed(hub, BOB, ("member_status", "pending")) == ["public", "shared"]
    await hub.members.update(BOB, shared, "p-bob", {"status": "accepted"})
    assert await listed(hub, BOB) == ["public", "shared"]
    assert await listed(hub, BOB, ("visibility", "shared")) == ["shared"]
    assert await listed(hub, CAROL, ("visibility", "all")) == ["community", "public"]


async def test_list_filters_sorting_and_paging(hub: ImageHub) -> None:
    for name, size in (("a", 3), ("b", 30), ("c", 300)):
        image = await create(hub, name=name, tags=[f"t-{name}", "all"], hw=name,
                             disk_format="raw", container_format="bare")
        await hub.data.upload(image, chunks(b"x" * size), None)
    assert await listed(hub, ALICE, ("sort", "name:asc")) == ["a", "b", "c"]
    assert await listed(hub, ALICE, ("sort_key", "size"), ("sort_dir", "asc")) == \
        ["a", "b", "c"]
    assert await listed(hub, ALICE, ("name", 'in:"a",c'), ("sort", "name")) == ["c", "a"]
    assert await listed(hub, ALICE, ("size_min", "10"), ("size_max", "100")) == ["b"]
    assert await listed(hub, ALICE, ("tag", "all"), ("tag", "t-b")) == ["b"]
    assert await listed(hub, ALICE, ("hw", "c")) == ["c"]
    assert await listed(hub, ALICE, ("status", "in:active,queued"), ("sort", "name:asc")) \
        == ["a", "b", "c"]
    assert await listed(hub, ALICE, ("created_at", "gt:2000-01-01T00:00:00Z"),
                        ("sort", "name:asc")) == ["a", "b", "c"]
    assert await listed(hub, ALICE, ("created_at", "lt:2000-01-01T00:00:00Z")) == []
    first = await hub.images.list_images(ALICE, query.parse([("limit", "2"), ("sort", "name:asc")],
                                                     default_limit=25, max_limit=1000))
    rest = await hub.images.list_images(ALICE, query.parse(
        [("limit", "2"), ("sort", "name:asc"), ("marker", first[-1].id)],
        default_limit=25, max_limit=1000))
    assert [i.name for i in first + rest] == ["a", "b", "c"]


async def test_marker_must_be_visible(hub: ImageHub) -> None:
    hidden = await create(hub, visibility="private")
    with pytest.raises(BadRequest):
        await listed(hub, BOB, ("marker", hidden.id))


async def test_patch_core_and_custom_properties(hub: ImageHub) -> None:
    image = await create(hub, foo="bar")
    updated = await hub.images.update(ALICE, image, changes(
        hub, {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/ping", "value": "pong"},
        {"op": "replace", "path": "/foo", "value": "baz"},
        {"op": "replace", "path": "/protected", "value": True},
        {"op": "replace", "path": "/tags", "value": ["x", "y"]}))
    assert (updated.name, updated.protected, updated.tags) == ("renamed", True, ["x", "y"])
    assert updated.properties == {"foo": "baz", "ping": "pong"}
    removed = await hub.images.update(ALICE, updated, changes(
        hub, {"op": "remove", "path": "/ping"}))
    assert removed.properties == {"foo": "baz"}
    assert (await hub.images.get(ALICE, image.id)).properties == {"foo": "baz"}


@pytest.mark.parametrize(("op", "error"), [
    ({"op": "replace", "path": "/missing", "value": "x"}, Conflict),
    ({"op": "remove", "path": "/missing"}, Conflict),
    ({"op": "remove", "path": "/name"}, Forbidden),
    ({"op": "replace", "path": "/owner", "value": "p-bob"}, Forbidden),
    ({"op": "replace", "path": "/min_ram", "value": -5}, BadRequest),
])
async def test_patch_refuses(hub: ImageHub, op: dict[str, Any], error: type) -> None:
    image = await create(hub)
    with pytest.raises(error):
        await hub.images.update(ALICE, image, changes(hub, op))


async def test_admin_may_change_the_owner(hub: ImageHub) -> None:
    image = await create(hub)
    updated = await hub.images.update(ADMIN, image, changes(
        hub, {"op": "replace", "path": "/owner", "value": "p-bob"}))
    assert updated.owner == "p-bob"


async def test_formats_are_fixed_once_active(hub: ImageHub) -> None:
    image = await create(hub, disk_format="raw", container_format="bare")
    await hub.data.upload(image, chunks(b"data"), 4)
    active = await hub.images.get(ALICE, image.id)
    with pytest.raises(Forbidden):
        await hub.images.update(ALICE, active, changes(
            hub, {"op": "replace", "path": "/disk_format", "value": "qcow2"}))


async def test_tags(hub: ImageHub) -> None:
    image = await create(hub)
    await hub.images.add_tag(image, "one")
    image = await hub.images.get(ALICE, image.id)
    await hub.images.add_tag(image, "one")  # idempotent
    assert (await hub.images.get(ALICE, image.id)).tags == ["one"]
    with pytest.raises(NotFound):
        await hub.images.delete_tag(image, "two")
    await hub.images.delete_tag(image, "one")
    assert (await hub.images.get(ALICE, image.id)).tags == []


async def test_deactivate_and_reactivate(hub: ImageHub) -> None:
    image = await create(hub)
    with pytest.raises(Forbidden):
        await hub.images.set_active(image, False)  # queued
    await hub.data.upload(image, chunks(b"data"), None)
    active = await hub.images.get(ALICE, image.id)
    await hub.images.set_active(active, False)
    deactivated = await hub.images.get(ALICE, image.id)
    assert deactivated.status == "deactivated"
    await hub.images.set_active(deactivated, False)  # a no-op
    await hub.images.set_active(deactivated, True)
    assert (await hub.images.get(ALICE, image.id)).status == "active"


async def test_delete_removes_the_data(hub: ImageHub, tmp_path: Path) -> None:
    image = await create(hub, protected=True)
    await hub.data.upload(image, chunks(b"data"), None)
    image = await hub.images.get(ALICE, image.id)
    assert (tmp_path / "images" / image.id).read_bytes() == b"data"
    with pytest.raises(Forbidden):
        await hub.images.delete(image)
    image = await hub.images.update(ALICE, image, changes(
        hub, {"op": "replace", "path": "/protected", "value": False}))
    await hub.images.delete(image)
    assert not (tmp_path / "images" / image.id).exists()
    with pytest.raises(ImageNotFound):
        await hub.images.get(ADMIN, image.id)
    with pytest.raises(Conflict):  # a deleted image's id is never reused
        await create(hub, id=image.id)


async def test_quotas_on_count_properties_and_tags(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, image_count_quota=2, property_quota=2, tag_quota=1)
    await create(hub)
    await create(hub, a="1", b="2", tags=["t"])
    with pytest.raises(RequestEntityTooLarge):
        await create(hub)
    await create(hub, BOB)  # another project
    with pytest.raises(RequestEntityTooLarge):
        await create(hub, BOB, a="1", b="2", c="3")
    with pytest.raises(RequestEntityTooLarge):
        await create(hub, BOB, tags=["x", "y"])
