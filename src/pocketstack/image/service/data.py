"""Image data: upload, download, stage and import, streamed end to end.

Upload (``PUT /file``) and import (after ``PUT /stage``) share one path: the bytes flow
from their source through :class:`Digest` (size, md5 ``checksum``, sha512
``os_hash_value``) and a size limit into the store, never whole in memory. Status moves
as in Glance::

    queued --upload--> saving --> active          (ok)
                          |-----> queued          (too large, over quota, store full)
                          '-----> killed          (body ended early, store failed)
    queued --stage--> uploading --import--> importing --> active
                                                   '----> uploading (failed; re-import)

The status changes are conditional updates (``saving`` only from ``queued``), so two
uploads to one image cannot both run; an image deleted during its upload loses the data
too and the upload answers 410.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pocketstack.image.exceptions import (
    Conflict,
    Forbidden,
    Gone,
    ImageError,
    IncompleteUpload,
    InternalError,
    InvalidStatusTransition,
    RequestEntityTooLarge,
    ServiceUnavailable,
)
from pocketstack.image.service.quotas import UploadLimit
from pocketstack.image.service.ranges import ByteRange
from pocketstack.image.service.records import Caller, ImageRecord
from pocketstack.image.store import DataNotFound, Reader, StoreFull, StoreUnavailable

if TYPE_CHECKING:
    from pocketstack.image.service.hub import ImageHub

LOG = logging.getLogger(__name__)
HASH_ALGO = "sha512"


class Digest:
    """Size and hashes of a stream, updated chunk by chunk."""

    def __init__(self) -> None:
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.md5.update(chunk)
        self.sha512.update(chunk)

    def fields(self) -> dict[str, object]:
        return {"size": self.size, "checksum": self.md5.hexdigest(),
                "os_hash_algo": HASH_ALGO, "os_hash_value": self.sha512.hexdigest()}


class _TooLarge(Exception):
    """The stream passed its limit (raised inside the store's read of the stream)."""


async def measured(chunks: AsyncIterator[bytes], digest: Digest, limit: int
                   ) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if not chunk:
            continue
        digest.update(chunk)
        if digest.size > limit:
            raise _TooLarge()
        yield chunk


@dataclass
class Download:
    """What a download sends: the reader (to close!), its length and the range."""

    reader: Reader
    length: int
    range: ByteRange | None


class DataService:
    def __init__(self, hub: ImageHub) -> None:
        self.hub = hub
        self.repo = hub.repo
        self.db = hub.db
        self.tasks: set[asyncio.Task[None]] = set()

    # -- upload --------------------------------------------------------------------------------
    async def upload(self, image: ImageRecord, chunks: AsyncIterator[bytes],
                     declared: int | None) -> None:
        limit = await self.hub.quotas.upload_limit(image.owner)
        if declared is not None and declared > limit.limit:
            raise limit.error(declared)
        await self._transition(image, ["queued"], "saving")
        digest = Digest()
        store = self.hub.store
        try:
            stored = await store.put(image.id, measured(chunks, digest, limit.limit))
        except BaseException as exc:
            await self._failed(image.id, "saving", exc, digest)
            error = self._error(exc, limit)
            if error is exc:
                raise
            raise error from exc
        if stored.md5 is not None and stored.md5 != digest.md5.hexdigest():
            await store.delete(stored.location)
            await self.db.run(self.repo.transition, image.id, ["saving"], "killed")
            raise InternalError("The image data was damaged on its way to the store.")
        if not await self.db.run(self.repo.transition, image.id, ["saving"], "active",
                                 store=store.name, location=stored.location,
                                 **digest.fields()):
            await store.delete(stored.location)
            raise Gone(f"Image {image.id} could not be found after upload. The image may "
                       "have been deleted during the upload, cleaning up the chunks uploaded.")

    async def _transition(self, image: ImageRecord, current: list[str], new: str) -> None:
        if not await self.db.run(self.repo.transition, image.id, current, new):
            fresh = await self.db.run(self.repo.get, image.id)
            status = fresh.status if fresh is not None else "deleted"
            raise InvalidStatusTransition(current=status, new=new)

    async def _failed(self, image_id: str, status: str, exc: BaseException,
                      digest: Digest) -> None:
        """Put the image back (``queued``: a retry may succeed) or mark it ``killed``."""
        retry = isinstance(exc, _TooLarge | StoreFull)
        new = "queued" if retry else "killed"
        if isinstance(exc, asyncio.CancelledError | IncompleteUpload | StoreUnavailable):
            LOG.info("upload of image %s failed after %d bytes: %s", image_id, digest.size,
                     type(exc).__name__)
        await asyncio.shield(self.db.run(self.repo.transition, image_id, [status], new))

    @staticmethod
    def _error(exc: BaseException, limit: UploadLimit) -> BaseException:
        if isinstance(exc, _TooLarge):
            return limit.error()
        if isinstance(exc, StoreFull):
            return RequestEntityTooLarge(f"Image storage media is full: {exc}")
        if isinstance(exc, StoreUnavailable):
            return ServiceUnavailable("The image store is unavailable. Please try again later.")
        return exc

    # -- download ------------------------------------------------------------------------------
    async def download(self, caller: Caller, image: ImageRecord, wanted: ByteRange | None
                       ) -> Download | None:
        """The data to send, or None when the image has none (Glance's 204)."""
        if image.status == "deactivated" and not caller.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download "
                            "is forbidden.")
        if image.location is None or image.size is None:
            return None
        offset, length = (wanted.offset, wanted.length) if wanted else (0, None)
        try:
            reader = await self.hub.store.open(image.location, offset=offset, length=length)
        except DataNotFound:
            LOG.warning("the data of image %s is missing from the store", image.id)
            return None
        except StoreUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc
        return Download(reader, wanted.length if wanted else image.size, wanted)

    # -- stage and import ----------------------------------------------------------------------
    async def stage(self, image: ImageRecord, chunks: AsyncIterator[bytes],
                    declared: int | None) -> None:
        """Keep the data in the staging area (``uploading``) until an import moves it."""
        limit = await self.hub.quotas.upload_limit(image.owner)
        if declared is not None and declared > limit.limit:
            raise limit.error(declared)
        await self._transition(image, ["queued"], "uploading")
        digest = Digest()
        try:
            await self.hub.staging.put(image.id, measured(chunks, digest, limit.limit))
        except BaseException as exc:
            await asyncio.shield(self.db.run(self.repo.transition, image.id, ["uploading"],
                                             "queued"))
            error = self._error(exc, limit)
            if error is exc:
                raise
            raise error from exc

    async def start_import(self, image: ImageRecord, method: str) -> None:
        if image.status == "active":
            raise Conflict("Image with status active cannot be target for import")
        if image.status != "uploading":
            raise Conflict(f"Image needs to be staged before '{method}' method can be used")
        for name in ("container_format", "disk_format"):
            if not getattr(image, name):
                raise Conflict(f"'{name}' needs to be set before import")
        await self._transition(image, ["uploading"], "importing")
        task = asyncio.create_task(self._import(image), name=f"import-{image.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _import(self, image: ImageRecord) -> None:
        staging = self.hub.staging
        staged = staging.location_for(image.id)
        try:
            reader = await staging.open(staged)
            limit = await self.hub.quotas.upload_limit(image.owner)
            digest = Digest()
            stored = await self.hub.store.put(image.id, measured(aiter(reader), digest,
                                                                 limit.limit))
        except (ImageError, _TooLarge, DataNotFound, StoreFull, StoreUnavailable) as exc:
            LOG.warning("import of image %s failed: %s", image.id, type(exc).__name__)
            await self.db.run(self.repo.transition, image.id, ["importing"], "uploading")
            return
        except Exception:
            LOG.exception("import of image %s failed", image.id)
            await self.db.run(self.repo.transition, image.id, ["importing"], "uploading")
            return
        if await self.db.run(self.repo.transition, image.id, ["importing"], "active",
                             store=self.hub.store.name, location=stored.location,
                             **digest.fields()):
            await staging.delete(staged)
        else:
            await self.hub.store.delete(stored.location)

    # -- lifecycle -----------------------------------------------------------------------------
    def recover(self) -> None:
        """Before serving (blocking): uploads that were running when the service stopped
        failed (``killed``); imports go back to ``uploading`` to be imported again."""
        for image_id, status in self.repo.stuck(["saving", "importing"]):
            new = "killed" if status == "saving" else "uploading"
            self.repo.transition(image_id, [status], new)
            LOG.info("image %s was %s when the service stopped: now %s", image_id, status, new)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
