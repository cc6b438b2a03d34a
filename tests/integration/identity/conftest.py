"""Fixtures of the identity integration tests (helpers live in :mod:`support`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api


@pytest.fixture(scope="session")
def api(cloud: RunningCloud) -> Iterator[Api]:
    """The cloud admin (project-scoped to ``admin``, as the CLI's clouds.yaml entry is)."""
    client = Api(cloud, cloud.admin_token())
    yield client
    client.close()
