"""Fixtures of the image unit tests (helpers live in :mod:`helpers`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.image.helpers import make_hub

from pocketstack.image.service.hub import ImageHub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ImageHub]:
    image_hub = make_hub(tmp_path)
    yield image_hub
    image_hub.db.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
