"""Running a storage node: ``pocketstack storage-node --devices DIR --bind IP:PORT``.

The node needs the cluster's hash-path secret (every directory name on its devices
depends on it): ``[objectstore] hash_path_prefix``/``hash_path_suffix`` from the config,
else ``<rings>/hash_path.json`` as `objectstore.runtime` writes it on the first host
(copy the rings dir to each storage host, as Swift's swift.conf and ring files). A storage
node never invents a secret: without one it refuses to start.

`serve` runs uvicorn on the bind address until SIGTERM or SIGINT, then closes the
node. With the cluster's rings (``--rings``, default ``<data_dir>/rings``) the node also
runs its storage daemons (`daemons.service`: replicator, auditor, updater), which reach
their peers through `daemons.cluster.Peers` (a RemoteNode per other storage node), save
their stats to ``<devices>/recon.json`` and answer ``/recon``; without rings it only
serves. `running` serves a node inside the current loop instead (tests, several nodes in
one process), on a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from pocketstack.config import ObjectStoreSettings, Settings
from pocketstack.objectstore.daemons.cluster import Cluster, Peers, load_rings
from pocketstack.objectstore.daemons.recon import RECON_FILE
from pocketstack.objectstore.daemons.service import StorageDaemons
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.runtime import SECRET_FILE, ring_dir
from pocketstack.objectstore.server import Recon, create_app
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.remote_node import KEEPALIVE_EXPIRY

LOG = logging.getLogger(__name__)
SERVER_KEEPALIVE: Final = int(2 * KEEPALIVE_EXPIRY)


class SetupError(Exception):
    """The storage node cannot start (bad bind address, no hash-path secret)."""


@dataclass(frozen=True)
class StorageNodeOptions:
    devices: Path
    host: str
    port: int
    hasher: PathHasher
    fsync: bool = True
    chunk_size: int = 65536
    access_log: bool = True
    rings: Path | None = None
    """The cluster's rings: the daemons run when they are there."""
    conf: ObjectStoreSettings = field(
        default_factory=lambda: ObjectStoreSettings.model_validate({})
    )


def parse_bind(bind: str) -> tuple[str, int]:
    """``"10.0.0.5:6200"`` or ``"[::1]:6200"`` -> (host, port)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SetupError(f"--bind wants IP:PORT, got {bind!r}")
    return host.strip("[]"), int(port)


def read_hasher(settings: Settings, rings: Path | None = None) -> PathHasher:
    """The cluster's secret: config first, else ``<rings>/hash_path.json`` (never made)."""
    conf = settings.objectstore
    if conf.hash_path_prefix or conf.hash_path_suffix:
        return PathHasher(conf.hash_path_prefix.encode(), conf.hash_path_suffix.encode())
    path = (rings or ring_dir(settings)) / SECRET_FILE
    try:
        data = json.loads(path.read_text())
        return PathHasher(data["prefix"].encode(), data["suffix"].encode())
    except FileNotFoundError as exc:
        raise SetupError(
            f"no hash-path secret: copy {SECRET_FILE} from the cluster's rings dir to "
            f"{path.parent} (or pass --rings), or set [objectstore] hash_path_prefix/suffix"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SetupError(f"unreadable hash-path secret {path}: {exc}") from exc


def options_from(
    settings: Settings, *, devices: Path, bind: str, rings: Path | None = None
) -> StorageNodeOptions:
    if not devices.is_dir():
        raise SetupError(f"--devices {devices} is not a directory")
    host, port = parse_bind(bind)
    conf = settings.objectstore
    return StorageNodeOptions(
        devices, host, port, read_hasher(settings, rings), conf.fsync, conf.chunk_size,
        rings=rings or ring_dir(settings), conf=conf,
    )  # fmt: skip


def storage_daemons(
    options: StorageNodeOptions, node: LocalNode
) -> tuple[StorageDaemons, Peers] | None:
    """The node's daemons over the cluster's rings; None (logged) without rings."""
    if options.rings is None or not (options.rings / "container.ring").exists():
        LOG.warning("no rings in %s: this storage node runs no replicator, auditor or "
                    "updater", options.rings)  # fmt: skip
        return None
    conf = options.conf
    peers = Peers(node, options.host, options.port, timeout=conf.node_timeout)
    account, container, objects = load_rings(options.rings, options.hasher)
    cluster = Cluster(node, account, container, objects, peers.node_for, conf.node_timeout)
    daemons = StorageDaemons(
        cluster, conf, recon_path=options.devices / RECON_FILE,
        host=f"{options.host}:{options.port}",
    )  # fmt: skip
    return daemons, peers


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (`serve` stops it, and exits 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(options: StorageNodeOptions) -> None:
    """Serve the devices until SIGTERM/SIGINT; close the node afterwards."""
    node = LocalNode(
        options.devices, hasher=options.hasher, fsync=options.fsync,
        chunk_size=options.chunk_size, reclaim_age=options.conf.reclaim_age,
        read_threads=options.conf.read_threads, io_threads=options.conf.io_threads,
    )  # fmt: skip
    running_daemons = storage_daemons(options, node)
    daemons = running_daemons[0] if running_daemons else None
    app = create_app(node, access_log=options.access_log, recon=daemons)
    server = _Server(_uvicorn_config(app, options.host, options.port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, server)
    try:
        if daemons is not None:
            daemons.start()
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if running_daemons is not None:
            await running_daemons[0].close()
            await running_daemons[1].close()
        await node.close()
    if not server.started:
        raise SetupError(f"cannot serve on {options.host}:{options.port}")


def _uvicorn_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """Idle connections live longer here than in RemoteNode's pool (KEEPALIVE_EXPIRY),
    so a client never reuses a connection the server is closing at that moment."""
    return uvicorn.Config(
        app, host=host, port=port, loop="none", http="httptools", lifespan="off",
        log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=5,
        timeout_keep_alive=SERVER_KEEPALIVE, proxy_headers=False,
    )  # fmt: skip


def running(
    node: LocalNode,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    access_log: bool = False,
    recon: Recon | None = None,
) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve ``node`` (and ``recon``, its daemons) in this loop while the block runs;
    yields its base URL."""
    app = create_app(node, access_log=access_log, recon=recon)
    return running_app(app, host=host, port=port)


@contextlib.asynccontextmanager
async def running_app(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve any ASGI ``app`` as `running` does (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio: NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = _Server(_uvicorn_config(app, host, port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise SetupError(f"storage node on {host}:{port} did not start")
            await asyncio.sleep(0.001)
        bound = sock.getsockname()[1]
        yield f"http://[{host}]:{bound}" if family == socket.AF_INET6 else f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _stop(server: uvicorn.Server) -> None:
    LOG.info("storage node shutting down")
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True
