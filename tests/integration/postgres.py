"""A private PostgreSQL server for the integration tests (Debian's ``postgresql`` package).

When ``POCKETSTACK_TEST_DATABASE=postgresql``, every cloud the tests start gets a fresh
database on one server per test session, listening on a Unix socket in a temp dir and a free
loopback port, started as the ``postgres`` user when the tests run as root (``initdb``
refuses root) and stopped when the session ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

ENV = "POCKETSTACK_TEST_DATABASE"


def wanted() -> bool:
    return os.environ.get(ENV, "").lower() in ("postgresql", "postgres")


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian package 'postgresql')")
    return found[-1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgresServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base = Path(tempfile.mkdtemp(prefix="pocketstack-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        subprocess.run(_as_postgres([_bin("initdb"), "-D", str(self.data), "-A", "trust",
                                     "-U", "postgres", "--no-sync"]),
                       check=True, capture_output=True)
        self.process = subprocess.Popen(
            _as_postgres([_bin("postgres"), "-D", str(self.data), "-k", str(self.socket_dir),
                          "-p", str(self.port), "-h", "127.0.0.1", "-c", "fsync=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run([_bin("pg_isready"), "-h", str(self.socket_dir),
                                    "-p", str(self.port)], capture_output=True)
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start")

    def create_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"cloud_{uuid.uuid4().hex[:12]}"
        subprocess.run([_bin("createdb"), "-h", str(self.socket_dir), "-p", str(self.port),
                        "-U", "postgres", name], check=True, capture_output=True)
        return (f"postgresql+psycopg://postgres@/{name}?host={self.socket_dir}"
                f"&port={self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        shutil.rmtree(self.base, ignore_errors=True)
