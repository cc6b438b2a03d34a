"""The one database helper: engine, sessions, migrations, and the thread hop.

The control database is SQLite (WAL) embedded by default and PostgreSQL for deployments
beyond one machine; the code is the same SQLAlchemy 2 either way. Every service keeps its
tables in its own ``models.py`` on its own ``MetaData`` and its Alembic scripts in its own
``migrations/`` package, with its own version table, so services migrate independently.

Database work is blocking: it runs in threads (:meth:`Database.run`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool

P = ParamSpec("P")
T = TypeVar("T")

# Constraint names spelled out so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def declarative_base() -> type[DeclarativeBase]:
    """A fresh declarative base with our naming convention (one per service)."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    return Base


class Database:
    def __init__(self, url: str, *, echo: bool = False, threads: int = 8) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.engine = self._create_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")

    def _create_engine(self, url: str, *, echo: bool) -> Engine:
        if not self.is_sqlite:
            return create_engine(url, echo=echo, pool_pre_ping=True)
        database = make_url(url).database
        in_memory = not database or database == ":memory:"
        if in_memory:
            engine = create_engine(url, echo=echo, poolclass=StaticPool,
                                   connect_args={"check_same_thread": False})
        else:
            Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, echo=echo, pool_size=8, max_overflow=8,
                                   connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking database work in the database's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def migrate(self, script_location: str, *, version_table: str) -> None:
        """Bring the schema of one service to its newest Alembic revision.

        When the database is already there (every start but the first and the one after
        an upgrade), this costs one SELECT: Alembic itself (a third of a second of
        imports) is loaded only when there is something to run."""
        heads = script_heads(script_location)
        if heads and heads == self._applied_revisions(version_table):
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", script_location)
        config.attributes["connection_url"] = self.url
        config.attributes["version_table"] = version_table
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def _applied_revisions(self, version_table: str) -> frozenset[str] | None:
        """The revisions recorded in ``version_table`` (None: no such table yet)."""
        if not re.fullmatch(r"\w+", version_table):
            return None
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(text(f"SELECT version_num FROM {version_table}"))
                return frozenset(str(row[0]) for row in rows)
        except SQLAlchemyError:
            return None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()


_REVISION = re.compile(r"^revision(?:\s*:[^=]+)?\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]+)?\s*=\s*(.+)$", re.M)


def script_heads(script_location: str) -> frozenset[str] | None:
    """The head revisions of an Alembic script directory (``package:dir`` or a path),
    read from the scripts' ``revision`` / ``down_revision`` lines without importing
    Alembic; None when a script does not parse that simply (then Alembic decides)."""
    versions = _script_dir(script_location)
    if versions is None or not versions.is_dir():
        return None
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions.glob("*.py"):
        source = script.read_text()
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None and down is None:
            continue  # __init__.py and other helpers
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        value = down.group(1).split("#")[0].strip()
        if value != "None":
            names = re.findall(r"['\"]([^'\"]+)['\"]", value)
            if not names:
                return None
            parents.update(names)
    return frozenset(revisions - parents) or None


def _script_dir(script_location: str) -> Path | None:
    if ":" not in script_location:
        return Path(script_location) / "versions"
    package, _, directory = script_location.partition(":")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / directory / "versions"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; synchronous=FULL keeps every acknowledged
    # write across a power loss (the control plane is small: durability beats speed here).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def run_migrations(context: Any, target_metadata: MetaData) -> None:
    """What each service's Alembic ``env.py`` calls: migrate on the connection we hand it."""
    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
