"""The whole cloud in one process: prepare state, then serve every enabled service.

``Cloud.prepare`` (blocking) creates the data dir, migrates the control database, makes
keys, bootstraps identity and the catalog, and writes ``clouds.yaml``; ``Cloud.run``
serves each service's app on its own port with uvicorn, all on one asyncio loop, plus the
background tasks, until SIGINT/SIGTERM (with ``[objectstore] workers`` > 1, forked
processes serve the object storage port too: `pocketstack.workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
import yaml
from starlette.types import ASGIApp

from pocketstack.common import eventloop
from pocketstack.common.db import Database
from pocketstack.common.files import atomic_write
from pocketstack.config import Settings, render_toml
from pocketstack.identity import runtime as identity_runtime
from pocketstack.identity.middleware import LocalValidator
from pocketstack.identity.service.bootstrap import CatalogEntry
from pocketstack.workers import Workers, reuse_port_socket

if TYPE_CHECKING:
    from pocketstack.image.runtime import ImageRuntime
    from pocketstack.objectstore.runtime import ObjectStoreRuntime

LOG = logging.getLogger(__name__)
CLOUD_NAME = "pocketstack"
SHUTDOWN_TIMEOUT = 10.0


@dataclass
class Started:
    """What ``prepare`` did, for the CLI to tell the user."""

    first_start: bool
    admin_password: str | None
    generated_password: bool
    clouds_yaml: Path | None
    endpoints: dict[str, str] = field(default_factory=dict)


@dataclass
class Service:
    name: str
    app: ASGIApp
    port: int
    http: type[asyncio.Protocol] | str = "httptools"


class Cloud:
    def __init__(self, settings: Settings, *, clouds_yaml: Path | None = None) -> None:
        self.settings = settings
        self.clouds_yaml = clouds_yaml
        self.db: Database | None = None
        self.services: list[Service] = []
        self.identity: identity_runtime.IdentityRuntime | None = None
        self.objectstore: ObjectStoreRuntime | None = None
        self.image: ImageRuntime | None = None
        self._deferred = False  # object storage and image still to prepare (see `prepare`)

    # -- prepare -------------------------------------------------------------------------------
    def prepare(self, *, identity_first: bool = False) -> Started:
        """Migrate, bootstrap and build every enabled service. ``identity_first``: build
        identity only, and only its token route: its FastAPI routes, object storage and
        image are then prepared by `serve`, in a thread while identity already answers
        tokens (a first token's bcrypt check, a quarter of a second of CPU that releases
        the GIL, overlaps the rest of the start)."""
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
        self.db = Database(settings.database_url, echo=settings.database.echo)
        password = (settings.admin_password.get_secret_value()
                    if settings.admin_password else None)
        generated = False
        first = True
        if settings.identity.enabled:
            self.db.migrate(identity_runtime.MIGRATIONS,
                            version_table=identity_runtime.VERSION_TABLE)
            first = not identity_runtime.admin_exists(self.db, settings)
            if first and password is None:
                password, generated = secrets.token_urlsafe(18), True
            self.identity = identity_runtime.build(
                settings, self.db, admin_password=password, catalog=self.catalog(),
                access_log=settings.access_log, defer_routes=identity_first)
            self.services.append(Service("identity", self.identity.app, self.identity.port))
        self._check_services()
        if identity_first and self.identity is not None:
            self._deferred = True
        else:
            self.prepare_services()
        written = self._write_clouds_yaml(password) if settings.identity.enabled else None
        ports = {"identity": (settings.identity.enabled, settings.identity.port),
                 "object-store": (settings.objectstore.enabled, settings.objectstore.port),
                 "image": (settings.image.enabled, settings.image.port)}
        endpoints = {name: settings.url_for(port) for name, (on, port) in ports.items() if on}
        return Started(first, password, generated, written, endpoints)

    def _check_services(self) -> None:
        settings = self.settings
        if settings.objectstore.enabled and self.identity is None:
            raise ValueError("object storage needs the identity service in this process")
        if settings.image.enabled:
            if self.identity is None:
                raise ValueError("the image service needs the identity service in this "
                                 "process")
            if settings.image.store == "swift" and not settings.objectstore.enabled:
                raise ValueError("the image service's swift store needs object storage "
                                 "(or set [image] store = \"file\")")

    def prepare_services(self) -> None:
        """Build object storage and the image service (their modules are imported here,
        not with this one: `pocketstack up` with a service disabled never loads it)."""
        from pocketstack.objectstore import runtime as objectstore_runtime

        settings = self.settings
        if settings.objectstore.enabled:
            assert self.identity is not None
            validator = LocalValidator(self.identity.identity)
            self.objectstore = objectstore_runtime.build(settings, validator,
                                                         access_log=settings.access_log)
            self.services.append(Service("object-store", self.objectstore.app,
                                         self.objectstore.port,
                                         http=self.objectstore.http_protocol))
        if settings.image.enabled:
            from pocketstack.image import runtime as image_runtime

            assert self.identity is not None and self.db is not None
            self.image = image_runtime.build(
                settings, self.db, LocalValidator(self.identity.identity),
                identity=self.identity.identity, access_log=settings.access_log)
            self.services.append(Service("image", self.image.app, self.image.port))

    def catalog(self) -> list[CatalogEntry]:
        """Catalog entries of the services this cloud runs."""
        entries = []
        if self.settings.identity.enabled:
            entries.append(CatalogEntry("identity", "keystone", "Identity Service",
                                        self.settings.url_for(self.settings.identity.port,
                                                              "/v3/")))
        if self.settings.objectstore.enabled:
            entries.append(CatalogEntry("object-store", "swift", "Object Storage Service",
                                        self.settings.url_for(self.settings.objectstore.port,
                                                              "/v1/AUTH_%(project_id)s")))
        if self.settings.image.enabled:
            entries.append(CatalogEntry("image", "glance", "Image Service",
                                        self.settings.url_for(self.settings.image.port)))
        return entries

    def _write_clouds_yaml(self, password: str | None) -> Path:
        path = self.clouds_yaml or default_clouds_yaml()
        write_clouds_yaml(path, self.settings, password)
        return path

    # -- serve ---------------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until SIGINT/SIGTERM. With ``[objectstore] workers`` = N > 1, first fork
        a supervisor and, under it, N - 1 processes that serve the object storage API too
        (`pocketstack.workers`): this process keeps identity, image, the background
        daemons and one share of the object storage connections; each worker only
        proxies object requests."""
        conf = self.settings.objectstore
        if self._deferred and conf.workers > 1:  # the workers fork with everything built
            if self.identity is not None and self.identity.routes is not None:
                self.identity.routes.set(self.identity.build_routes())
            self.prepare_services()
            self._deferred = False
        extra = conf.workers - 1 if self.objectstore is not None else 0
        if extra <= 0:
            eventloop.run(self.serve())
            return
        assert self.objectstore is not None
        sock = reuse_port_socket(self.settings.host, self.objectstore.port)
        self.objectstore.port = sock.getsockname()[1]
        self.objectstore.ctx.info.share_generation()  # see InfoCache: writes seen by all
        # the workers bind sockets of their own: the kernel balances between sockets
        workers = Workers(self._run_worker, inherited=[sock], grace=SHUTDOWN_TIMEOUT)
        workers.spawn(extra)
        try:
            eventloop.run(self.serve(object_socket=sock, workers=workers))
        finally:
            workers.stop()
            sock.close()

    def _run_worker(self, number: int) -> int:
        """A forked object storage worker (see `run`), until SIGTERM/SIGINT."""
        assert self.objectstore is not None
        if self.db is not None:
            self.db.engine.dispose(close=False)  # the parent's pooled connections stay its own
        sock = reuse_port_socket(self.settings.host, self.objectstore.port)
        LOG.info("object storage worker %d: pid %d", number, os.getpid())
        eventloop.run(self._serve_worker(sock))
        return 0

    async def _serve_worker(self, sock: socket.socket) -> None:
        assert self.objectstore is not None
        gc.freeze()  # as `serve` does: the parent's startup objects, inherited by the fork
        gc.enable()
        server = self._server(Service("object-store", self.objectstore.app,
                                      self.objectstore.port, self.objectstore.http_protocol))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _stop_all, [server])
        if self.identity is not None:
            self.identity.start_tasks()  # revocations made through other processes
        self.objectstore.start_tasks(daemons=False)
        try:
            await server.serve(sockets=[sock])
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await asyncio.wait_for(self._stop_tasks(image=False), SHUTDOWN_TIMEOUT)
            if self.db is not None:
                self.db.close()

    def _server(self, service: Service) -> _Server:
        # ws="none": the APIs speak no WebSocket, and uvicorn's default loads the websockets
        # package (a hundredth of a second of the start) to refuse the upgrade.
        # proxy_headers=False: the client address is the socket's peer, as Swift's and
        # Keystone's REMOTE_ADDR; uvicorn's default believes X-Forwarded-For from loopback,
        # which let a local client pick the address a TempURL's ip range is checked against.
        return _Server(uvicorn.Config(
            service.app, host=self.settings.host, port=service.port, loop="none",
            http=service.http, ws="none", lifespan="off", log_config=None, access_log=False,
            server_header=False, date_header=True, timeout_graceful_shutdown=5,
            proxy_headers=False))

    async def serve(self, *, object_socket: socket.socket | None = None,
                    workers: Workers | None = None) -> None:
        loop = asyncio.get_running_loop()
        servers: list[_Server] = []
        running: list[asyncio.Task[None]] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _stop_all, servers)  # sees servers added later
        watch = asyncio.create_task(_watch_workers(workers)) if workers else None
        try:
            self._start_servers(self.services, servers, running, object_socket)
            if self.identity is not None:
                self.identity.start_tasks()
            if self._deferred:
                await self._prepare_the_rest(servers, running)
            if self.objectstore is not None:
                self.objectstore.start_tasks()
            # What startup built lives as long as the process: out of the collector's
            # sight, a full collection scans only what requests create (a 10 000-row
            # listing triggered collections of ~150 000 startup objects, a third of its CPU).
            gc.freeze()
            gc.enable()  # off since `pocketstack up` started (cli.up): nothing to collect
            await asyncio.gather(*running)
        finally:
            for server in servers:  # after a failed start, identity may be serving already
                server.should_exit = True
            await asyncio.gather(*running, return_exceptions=True)
            if watch is not None:
                watch.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            try:
                await asyncio.wait_for(self._stop_tasks(), SHUTDOWN_TIMEOUT)
            except TimeoutError:
                LOG.error("background work did not stop within %ss: %s", SHUTDOWN_TIMEOUT,
                          [t.get_name() for t in asyncio.all_tasks() if not t.done()])
            if self.db is not None:
                self.db.close()
            LOG.info("stopped")

    def _start_servers(self, services: list[Service], servers: list[_Server],
                       running: list[asyncio.Task[None]],
                       object_socket: socket.socket | None = None) -> None:
        for service in services:
            server = self._server(service)
            sockets = ([object_socket] if object_socket is not None
                       and service.name == "object-store" else None)
            servers.append(server)
            running.append(asyncio.create_task(server.serve(sockets=sockets),
                                               name=f"serve {service.name}"))

    async def _prepare_the_rest(self, servers: list[_Server],
                                running: list[asyncio.Task[None]]) -> None:
        """Identity's FastAPI routes, then object storage and image, prepared in a thread
        while identity serves tokens; their servers start unless a signal stopped the
        cloud meanwhile."""
        built = len(self.services)
        pending = self.identity.routes if self.identity is not None else None
        if pending is not None and self.identity is not None:
            try:
                routes = await asyncio.to_thread(self.identity.build_routes)
            except BaseException as exc:
                pending.fail(exc)  # requests waiting for them fail; the cloud stops
                raise
            pending.set(routes)
        await asyncio.to_thread(self.prepare_services)
        self._deferred = False
        if not any(server.should_exit for server in servers):
            self._start_servers(self.services[built:], servers, running)

    async def _stop_tasks(self, *, image: bool = True) -> None:
        LOG.info("stopping background tasks")
        tasks = self.identity.tasks if self.identity else []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if image and self.image is not None:
            await self.image.close()
        if self.objectstore is not None:
            await self.objectstore.close()


