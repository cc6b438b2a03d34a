"""Assembling the image service for ``cloud.py``: schema, service user, stores, app.

First start (and every start, idempotently) makes what the image service needs from the
cloud, as ``devstack`` does for Glance: a ``service`` project, the ``glance`` user in it with
the ``member`` and ``service`` roles (``member`` owns the project's object storage account
under Swift's keystoneauth rules), and the user's password in
``<data_dir>/image/service-user.json`` (mode 0600; it is never logged). This is the only
place the image package uses identity's Python API; at run time it talks to identity and
object storage over HTTP like any other client.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp

from pocketstack.common.db import Database
from pocketstack.common.files import atomic_write
from pocketstack.common.policy import PolicyEngine, load_overrides
from pocketstack.common.verified import VerifiedPasswords
from pocketstack.config import Settings
from pocketstack.identity.exceptions import NotFound as IdentityNotFound
from pocketstack.identity.middleware import TokenValidator
from pocketstack.identity.runtime import stored_password
from pocketstack.identity.service.assignment import Actor, Target
from pocketstack.identity.service.hub import Identity
from pocketstack.image.api.app import create_app
from pocketstack.image.policies import RULES
from pocketstack.image.service.hub import MIGRATIONS, VERSION_TABLE, ImageHub
from pocketstack.image.store import (
    FileStore,
    LazyClient,
    ServiceAuth,
    ServiceCredentials,
    Store,
    SwiftStore,
)

LOG = logging.getLogger(__name__)
SERVICE_ROLES = ("member", "service")
DEFAULT_DOMAIN = "default"


def image_dir(settings: Settings) -> Path:
    return settings.data_dir / "image"


def policy_engine(settings: Settings) -> PolicyEngine:
    overrides = None
    if settings.image.policy_file:
        overrides = load_overrides(Path(settings.image.policy_file))
    return PolicyEngine(RULES, overrides=overrides)


@dataclass
class ImageRuntime:
    hub: ImageHub
    app: ASGIApp
    port: int

    def start_tasks(self) -> None:
        """Nothing runs in the background until an import starts one."""

    async def close(self) -> None:
        await self.hub.close()


def service_password(settings: Settings) -> str:
    """The service user's password: read from the data dir, or made once and kept there."""
    path = image_dir(settings) / "service-user.json"
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("user") == settings.image.service_user and data.get("password"):
            return str(data["password"])
    password = secrets.token_urlsafe(24)
    record = {"user": settings.image.service_user, "domain": "Default",
              "project": settings.image.service_project, "password": password}
    atomic_write(path, json.dumps(record, indent=2).encode(), mode=0o600)
    return password


def ensure_service_user(identity: Identity, settings: Settings, password: str) -> None:
    """The service project, the image service's user and its roles there (idempotent)."""
    conf = settings.image
    try:
        project_id = identity.resource.find_project(conf.service_project, DEFAULT_DOMAIN)["id"]
    except IdentityNotFound:
        project_id = identity.resource.create_project(
            {"name": conf.service_project, "domain_id": DEFAULT_DOMAIN,
             "description": "Project of the cloud's service users."})["id"]
    verified = VerifiedPasswords.of(settings.data_dir)
    try:
        user_id = identity.users.find_user(conf.service_user, DEFAULT_DOMAIN)["id"]
    except IdentityNotFound:
        user_id = identity.users.create_user({"name": conf.service_user,
                                              "domain_id": DEFAULT_DOMAIN,
                                              "password": password})["id"]
        verified.remember(*_stored(identity, user_id), password)
    else:
        # a restart with the same password and stored hash skips bcrypt (`verified`)
        if not verified.known(*_stored(identity, user_id), password):
            if not identity.users.verify_password(user_id, password):
                identity.users.update_user(user_id, {"password": password, "enabled": True})
            verified.remember(*_stored(identity, user_id), password)
    for role in SERVICE_ROLES:
        role_id = identity.assignments.find_role(role)["id"]
        identity.assignments.create_grant(role_id, Actor(user_id=user_id),
                                          Target(project_id=project_id))


def _stored(identity: Identity, user_id: str) -> tuple[str, str | None]:
    return stored_password(identity.db, user_id=user_id) or (user_id, None)


def build_store(settings: Settings, password: str) -> Store:
    conf = settings.image
    if conf.store == "file":
        return FileStore(image_dir(settings) / "images", chunk_size=conf.chunk_size)
    http = LazyClient(conf.store_timeout)
    credentials = ServiceCredentials(
        auth_url=conf.auth_url or settings.url_for(settings.identity.port, "/v3"),
        user_name=conf.service_user, password=password, project_name=conf.service_project)
    auth = ServiceAuth(credentials, http, region=conf.region or settings.region)
    return SwiftStore(auth, http, container=conf.swift_container, chunk_size=conf.chunk_size)


def build(settings: Settings, db: Database, validator: TokenValidator, *,
          identity: Identity | None, access_log: bool = True) -> ImageRuntime:
    """Migrate, make the service user (when identity runs here), stores, and the app."""
    db.migrate(MIGRATIONS, version_table=VERSION_TABLE)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the access logs say it all
    password = service_password(settings)
    if identity is not None:
        ensure_service_user(identity, settings, password)
    staging = FileStore(image_dir(settings) / "staging", name="staging",
                        chunk_size=settings.image.chunk_size)
    hub = ImageHub(settings.image, db, store=build_store(settings, password), staging=staging)
    hub.data.recover()
    app = create_app(hub, policy_engine(settings), validator,
                     auth_uri=settings.url_for(settings.identity.port),
                     access_log=access_log)
    return ImageRuntime(hub, app, settings.image.port)
