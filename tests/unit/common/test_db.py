"""Database.migrate: Alembic runs only when a revision is pending."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pocketstack.common import db as db_module
from pocketstack.common.db import Database, script_heads

IDENTITY = "pocketstack.identity:migrations"
TABLE = "alembic_version_identity"


def _script(versions: Path, name: str, revision: str, down: str) -> None:
    (versions / name).write_text(
        f'"""{name}"""\nrevision = "{revision}"\ndown_revision = {down}\n\n'
        "def upgrade() -> None:\n    pass\n")


def test_heads_of_a_chain_and_of_a_merge(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "__init__.py").write_text("")
    _script(versions, "a.py", "a", "None")
    _script(versions, "b.py", "b", '"a"')
    assert script_heads(str(tmp_path)) == {"b"}
    _script(versions, "c.py", "c", "'a'")
    assert script_heads(str(tmp_path)) == {"b", "c"}
    _script(versions, "d.py", "d", '("b", "c")  # merge')
    assert script_heads(str(tmp_path)) == {"d"}


def test_a_script_it_cannot_read_leaves_the_decision_to_alembic(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "x.py").write_text("revision = make_revision()\ndown_revision = None\n")
    assert script_heads(str(tmp_path)) is None
    assert script_heads(str(tmp_path / "missing")) is None


def test_the_packaged_migrations_have_one_head() -> None:
    assert script_heads(IDENTITY) is not None
    assert len(script_heads(IDENTITY) or ()) == 1


def test_an_up_to_date_database_does_not_load_alembic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(f"sqlite:///{tmp_path / 'control.db'}")
    try:
        database.migrate(IDENTITY, version_table=TABLE)  # first: Alembic creates it all
        assert database._applied_revisions(TABLE) == script_heads(IDENTITY)
        monkeypatch.setitem(sys.modules, "alembic", None)  # any import of it now fails
        monkeypatch.setitem(sys.modules, "alembic.command", None)
        database.migrate(IDENTITY, version_table=TABLE)
        monkeypatch.setattr(db_module, "script_heads", lambda _location: frozenset({"new"}))
        with pytest.raises(ImportError):  # a pending revision: Alembic must run
            database.migrate(IDENTITY, version_table=TABLE)
    finally:
        database.close()


def test_no_version_table_yet(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'control.db'}")
    try:
        assert database._applied_revisions(TABLE) is None
        assert database._applied_revisions("bad name; drop") is None
    finally:
        database.close()
