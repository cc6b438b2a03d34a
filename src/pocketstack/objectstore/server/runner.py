"""Running a storage node: ``pocketstack storage-node --devices DIR --bind IP:PORT``.

The node needs the cluster's hash-path secret (every directory name on its devices
depends on it): ``[objectstore] hash_path_prefix``/``hash_path_suffix`` from the config,
else ``<rings>/hash_path.json`` as `objectstore.runtime` writes it on the first host
(copy the rings dir to each storage host, as Swift's swift.conf and ring files). A storage
node never invents a secret: without one it refuses to start.

`serve` runs uvicorn on the bind address until SIGTERM or SIGINT, then closes the
node. The storage-side daemons (replicator, auditor) become tasks of `serve`.
`running` serves a node inside the current loop instead (tests, several nodes in one
process), on a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from pocketstack.config import Settings
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.runtime import SECRET_FILE, ring_dir
from pocketstack.objectstore.server import create_app
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
        devices, host, port, read_hasher(settings, rings), conf.fsync, conf.chunk_size
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (`serve` stops it, and exits 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(options: StorageNodeOptions) -> None:
    """Serve the devices until SIGTERM/SIGINT; close the node afterwards."""
    node = LocalNode(
        options.devices, hasher=options.hasher, fsync=options.fsync, chunk_size=options.chunk_size
    )
    app = create_app(node, access_log=options.access_log)
    server = _Server(_uvicorn_config(app, options.host, options.port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, server)
    try:
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await node.close()
    if not server.started:
        raise SetupError(f"cannot serve on {options.host}:{options.port}")


def _uvicorn_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """Idle connections live longer here than in RemoteNode's pool (KEEPALIVE_EXPIRY),
    so a client never reuses a connection the server is closing at that moment."""
    return uvicorn.Config(
        app, host=host, port=port, loop="none", http="httptools", lifespan="off",
        log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=5,
        timeout_keep_alive=SERVER_KEEPALIVE,
    )  # fmt: skip


def running(
    node: LocalNode, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False
) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve ``node`` in this loop while the block runs; yields its base URL."""
    return running_app(create_app(node, access_log=access_log), host=host, port=port)


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
