"""Helpers of the image unit tests: a hub on SQLite in memory with file stores, callers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from pocketstack.common.db import Database
from pocketstack.config import ImageSettings
from pocketstack.image.service.hub import MIGRATIONS, VERSION_TABLE, ImageHub
from pocketstack.image.service.records import Caller
from pocketstack.image.store import FileStore

ADMIN = Caller(user_id="u-admin", project_id="p-admin", is_admin=True)
ALICE = Caller(user_id="u-alice", project_id="p-alice")
BOB = Caller(user_id="u-bob", project_id="p-bob")
CAROL = Caller(user_id="u-carol", project_id="p-carol")


def make_hub(tmp_path: Path, **settings: object) -> ImageHub:
    db = Database("sqlite://")
    db.migrate(MIGRATIONS, version_table=VERSION_TABLE)
    conf = ImageSettings.model_validate({"store": "file", **settings})
    store = FileStore(tmp_path / "images", fsync=False)
    staging = FileStore(tmp_path / "staging", name="staging", fsync=False)
    return ImageHub(conf, db, store=store, staging=staging)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
