"""The clouds a run measures, behind one small surface: start (timed to the first token),
stop, the processes that serve (for ``/proc`` readings) and the URLs a client needs.

:class:`PocketstackCloud` is ``pocketstack up`` in the run's work dir; the upstream cloud
(Keystone + Swift from PyPI) is in :mod:`bench.upstream`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.procstat import ProcessTree

PASSWORD = "bench-admin-password"
START_TIMEOUT = 120.0


_GIVEN: set[int] = set()


def free_port() -> int:
    """A free loopback port, and none this process was given before: the kernel may hand
    out the same free port twice in a row, and a cloud asks for several before it binds
    any (a bench.ab test once got identity and image on one port)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def password_body(user: str, password: str, project: str) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}


@dataclass(frozen=True)
class Login:
    token: str
    project_id: str


@dataclass(frozen=True)
class Startup:
    """Seconds from the start command to the first token, and to the first authenticated
    HEAD of the account (object storage ready too); and the CPU seconds the cloud's
    processes (and setup commands) had spent by then, which load on the machine does not
    inflate as it does the wall-clock time."""

    first_token_s: float
    storage_ready_s: float
    cpu_s: float = 0.0


class Cloud(Protocol):
    name: str
    auth_url: str  # .../v3
    swift_url: str  # scheme://host:port (the /v1 root's parent)

    def start(self) -> Startup: ...

    def stop(self) -> None: ...

    def servers(self) -> ProcessTree: ...


def login(auth_url: str, password: str = PASSWORD) -> Login:
    response = httpx.post(f"{auth_url}/auth/tokens?nocatalog",
                          json=password_body("admin", password, "admin"), timeout=30)
    response.raise_for_status()
    return Login(response.headers["X-Subject-Token"],
                 response.json()["token"]["project"]["id"])


def wait_started(cloud: Cloud, started: float, alive: Callable[[], bool], *,
                 setup_cpu_s: float = 0.0) -> Startup:
    """Poll until a token is issued, then until the account answers a HEAD with it."""
    first_token = None
    while time.perf_counter() - started < START_TIMEOUT:
        if not alive():
            raise RuntimeError(f"{cloud.name}: a server exited during start")
        try:
            if first_token is None:
                who = login(cloud.auth_url)
                first_token = time.perf_counter() - started
            response = httpx.head(f"{cloud.swift_url}/v1/AUTH_{who.project_id}",
                                  headers={"X-Auth-Token": who.token}, timeout=30)
            if response.status_code in (200, 204):
                return Startup(round(first_token, 3),
                               round(time.perf_counter() - started, 3),
                               round(cloud.servers().cpu_seconds() + setup_cpu_s, 2))
        except (httpx.HTTPError, KeyError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{cloud.name} did not start in {START_TIMEOUT:.0f} s")


class PocketstackCloud:
    """``pocketstack up`` on a data dir under ``work``; ``extra_args`` go to ``up``."""

    def __init__(self, work: Path, *, bcrypt_rounds: int, extra_args: list[str],
                 data_dir: str = "pocketstack", name: str = "pocketstack",
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.env = env or {}  # added to the server's environment (bench.ab: PYTHONPATH)
        self.work = work
        self.data_dir = work / data_dir
        self.bcrypt_rounds = bcrypt_rounds
        self.extra_args = extra_args
        self.identity_port, self.objectstore_port = free_port(), free_port()
        self.image_port = free_port()
        self.auth_url = f"http://127.0.0.1:{self.identity_port}/v3"
        self.swift_url = f"http://127.0.0.1:{self.objectstore_port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Startup:
        # Replicator and auditor passes only when asked, as upstream's side runs neither:
        # a pass after the listing fill rehashes thousands of suffixes (seconds of CPU)
        # and landed in whichever phases ran then, on one side only.
        env = {**os.environ, "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": str(self.bcrypt_rounds),
               "POCKETSTACK_ACCESS_LOG": "false",
               "POCKETSTACK_OBJECTSTORE__REPLICATOR_INTERVAL": "0",
               "POCKETSTACK_OBJECTSTORE__AUDITOR_INTERVAL": "0", **self.env}
        # The admin password is given on the first start only, as an operator does (then it
        # is in clouds.yaml); given again, bootstrap re-checks it with bcrypt on every start.
        if not self.data_dir.exists():
            env["POCKETSTACK_ADMIN_PASSWORD"] = PASSWORD
        exe = Path(sys.executable).parent / "pocketstack"
        log = (self.work / "pocketstack.log").open("ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(exe), "up", "--data-dir", str(self.data_dir), "--clouds-yaml",
             str(self.work / "clouds.yaml"), "--identity-port", str(self.identity_port),
             "--objectstore-port", str(self.objectstore_port), "--image-port",
             str(self.image_port), "--log-level", "warning", *self.extra_args],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        process = self.process
        return wait_started(self, started, lambda: process.poll() is None)

    def servers(self) -> ProcessTree:
        return ProcessTree([self.process.pid] if self.process else [])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None
