"""The identity service as one object: settings, database, keys, caches, and the parts.

``Identity`` is built by ``cloud.py`` (or a test) and handed to the API through
``app.state``; nothing here is global. Its parts are small services that share the hub:
``resource`` (domains, projects), ``users`` (users, groups), ``assignments`` (roles, grants),
``catalog``, ``credentials``, ``app_creds``, ``tokens`` (issue/validate) and ``auth``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from pocketstack.common.db import Database
from pocketstack.config import Settings
from pocketstack.identity import models as m
from pocketstack.identity.revocation import RevocationEvent, RevocationList
from pocketstack.identity.service.assignment import AssignmentService
from pocketstack.identity.service.auth import AuthService
from pocketstack.identity.service.catalog import CatalogService
from pocketstack.identity.service.credentials import (
    ApplicationCredentialService,
    CredentialCipher,
    CredentialService,
)
from pocketstack.identity.service.resource import ResourceService
from pocketstack.identity.service.tokens import TokenService
from pocketstack.identity.service.users import UserService
from pocketstack.identity.tokens import FernetKeyRepository, TokenFormatter

LOG = logging.getLogger(__name__)
MIGRATIONS = "pocketstack.identity:migrations"
VERSION_TABLE = "alembic_version_identity"
KEY_CHECK_INTERVAL = 2.0


class Identity:
    def __init__(self, settings: Settings, db: Database, *, token_keys: FernetKeyRepository,
                 credential_keys: FernetKeyRepository) -> None:
        self.settings = settings
        self.db = db
        self.token_keys = token_keys
        self.credential_keys = credential_keys
        self._generation = itertools.count(1)
        self.generation = 0
        self._revocation_lock = threading.Lock()
        self._last_event_id = 0
        lifetime = timedelta(seconds=settings.identity.token_expiration
                             + settings.identity.allow_expired_window)
        self.revocations = RevocationList(max_token_lifetime=lifetime)
        self.admin_project_id: str | None = None
        self.resource = ResourceService(self)
        self.users = UserService(self)
        self.assignments = AssignmentService(self)
        self.catalog = CatalogService(self)
        self.credentials = CredentialService(self, CredentialCipher(credential_keys.load_keys()))
        self.app_creds = ApplicationCredentialService(self)
        self.tokens = TokenService(self, TokenFormatter.from_repository(token_keys))
        self.auth = AuthService(self)
        self._keys_seen = self._keys_stamp()
        self._keys_checked = time.monotonic()

    def load(self) -> None:
        """Read what lives beside the tables: revocation events, the admin project."""
        self.sync_revocations()
        with self.db.session() as s:
            self.admin_project_id = s.scalar(select(m.Project.id).where(
                m.Project.name == self.settings.admin_project, m.Project.domain_id == "default"))

    def changed(self) -> None:
        """Something identity-wide changed: cached scopes and catalogs are stale."""
        self.generation = next(self._generation)

    # -- revocation ----------------------------------------------------------------------------
    def revoke(self, **fields: Any) -> None:
        """Revoke every token issued until now that matches all the fields given."""
        now = datetime.now(UTC)
        event = RevocationEvent(issued_before=now, revoked_at=now, **fields)
        with self.db.session() as s:
            row = m.RevocationEventRow(issued_before=now.replace(tzinfo=None),
                                       revoked_at=now.replace(tzinfo=None), **fields)
            s.add(row)
        self.revocations.add(event)
        self.changed()

    def sync_revocations(self) -> int:
        """Pick up events written since the last look (by this or another process)."""
        with self._revocation_lock, self.db.session() as s:
            rows = list(s.scalars(select(m.RevocationEventRow)
                                  .where(m.RevocationEventRow.id > self._last_event_id)
                                  .order_by(m.RevocationEventRow.id)))
            for row in rows:
                self.revocations.add(_event(row))
                self._last_event_id = row.id
        if rows:
            self.changed()
        return len(rows)

    def prune_revocations(self) -> int:
        now = datetime.now(UTC)
        dropped = self.revocations.prune(now)
        horizon = (now - self.revocations.max_token_lifetime).replace(tzinfo=None)
        with self.db.session() as s:
            s.execute(delete(m.RevocationEventRow)
                      .where(m.RevocationEventRow.issued_before < horizon))
        return dropped

    # -- keys ----------------------------------------------------------------------------------
    def reload_keys_if_rotated(self) -> bool:
        """Pick up a rotation done by ``pocketstack admin rotate-keys`` in another process."""
        now = time.monotonic()
        if now - self._keys_checked < KEY_CHECK_INTERVAL:
            return False
        self._keys_checked = now
        stamp = self._keys_stamp()
        if stamp == self._keys_seen:
            return False
        self._keys_seen = stamp
        self.tokens.formatter = TokenFormatter.from_repository(self.token_keys)
        LOG.info("token keys reloaded: %s", self.token_keys.key_numbers())
        return True

    def _keys_stamp(self) -> tuple[int, ...]:
        return tuple(self.token_keys.key_numbers())


def _event(row: m.RevocationEventRow) -> RevocationEvent:
    return RevocationEvent(
        issued_before=row.issued_before.replace(tzinfo=UTC),
        revoked_at=row.revoked_at.replace(tzinfo=UTC), user_id=row.user_id,
        project_id=row.project_id, domain_id=row.domain_id, role_id=row.role_id,
        audit_id=row.audit_id, audit_chain_id=row.audit_chain_id)
