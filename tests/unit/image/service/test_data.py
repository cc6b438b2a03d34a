"""DataService: streamed upload and download, hashes, limits, statuses, stage + import."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.image.helpers import ADMIN, ALICE, chunks, make_hub

from pocketstack.image.exceptions import (
    Conflict,
    Forbidden,
    Gone,
    IncompleteUpload,
    InvalidStatusTransition,
    RequestEntityTooLarge,
)
from pocketstack.image.service.hub import ImageHub
from pocketstack.image.service.ranges import ByteRange
from pocketstack.image.service.records import ImageRecord

pytestmark = pytest.mark.anyio


async def new_image(hub: ImageHub, **body: object) -> ImageRecord:
    base, extra, tags = hub.images.parse_create(ALICE, {"name": "img", "disk_format": "raw",
                                                        "container_format": "bare", **body})
    return await hub.images.create(base, extra, tags)


async def read_all(hub: ImageHub, image: ImageRecord, wanted: ByteRange | None = None
                   ) -> bytes:
    download = await hub.data.download(ALICE, image, wanted)
    assert download is not None
    return b"".join([chunk async for chunk in download.reader])


async def test_upload_sets_size_and_hashes(hub: ImageHub) -> None:
    image = await new_image(hub)
    parts = [bytes([i]) * 70000 for i in range(5)]
    await hub.data.upload(image, chunks(*parts), None)
    active = await hub.images.get(ALICE, image.id)
    data = b"".join(parts)
    assert (active.status, active.size) == ("active", len(data))
    assert active.checksum == hashlib.md5(data).hexdigest()
    assert (active.os_hash_algo, active.os_hash_value) == \
        ("sha512", hashlib.sha512(data).hexdigest())
    assert active.store == "file" and active.location is not None
    assert await read_all(hub, active) == data
    assert await read_all(hub, active, ByteRange(70000, 10, len(data))) == b"\x01" * 10


async def test_an_empty_image_is_active(hub: ImageHub) -> None:
    image = await new_image(hub)
    await hub.data.upload(image, chunks(), 0)
    active = await hub.images.get(ALICE, image.id)
    assert (active.status, active.size) == ("active", 0)
    assert active.checksum == hashlib.md5(b"").hexdigest()


async def test_upload_to_an_active_image_conflicts(hub: ImageHub) -> None:
    image = await new_image(hub)
    await hub.data.upload(image, chunks(b"one"), None)
    with pytest.raises(InvalidStatusTransition) as caught:
        await hub.data.upload(image, chunks(b"two"), None)
    assert caught.value.status == 409
    assert await read_all(hub, await hub.images.get(ALICE, image.id)) == b"one"


async def test_without_data_there_is_nothing_to_download(hub: ImageHub) -> None:
    image = await new_image(hub)
    assert await hub.data.download(ALICE, image, None) is None


async def broken(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise IncompleteUpload()


async def test_an_upload_that_breaks_off_kills_the_image(hub: ImageHub, tmp_path: Path
                                                         ) -> None:
    image = await new_image(hub)
    with pytest.raises(IncompleteUpload):
        await hub.data.upload(image, broken(b"partial"), 100)
    assert (await hub.images.get(ALICE, image.id)).status == "killed"
    assert [p.name for p in (tmp_path / "images").iterdir()] == []
    with pytest.raises(InvalidStatusTransition):
        await hub.data.upload(image, chunks(b"retry"), None)


async def test_too_large_images_go_back_to_queued(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, max_image_size=10)
    image = await new_image(hub)
    with pytest.raises(RequestEntityTooLarge):
        await hub.data.upload(image, chunks(b"x" * 11), 11)  # declared: refused up front
    with pytest.raises(RequestEntityTooLarge):
        await hub.data.upload(image, chunks(b"x" * 6, b"x" * 6), None)  # found streaming
    assert (await hub.images.get(ALICE, image.id)).status == "queued"
    await hub.data.upload(image, chunks(b"x" * 10), None)
    assert (await hub.images.get(ALICE, image.id)).status == "active"


async def test_the_byte_quota_counts_the_project_s_images(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, image_size_quota=10)
    first, second = await new_image(hub), await new_image(hub)
    await hub.data.upload(first, chunks(b"x" * 7), None)
    with pytest.raises(RequestEntityTooLarge) as caught:
        await hub.data.upload(second, chunks(b"y" * 4), None)
    assert "storage quota" in caught.value.message
    assert (await hub.images.get(ALICE, second.id)).status == "queued"
    await hub.data.upload(second, chunks(b"y" * 3), None)


async def test_deleting_during_an_upload_answers_gone(hub: ImageHub, tmp_path: Path) -> None:
    image = await new_image(hub)

    async def slow() -> AsyncIterator[bytes]:
        yield b"first"
        fresh = await hub.images.get(ALICE, image.id)
        await hub.images.delete(fresh)
        yield b"second"

    with pytest.raises(Gone):
        await hub.data.upload(image, slow(), None)
    assert [p.name for p in (tmp_path / "images").iterdir()] == []


async def test_a_deactivated_image_is_downloaded_by_admins_only(hub: ImageHub) -> None:
    image = await new_image(hub)
    await hub.data.upload(image, chunks(b"data"), None)
    await hub.images.set_active(await hub.images.get(ALICE, image.id), False)
    deactivated = await hub.images.get(ALICE, image.id)
    with pytest.raises(Forbidden):
        await hub.data.download(ALICE, deactivated, None)
    download = await hub.data.download(ADMIN, deactivated, None)
    assert download is not None
    await download.reader.aclose()


async def test_stage_then_import(hub: ImageHub, tmp_path: Path) -> None:
    image = await new_image(hub)
    with pytest.raises(Conflict):
        await hub.data.start_import(image, "glance-direct")  # nothing staged
    await hub.data.stage(image, chunks(b"staged ", b"data"), None)
    staged = await hub.images.get(ALICE, image.id)
    assert staged.status == "uploading"
    assert (tmp_path / "staging" / image.id).read_bytes() == b"staged data"
    await hub.data.start_import(staged, "glance-direct")
    await asyncio.gather(*hub.data.tasks)
    active = await hub.images.get(ALICE, image.id)
    assert (active.status, active.size) == ("active", 11)
    assert active.checksum == hashlib.md5(b"staged data").hexdigest()
    assert not (tmp_path / "staging" / image.id).exists()
    assert await read_all(hub, active) == b"staged data"
    with pytest.raises(Conflict):
        await hub.data.start_import(active, "glance-direct")


async def test_import_needs_formats(hub: ImageHub) -> None:
    base, extra, tags = hub.images.parse_create(ALICE, {"name": "bare"})
    image = await hub.images.create(base, extra, tags)
    await hub.data.stage(image, chunks(b"data"), None)
    with pytest.raises(Conflict):
        await hub.data.start_import(await hub.images.get(ALICE, image.id), "glance-direct")


async def test_recover_after_a_crash(hub: ImageHub) -> None:
    saving, importing = await new_image(hub), await new_image(hub)
    await hub.db.run(hub.repo.transition, saving.id, ["queued"], "saving")
    await hub.db.run(hub.repo.transition, importing.id, ["queued"], "importing")
    await hub.db.run(hub.data.recover)
    assert (await hub.images.get(ALICE, saving.id)).status == "killed"
    assert (await hub.images.get(ALICE, importing.id)).status == "uploading"
