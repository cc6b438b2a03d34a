"""Fixtures of the object storage integration tests (helpers live in :mod:`support`).

Everything runs on the session ``cloud`` (one per xdist worker) with unique container names;
tests that break or reconfigure a cloud start their own with ``start_cloud``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from swiftclient.client import Connection
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import (
    Keystone,
    Persona,
    Swift,
    admin_connection,
    unexpected_tracebacks,
    uniq,
)


@pytest.fixture(autouse=True)
def no_server_tracebacks(cloud: RunningCloud) -> Iterator[None]:
    """Every test on the session cloud leaves no unexpected traceback in its log."""
    assert cloud.log_path is not None
    start = cloud.log_path.stat().st_size
    yield
    with cloud.log_path.open("rb") as log:
        log.seek(start)
        new = log.read().decode("utf-8", "replace")
    assert unexpected_tracebacks(new) == [], new[-5000:]


@pytest.fixture(scope="session")
def keystone(cloud: RunningCloud) -> Iterator[Keystone]:
    client = Keystone(cloud)
    yield client
    client.close()


@pytest.fixture(scope="session")
def admin_project_id(keystone: Keystone) -> str:
    projects = keystone.http.get("/projects", params={"name": "admin"}).json()["projects"]
    return str(projects[0]["id"])


@pytest.fixture(scope="session")
def swift(cloud: RunningCloud, admin_project_id: str) -> Iterator[Swift]:
    """Raw HTTP on the admin project's account, with the admin's token."""
    client = Swift(cloud.objectstore_url, f"AUTH_{admin_project_id}", cloud.admin_token())
    yield client
    client.close()


@pytest.fixture
def conn(cloud: RunningCloud) -> Iterator[Connection]:
    """python-swiftclient as the admin, authenticated with Keystone v3."""
    connection = admin_connection(cloud)
    yield connection
    connection.close()


@pytest.fixture
def owner(keystone: Keystone) -> Persona:
    """A fresh project with a member user (owner of its account)."""
    return keystone.persona("member")


@pytest.fixture
def container(swift: Swift) -> str:
    """A new, empty container on the admin account."""
    return swift.container(uniq())
