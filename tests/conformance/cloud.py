"""A fresh ``pocketstack up`` for one conformance run: temp data dir, free ports, readiness.

Started as the integration tests start it (tests/integration/conftest.py): the project's own
``pocketstack`` entry point, its own session (Ctrl-C in the terminal reaches the harness,
which stops the cloud itself), output to a log file that ``run`` copies into
``.conformance/logs/server.log`` before the temp dir goes.

Ready means: identity answers ``GET /v3`` with 200 and the object storage port answers HTTP
at all (any status of ``GET /healthcheck``: a half-built object store still gets tested and
its failures counted; one that does not listen is a cloud that failed to start).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.conformance.errors import HarnessError
from tests.ports import free_port

CLOUD_NAME = "pocketstack"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass
class Cloud:
    base: Path  # temp dir holding data dir, clouds.yaml and the log
    identity_port: int
    objectstore_port: int
    admin_password: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def clouds_yaml(self) -> Path:
        return self.base / "clouds.yaml"

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    @property
    def identity_url(self) -> str:
        return f"http://127.0.0.1:{self.identity_port}"

    @property
    def objectstore_url(self) -> str:
        return f"http://127.0.0.1:{self.objectstore_port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def admin_auth(self) -> dict[str, Any]:
        """The ``auth`` block ``pocketstack up`` wrote into clouds.yaml for the admin."""
        try:
            clouds = yaml.safe_load(self.clouds_yaml.read_text())
            return dict(clouds["clouds"][CLOUD_NAME]["auth"])
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise HarnessError(f"no '{CLOUD_NAME}' entry in {self.clouds_yaml}: {exc}") from exc


def _server_env(admin_password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    # Swift's tests need identity and object storage only: no image service (and its port).
    env.update(POCKETSTACK_ADMIN_PASSWORD=admin_password,
               POCKETSTACK_IDENTITY__BCRYPT_ROUNDS="4", POCKETSTACK_IMAGE__ENABLED="false")
    return env


def start(base: Path) -> Cloud:
    """Start ``pocketstack up`` under ``base`` and wait until both APIs answer."""
    pocketstack = Path(sys.executable).parent / "pocketstack"
    if not pocketstack.exists():
        raise HarnessError(f"{pocketstack} not found: run 'make venv' first")
    identity_port = free_port()
    objectstore_port = free_port()
    while objectstore_port == identity_port:
        objectstore_port = free_port()
    cloud = Cloud(base=base, identity_port=identity_port, objectstore_port=objectstore_port,
                  admin_password=secrets.token_urlsafe(18))
    args = [str(pocketstack), "up", "--data-dir", str(cloud.data_dir),
            "--clouds-yaml", str(cloud.clouds_yaml),
            "--identity-port", str(cloud.identity_port),
            "--objectstore-port", str(cloud.objectstore_port)]
    with cloud.log_path.open("ab") as log:
        cloud.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=_server_env(cloud.admin_password))
    try:
        wait_ready(cloud)
    except BaseException:
        stop(cloud)
        raise
    return cloud


def _answers(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def wait_ready(cloud: Cloud, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    identity = objectstore = None
    while time.monotonic() < deadline:
        assert cloud.process is not None
        if cloud.process.poll() is not None:
            raise HarnessError(f"pocketstack up exited with {cloud.process.returncode} "
                               "before it was ready", detail=cloud.log_tail())
        identity = identity if identity == 200 else _answers(f"{cloud.identity_url}/v3")
        objectstore = objectstore or _answers(f"{cloud.objectstore_url}/healthcheck")
        if identity == 200 and objectstore is not None and cloud.clouds_yaml.exists():
            return
        time.sleep(0.1)
    missing = []
    if identity != 200:
        missing.append(f"identity GET /v3 → {identity or 'no answer'} (port {cloud.identity_port})")
    if objectstore is None:
        missing.append(f"object storage: no answer on port {cloud.objectstore_port}")
    if not cloud.clouds_yaml.exists():
        missing.append(f"{cloud.clouds_yaml} not written")
    raise HarnessError(f"cloud not ready after {timeout:.0f}s: " + "; ".join(missing),
                       detail=cloud.log_tail())


def stop(cloud: Cloud, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM the cloud's process group, SIGKILL it if it lingers; its exit code."""
    process = cloud.process
    if process is None:
        return None
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout)
    return process.returncode


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)  # the group this harness created with start_new_session
