"""Per-project and per-image limits, with Glance's 413s and wording.

- image count per project (Glance's unified limit ``image_count_total``): checked at create;
- bytes of image data per project (``image_size_total``) and the largest image
  (``image_size_cap``, and the store's own object limit): checked before an upload starts
  (declared size) and while it streams;
- properties, tags and members per image (``image_property_quota``, ``image_tag_quota``,
  ``image_member_quota``).

Zero means unlimited. Two uploads racing past the byte quota can both pass, as in Glance.
"""

from __future__ import annotations

from dataclasses import dataclass

from pocketstack.config import ImageSettings
from pocketstack.image.exceptions import RequestEntityTooLarge
from pocketstack.image.service.repo import ImageRepo


@dataclass(frozen=True)
class UploadLimit:
    """How many bytes the next upload may bring, and the error to raise past it."""

    limit: int
    over_quota: bool  # True: the project's byte quota is the binding limit

    def error(self, size: int | None = None) -> RequestEntityTooLarge:
        if self.over_quota:
            what = f"The size of the data {size} will" if size is not None else "The data will"
            return RequestEntityTooLarge(f"Image exceeds the storage quota: {what} exceed the "
                                         f"limit. {max(self.limit, 0)} bytes remaining.")
        return RequestEntityTooLarge("The incoming image is too large: The provided image is "
                                     "too large.")


class Quotas:
    def __init__(self, settings: ImageSettings, repo: ImageRepo, store_max: int | None) -> None:
        self.settings = settings
        self.repo = repo
        self.store_max = store_max

    async def check_count(self, owner: str | None) -> None:
        limit = self.settings.image_count_quota
        if not limit or owner is None:
            return
        count, _ = await self.repo.db.run(self.repo.usage, owner)
        if count + 1 > limit:
            raise RequestEntityTooLarge(
                f"Project {owner} is over a limit for [Resource image_count_total is over "
                f"limit of {limit} due to current usage {count} and delta 1]")

    async def upload_limit(self, owner: str | None) -> UploadLimit:
        cap = self.settings.max_image_size
        if self.store_max is not None:
            cap = min(cap, self.store_max)
        quota = self.settings.image_size_quota
        if not quota or owner is None:
            return UploadLimit(cap, False)
        _, used = await self.repo.db.run(self.repo.usage, owner)
        remaining = quota - used
        return UploadLimit(remaining, True) if remaining < cap else UploadLimit(cap, False)

    def check_properties(self, count: int) -> None:
        limit = self.settings.property_quota
        if limit and count > limit:
            raise RequestEntityTooLarge("The limit has been exceeded on the number of allowed "
                                        f"image properties. Attempted: {count}, Maximum: "
                                        f"{limit}")

    def check_tags(self, count: int) -> None:
        limit = self.settings.tag_quota
        if limit and count > limit:
            raise RequestEntityTooLarge("The limit has been exceeded on the number of allowed "
                                        f"image tags. Attempted: {count}, Maximum: {limit}")

    @staticmethod
    def member_error(image_id: str, attempted: int, limit: int) -> RequestEntityTooLarge:
        return RequestEntityTooLarge(
            f"Image member limit exceeded for image {image_id}: The limit has been exceeded "
            f"on the number of allowed image members for this image. Attempted: {attempted}, "
            f"Maximum: {limit}:")
