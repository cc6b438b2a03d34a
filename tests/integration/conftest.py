"""A real cloud for integration tests: ``pocketstack up`` in a temp dir on free ports.

``cloud`` is one cloud per test session (per xdist worker); tests that restart or break a
cloud start their own with :func:`start_cloud`. Clients are driven exactly as users drive
them: the ``openstack``/``swift`` CLIs as subprocesses with ``OS_CLOUD``, openstacksdk and
keystoneauth1 in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration import postgres
from tests.ports import free_port

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "pocketstack-test-admin"


@dataclass
class RunningCloud:
    data_dir: Path
    clouds_yaml: Path
    ports: dict[str, int]
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    """More `pocketstack up` options (e.g. ``--database-url``)."""
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def identity_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['identity']}"

    @property
    def auth_url(self) -> str:
        return f"{self.identity_url}/v3"

    @property
    def database_url(self) -> str:
        """The control database this cloud uses (SQLite in its data dir, or PostgreSQL)."""
        return self.extra_env.get("POCKETSTACK_DATABASE__URL") or \
            f"sqlite:///{self.data_dir / 'control.db'}"

    @property
    def objectstore_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['object-store']}"

    @property
    def image_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['image']}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client subprocess: the test cloud, nothing from the host.
        ``OS_CLOUD`` serves the openstack CLI; the swift CLI reads the OS_* variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
        env.update(OS_AUTH_URL=self.auth_url, OS_USERNAME="admin",
                   OS_PASSWORD=ADMIN_PASSWORD, OS_PROJECT_NAME="admin",
                   OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
                   OS_IDENTITY_API_VERSION="3", OS_AUTH_VERSION="3")
        env.update(OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml), OS_CLOUD="pocketstack",
                   HOME=str(self.data_dir.parent))
        return env

    def start(self) -> None:
        env = {**os.environ, "POCKETSTACK_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": "4", **self.extra_env}
        args = [str(BIN / "pocketstack"), "up", "--data-dir", str(self.data_dir),
                "--clouds-yaml", str(self.clouds_yaml),
                "--identity-port", str(self.ports["identity"]),
                "--objectstore-port", str(self.ports["object-store"]),
                "--image-port", str(self.ports["image"]), *self.extra_args]
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"pocketstack up exited {self.process.returncode}:\n"
                                   f"{self.log()}")
            try:
                if httpx.get(f"{self.auth_url}", timeout=1).status_code == 200 and \
                        httpx.get(f"{self.objectstore_url}/healthcheck").status_code == 200 \
                        and httpx.get(f"{self.image_url}/versions").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"cloud not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    # -- clients -------------------------------------------------------------------------------
    def cli(self, tool: str, *args: str, check: bool = True, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(BIN / tool), *args], capture_output=True, text=True,
                                env={**self.env, **(env or {})}, timeout=120, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def openstack(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run ``openstack ... -f json`` and return the parsed output."""
        out = self.cli("openstack", *args, "-f", "json", env=env).stdout
        return json.loads(out) if out.strip() else None

    def admin_token(self) -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        response = httpx.post(f"{self.auth_url}/auth/tokens", json=body, timeout=30)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]


_POSTGRES: list[postgres.PostgresServer] = []


def _database_env() -> dict[str, str]:
    """With POCKETSTACK_TEST_DATABASE=postgresql, a fresh PostgreSQL database per cloud."""
    if not postgres.wanted():
        return {}
    if not _POSTGRES:
        server = postgres.PostgresServer(free_port())
        server.start()
        _POSTGRES.append(server)
    return {"POCKETSTACK_DATABASE__URL": _POSTGRES[0].create_database()}


@pytest.fixture(scope="session", autouse=True)
def _postgres_server() -> Iterator[None]:
    yield
    for server in _POSTGRES:
        server.stop()


def start_cloud(base: Path, name: str = "cloud", **extra_env: str) -> RunningCloud:
    extra_env = {**_database_env(), **extra_env}
    data_dir = base / name
    cloud = RunningCloud(data_dir=data_dir, clouds_yaml=base / f"{name}-clouds.yaml",
                         ports={"identity": free_port(), "object-store": free_port(),
                                "image": free_port()},
                         extra_env=extra_env)
    cloud.start()
    return cloud


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running = start_cloud(tmp_path_factory.mktemp("cloud"))
    yield running
    code = running.stop()
    assert code == 0, f"exit {code}\n{running.log()}"


@pytest.fixture
def sdk(cloud: RunningCloud) -> Iterator[Any]:
    """openstacksdk as the cloud admin, configured by hand (no clouds.yaml, no OS_*)."""
    import openstack  # here: most tests never need the SDK's import time

    conn = openstack.connect(auth_url=cloud.auth_url, username="admin", password=ADMIN_PASSWORD,
                             project_name="admin", user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne",
                             load_yaml_config=False, load_envvars=False)
    yield conn
    conn.close()


@pytest.fixture
def admin_token(cloud: RunningCloud) -> str:
    return cloud.admin_token()
