"""`Cloud.serve` with identity first: identity answers while the rest is prepared, and a
failure in that preparation stops everything instead of leaving identity serving alone."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest
from tests.ports import free_port

from pocketstack.cloud import Cloud
from pocketstack.config import load_settings


@pytest.fixture
def cloud(tmp_path: Path) -> Cloud:
    settings = load_settings(None, environ={}, overrides={
        "data_dir": tmp_path / "data", "admin_password": "secret-pw",
        "identity.port": free_port(), "objectstore.port": free_port(),
        "image.port": free_port(), "identity.bcrypt_rounds": 4})
    return Cloud(settings, clouds_yaml=tmp_path / "clouds.yaml")


def test_identity_answers_while_the_rest_is_prepared(cloud: Cloud,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.prepare(identity_first=True)
    assert cloud.identity is not None and cloud.objectstore is None and cloud.image is None
    port = cloud.settings.identity.port
    answered: list[int] = []
    prepare_rest = cloud.prepare_services

    def prepare_then_stop() -> None:
        answered.append(httpx.get(f"http://127.0.0.1:{port}/v3", timeout=10).status_code)
        prepare_rest()
        assert cloud.objectstore is not None and cloud.image is not None
        os.kill(os.getpid(), signal.SIGTERM)  # the cloud's handler: a clean stop

    monkeypatch.setattr(cloud, "prepare_services", prepare_then_stop)
    asyncio.run(cloud.serve())
    assert answered == [200]


def test_a_failure_after_identity_serves_stops_identity(cloud: Cloud,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.prepare(identity_first=True)
    port = cloud.settings.identity.port

    def broken() -> None:
        assert httpx.get(f"http://127.0.0.1:{port}/v3", timeout=10).status_code == 200
        raise ValueError("no object ring")

    monkeypatch.setattr(cloud, "prepare_services", broken)
    with pytest.raises(ValueError, match="no object ring"):
        asyncio.run(cloud.serve())
    with socket.socket() as sock:  # nothing listens on identity's port any more
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        sock.bind(("127.0.0.1", port))
