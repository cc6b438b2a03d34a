"""The image service as one object: settings, database, schema, stores, and the parts.

``ImageHub`` is built by :mod:`pocketstack.image.runtime` (or a test) and handed to the API
through ``app.state``; nothing here is global. Its parts share it: ``images`` (records,
tags), ``data`` (upload, download, stage, import), ``members``.
"""

from __future__ import annotations

from pocketstack.common.db import Database
from pocketstack.config import ImageSettings
from pocketstack.image.service.data import DataService
from pocketstack.image.service.images import ImageService
from pocketstack.image.service.members import MemberService
from pocketstack.image.service.quotas import Quotas
from pocketstack.image.service.repo import ImageRepo
from pocketstack.image.service.schema import ImageSchema
from pocketstack.image.store import Store

MIGRATIONS = "pocketstack.image:migrations"
VERSION_TABLE = "alembic_version_image"


class ImageHub:
    def __init__(self, settings: ImageSettings, db: Database, *, store: Store,
                 staging: Store) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.staging = staging
        self.repo = ImageRepo(db)
        self.schema = ImageSchema(settings.disk_formats, settings.container_formats)
        self.quotas = Quotas(settings, self.repo, store.max_size)
        self.images = ImageService(self)
        self.data = DataService(self)
        self.members = MemberService(self)

    async def close(self) -> None:
        await self.data.close()
        await self.store.close()
        await self.staging.close()