async def _watch_workers(workers: Workers) -> None:
    """Tell about a supervisor that died (its workers die with it; their share of new
    connections goes to this process, since their sockets closed with them). A worker
    that dies is replaced by the supervisor."""
    while workers.pids:
        await asyncio.sleep(1.0)
        for _, code in workers.reap():
            LOG.error("the object storage workers' supervisor exited (status %d): this "
                      "process serves alone", code)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the cloud (several servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _stop_all(servers: list[_Server]) -> None:
    LOG.info("shutting down")
    for server in servers:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True


def default_clouds_yaml() -> Path:
    """Where the OpenStack clients look first: ``~/.config/openstack/clouds.yaml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "openstack" / "clouds.yaml"


def write_clouds_yaml(path: Path, settings: Settings, password: str | None) -> None:
    """Add or refresh the ``pocketstack`` entry, keeping every other cloud in the file."""
    data: dict[str, object] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        data = loaded if isinstance(loaded, dict) else {}
    clouds = data.setdefault("clouds", {})
    assert isinstance(clouds, dict)
    previous = clouds.get(CLOUD_NAME) or {}
    old_password = (previous.get("auth") or {}).get("password")
    auth = {"auth_url": settings.url_for(settings.identity.port, "/v3"),
            "username": settings.admin_user, "project_name": settings.admin_project,
            "user_domain_name": "Default", "project_domain_name": "Default"}
    if password or old_password:
        auth["password"] = password or old_password
    clouds[CLOUD_NAME] = {"auth": auth, "region_name": settings.region,
                          "interface": "public", "identity_api_version": 3}
    atomic_write(path, yaml.safe_dump(data, sort_keys=False).encode(), mode=0o600)


def write_default_config(path: Path, settings: Settings) -> None:
    if not path.exists():
        atomic_write(path, render_toml(settings).encode(), mode=0o600)
