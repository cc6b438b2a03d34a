"""Shared fixtures of the storage-layer tests.

``node`` runs a test against every StorageNode implementation: ``local`` is a LocalNode,
``remote`` a RemoteNode talking over a real socket to a storage-node server (uvicorn, in
this process) that serves a LocalNode on the same devices. A module using it declares a
module-scoped ``anyio_backend`` (the server outlives a test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.server import create_app
from pocketstack.objectstore.server.runner import running_app
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.remote_node import RemoteNode


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hasher() -> PathHasher:
    return PathHasher(prefix=b"pre", suffix=b"suf")


@pytest.fixture
def devices(tmp_path: Path) -> Path:
    """A devices root with two devices, ``sda`` and ``sdb``."""
    root = tmp_path / "devices"
    (root / "sda").mkdir(parents=True)
    (root / "sdb").mkdir()
    return root


class Switch:
    """The module's one storage-node server serves each test's LocalNode in turn."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[tuple[Switch, str]]:
    switch = Switch()
    async with running_app(switch) as url:  # uvicorn, a real socket
        yield switch, url


@pytest.fixture(params=["local", "remote"])
async def node(
    request: pytest.FixtureRequest,
    devices: Path,
    hasher: PathHasher,
    server: tuple[Switch, str],
) -> AsyncIterator[StorageNode]:
    async with LocalNode(devices, hasher=hasher, fsync=False, chunk_size=1024) as local:
        if request.param == "local":
            yield local
            return
        switch, url = server
        switch.app = create_app(local, access_log=False)
        async with RemoteNode(url, timeout=30) as remote:
            yield remote
