"""An in-memory identity hub: SQLite ``sqlite://``, keys in a temp dir, bootstrapped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pocketstack.common.db import Database
from pocketstack.config import Settings
from pocketstack.identity.service.bootstrap import bootstrap
from pocketstack.identity.service.hub import MIGRATIONS, VERSION_TABLE, Identity
from pocketstack.identity.tokens import FernetKeyRepository


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Identity]:
    settings = Settings.model_validate({"data_dir": tmp_path,
                                        "identity": {"bcrypt_rounds": 4}})
    db = Database("sqlite://")
    db.migrate(MIGRATIONS, version_table=VERSION_TABLE)
    token_keys = FernetKeyRepository(tmp_path / "keys" / "fernet")
    credential_keys = FernetKeyRepository(tmp_path / "keys" / "credential")
    token_keys.initialize()
    credential_keys.initialize()
    identity = Identity(settings, db, token_keys=token_keys, credential_keys=credential_keys)
    bootstrap(identity, admin_password="admin-pw", services=[])
    yield identity
    db.close()
