"""`pocketstack up` options reach the settings the cloud is built with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pocketstack import cli
from pocketstack.config import Settings


class FakeCloud:
    """Stands for `cloud.Cloud`: keeps the settings, starts nothing."""

    seen: list[Settings] = []

    def __init__(self, settings: Settings, **_: Any) -> None:
        FakeCloud.seen.append(settings)

    def prepare(self, **_: Any) -> Any:
        raise ValueError("not starting in a unit test")


@pytest.fixture
def settings_of_up(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    import pocketstack.cloud

    FakeCloud.seen = []
    monkeypatch.setattr(pocketstack.cloud, "Cloud", FakeCloud)
    for name in ("POCKETSTACK_DATABASE__URL", "POCKETSTACK_OBJECTSTORE__DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return FakeCloud.seen


def test_database_url_option(settings_of_up: list[Settings], tmp_path: Path) -> None:
    url = "postgresql+psycopg://pocketstack:pw@db.internal/pocketstack"
    result = CliRunner().invoke(cli.main, ["up", "--data-dir", str(tmp_path),
                                           "--database-url", url, "--devices", "0"])
    assert "cannot start: not starting in a unit test" in result.output
    (settings,) = settings_of_up
    assert settings.database_url == url
    assert settings.objectstore.devices == 0


def test_default_database_is_sqlite_in_the_data_dir(settings_of_up: list[Settings],
                                                    tmp_path: Path) -> None:
    CliRunner().invoke(cli.main, ["up", "--data-dir", str(tmp_path)])
    (settings,) = settings_of_up
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'control.db'}"


def test_workers_option(settings_of_up: list[Settings], tmp_path: Path) -> None:
    CliRunner().invoke(cli.main, ["up", "--data-dir", str(tmp_path), "--workers", "3"])
    (settings,) = settings_of_up
    assert settings.objectstore.workers == 3


def test_one_worker_by_default(settings_of_up: list[Settings], tmp_path: Path) -> None:
    CliRunner().invoke(cli.main, ["up", "--data-dir", str(tmp_path)])
    (settings,) = settings_of_up
    assert settings.objectstore.workers == 1
