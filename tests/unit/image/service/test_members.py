"""MemberService: sharing with projects, answers, who sees which memberships."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.image.helpers import ADMIN, ALICE, BOB, CAROL, make_hub

from pocketstack.image.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RequestEntityTooLarge,
)
from pocketstack.image.service.hub import ImageHub
from pocketstack.image.service.records import Caller, ImageRecord

pytestmark = pytest.mark.anyio


async def shared_image(hub: ImageHub, visibility: str = "shared") -> ImageRecord:
    base, extra, tags = hub.images.parse_create(ALICE, {"visibility": visibility})
    return await hub.images.create(base, extra, tags)


async def test_members_lifecycle(hub: ImageHub) -> None:
    image = await shared_image(hub)
    bob = await hub.members.add(image, {"member": "p-bob"})
    await hub.members.add(image, {"member": "p-carol"})
    assert (bob.member_id, bob.status) == ("p-bob", "pending")
    async def ids(caller: Caller) -> list[str]:
        return [m.member_id for m in await hub.members.list_members(caller, image)]

    assert await ids(ALICE) == ["p-bob", "p-carol"]
    assert await ids(BOB) == ["p-bob"]
    assert await ids(ADMIN) == ["p-bob", "p-carol"]
    with pytest.raises(NotFound):
        await hub.members.get(BOB, image, "p-carol")
    accepted = await hub.members.update(BOB, image, "p-bob", {"status": "accepted"})
    assert accepted.status == "accepted"
    await hub.members.delete(ALICE, image, "p-bob")
    assert [m.member_id for m in await hub.members.list_members(ALICE, image)] == ["p-carol"]


async def test_only_shared_images_have_members(hub: ImageHub) -> None:
    image = await shared_image(hub, "private")
    with pytest.raises(Forbidden):
        await hub.members.add(image, {"member": "p-bob"})
    with pytest.raises(Forbidden):
        await hub.members.list_members(ALICE, image)


@pytest.mark.parametrize("body", [{}, {"member": ""}, {"member": 5}, [], {"member": "x" * 256}])
async def test_bad_member_bodies(hub: ImageHub, body: object) -> None:
    with pytest.raises(BadRequest):
        await hub.members.add(await shared_image(hub), body)


async def test_duplicates_bad_status_and_quota(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, member_quota=1)
    image = await shared_image(hub)
    await hub.members.add(image, {"member": "p-bob"})
    with pytest.raises(Conflict):
        await hub.members.add(image, {"member": "p-bob"})
    with pytest.raises(RequestEntityTooLarge):
        await hub.members.add(image, {"member": "p-carol"})
    with pytest.raises(BadRequest):
        await hub.members.update(BOB, image, "p-bob", {"status": "maybe"})
    with pytest.raises(NotFound):
        await hub.members.update(CAROL, image, "p-carol", {"status": "accepted"})
