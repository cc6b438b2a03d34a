"""Shared fixtures of the storage-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocketstack.objectstore.hashing import PathHasher


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
