"""Assembling the identity service for ``cloud.py``: keys, database, bootstrap, app, tasks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from starlette.types import ASGIApp

from pocketstack.common.db import Database
from pocketstack.common.http import PendingApp
from pocketstack.common.policy import PolicyEngine, load_overrides
from pocketstack.config import Settings
from pocketstack.identity import models as m
from pocketstack.identity.api.front import front
from pocketstack.identity.policies import RULES
from pocketstack.identity.service.bootstrap import CatalogEntry, bootstrap
from pocketstack.identity.service.hub import MIGRATIONS, VERSION_TABLE, Identity
from pocketstack.identity.tokens import FernetKeyRepository

LOG = logging.getLogger(__name__)
REVOCATION_SYNC_INTERVAL = 5.0
REVOCATION_PRUNE_INTERVAL = 3600.0


def token_key_repository(settings: Settings) -> FernetKeyRepository:
    return FernetKeyRepository(settings.data_dir / "keys" / "fernet",
                               max_active_keys=settings.identity.max_active_keys)


def credential_key_repository(settings: Settings) -> FernetKeyRepository:
    return FernetKeyRepository(settings.data_dir / "keys" / "credential",
                               max_active_keys=settings.identity.max_active_keys)


def policy_engine(settings: Settings) -> PolicyEngine:
    overrides = None
    if settings.identity.policy_file:
        overrides = load_overrides(Path(settings.identity.policy_file))
    return PolicyEngine(RULES, overrides=overrides)


@dataclass
class IdentityRuntime:
    identity: Identity
    app: ASGIApp
    port: int
    policy: PolicyEngine
    routes: PendingApp | None = None  # the FastAPI routes, when still to build
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def build_routes(self) -> ASGIApp:
        """The FastAPI routes that an app built with ``defer_routes`` waits for."""
        return fastapi_routes(self.identity, self.policy)

    def start_tasks(self) -> None:
        self.tasks.append(asyncio.create_task(self._sync_revocations(), name="revocations"))

    async def _sync_revocations(self) -> None:
        """Other processes (a second API worker, the CLI) may revoke tokens too."""
        since_prune = 0.0
        while True:
            await asyncio.sleep(REVOCATION_SYNC_INTERVAL)
            since_prune += REVOCATION_SYNC_INTERVAL
            try:
                await self.identity.db.run(self.identity.sync_revocations)
                if since_prune >= REVOCATION_PRUNE_INTERVAL:
                    since_prune = 0.0
                    await self.identity.db.run(self.identity.prune_revocations)
            except Exception:  # keep the task alive; the next round retries
                LOG.exception("revocation sync failed")


def admin_exists(db: Database, settings: Settings) -> bool:
    with db.session() as s:
        return s.scalar(select(m.User.id).where(m.User.name == settings.admin_user,
                                                m.User.domain_id == "default")) is not None


def stored_password(db: Database, *, user_id: str | None = None,
                    name: str | None = None) -> tuple[str, str | None] | None:
    """(user id, stored password hash) of a user of the default domain, by id or name."""
    query = select(m.User.id, m.User.password_hash)
    query = (query.where(m.User.id == user_id) if user_id is not None else
             query.where(m.User.name == name, m.User.domain_id == "default"))
    with db.session() as s:
        row = s.execute(query).first()
    return None if row is None else (row[0], row[1])


def build(settings: Settings, db: Database, *, admin_password: str | None,
          catalog: list[CatalogEntry], access_log: bool = True,
          defer_routes: bool = False) -> IdentityRuntime:
    """Migrate, make keys, bootstrap (idempotent) and build the app. ``defer_routes``:
    without its FastAPI routes yet, which the caller builds (`IdentityRuntime.build_routes`)
    and hands to ``routes``: until then the app answers token requests, and the others
    wait."""
    db.migrate(MIGRATIONS, version_table=VERSION_TABLE)
    tokens, credentials = token_key_repository(settings), credential_key_repository(settings)
    tokens.initialize()
    credentials.initialize()
    identity = Identity(settings, db, token_keys=tokens, credential_keys=credentials)
    bootstrap(identity, admin_password=admin_password, services=catalog)
    policy = policy_engine(settings)
    pending = PendingApp() if defer_routes else None
    routes = pending if pending is not None else fastapi_routes(identity, policy)
    app = front(routes, identity, policy, access_log=access_log)
    return IdentityRuntime(identity, app, settings.identity.port, policy, pending)


def fastapi_routes(identity: Identity, policy: PolicyEngine) -> ASGIApp:
    """Every identity route, in FastAPI (imported here: a tenth of a second and more of
    imports, which a deferred start spends in a thread while it already serves tokens)."""
    from pocketstack.identity.api.app import fastapi_app

    return fastapi_app(identity, policy)
