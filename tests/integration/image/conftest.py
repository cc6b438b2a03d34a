"""Fixtures of the image integration tests (helpers live in :mod:`support`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api
from tests.integration.image.support import Glance, Member, ServiceAccount, make_member


@pytest.fixture(scope="session")
def api(cloud: RunningCloud) -> Iterator[Api]:
    """Keystone as the cloud admin (to make projects and users)."""
    client = Api(cloud, cloud.admin_token())
    yield client
    client.close()


@pytest.fixture(scope="session")
def glance(cloud: RunningCloud) -> Iterator[Glance]:
    """Glance as the cloud admin (project ``admin``, as the CLI's clouds.yaml entry)."""
    client = Glance(cloud, cloud.admin_token())
    yield client
    client.close()


@pytest.fixture
def member(api: Api) -> Member:
    """A fresh project and a user with ``member`` on it."""
    return make_member(api)


@pytest.fixture
def member_glance(cloud: RunningCloud, member: Member) -> Iterator[Glance]:
    client = Glance(cloud, member.token)
    yield client
    client.close()


@pytest.fixture(scope="session")
def service_account(cloud: RunningCloud) -> Iterator[ServiceAccount]:
    account = ServiceAccount(cloud)
    yield account
    account.close()
