"""obj_put: a small body is read whole before any replica is written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pocketstack.objectstore.exceptions import HTTPClientDisconnect, HTTPServiceUnavailable
from pocketstack.objectstore.proxy.controllers.obj_put import _whole
from pocketstack.objectstore.storage.exceptions import DiskFileQuarantined

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def failing(exc: Exception) -> AsyncIterator[bytes]:
    yield b"first"
    raise exc


async def test_the_pieces_are_joined() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"a", b"", b"bc"):
            yield piece

    assert await _whole(pieces()) == b"abc"


async def test_the_clients_failure_is_its_own() -> None:
    with pytest.raises(HTTPClientDisconnect):
        await _whole(failing(HTTPClientDisconnect()))


async def test_a_copy_source_that_fails_to_read_is_a_503() -> None:
    """As when every replica writer met the failure: no replica was written."""
    with pytest.raises(HTTPServiceUnavailable):
        await _whole(failing(DiskFileQuarantined("rotten")))
