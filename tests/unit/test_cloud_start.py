"""`Cloud.serve` with identity first: identity answers tokens while the rest (its FastAPI
routes, object storage, image) is prepared, and a failure in that preparation stops
everything instead of leaving identity serving alone."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

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


def token_request(port: int) -> httpx.Response:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "secret-pw"}}}}}
    return httpx.post(f"http://127.0.0.1:{port}/v3/auth/tokens", json=body, timeout=10)


def test_tokens_are_answered_before_the_other_routes_are_built(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.prepare(identity_first=True)
    assert cloud.identity is not None and cloud.identity.routes is not None
    port = cloud.settings.identity.port
    waiting: list[int] = []
    build_routes = cloud.identity.build_routes
    discovery = threading.Thread(target=lambda: waiting.append(
        httpx.get(f"http://127.0.0.1:{port}/v3", timeout=10).status_code))

    def build_after_a_token() -> Any:
        assert token_request(port).status_code == 201
        discovery.start()
        time.sleep(0.3)
        assert waiting == []  # the version document waits for the FastAPI routes
        return build_routes()

    def prepare_then_stop() -> None:
        discovery.join(10)
        assert waiting == [200]
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cloud.identity, "build_routes", build_after_a_token)
    monkeypatch.setattr(cloud, "prepare_services", prepare_then_stop)
    asyncio.run(cloud.serve())
    assert waiting == [200]


def test_requests_waiting_for_routes_that_fail_to_build_fail(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.prepare(identity_first=True)
    assert cloud.identity is not None
    port = cloud.settings.identity.port
    waiting: list[int] = []
    discovery = threading.Thread(target=lambda: waiting.append(
        httpx.get(f"http://127.0.0.1:{port}/v3", timeout=10).status_code))

    def broken() -> Any:
        discovery.start()
        time.sleep(0.3)
        raise ImportError("no fastapi")

    monkeypatch.setattr(cloud.identity, "build_routes", broken)
    with pytest.raises(ImportError, match="no fastapi"):
        asyncio.run(cloud.serve())
    discovery.join(10)
    assert waiting == [500]  # answered in Keystone's format by the edge, then the stop


def test_fastapi_is_not_imported_before_identity_listens() -> None:
    """What `pocketstack up` imports to serve tokens leaves FastAPI out (a tenth of a
    second of the cold start: docs/performance.md)."""
    code = ("import sys; import pocketstack.cli, pocketstack.cloud, "
            "pocketstack.identity.runtime; print('fastapi' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
