"""``make bench``: start a throwaway cloud (or use ``--auth-url``), run the benchmarks,
print a table and JSON lines.

    python -m bench [--concurrency 16] [--auth-url URL --user U --password P --project P]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import identity
from bench.runner import table

PASSWORD = "bench-admin-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cloud:
    """A cloud of our own for the run: ``pocketstack up`` in a temp dir, stopped after."""

    def __init__(self, bcrypt_rounds: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pocketstack-bench-"))
        self.identity_port, self.objectstore_port = _free_port(), _free_port()
        env = {**os.environ, "POCKETSTACK_ADMIN_PASSWORD": PASSWORD,
               "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": str(bcrypt_rounds),
               "POCKETSTACK_ACCESS_LOG": "false", "POCKETSTACK_IMAGE__ENABLED": "false"}
        exe = Path(sys.executable).parent / "pocketstack"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(exe), "up", "--data-dir", str(self.dir / "data"), "--clouds-yaml",
             str(self.dir / "clouds.yaml"), "--identity-port", str(self.identity_port),
             "--objectstore-port", str(self.objectstore_port), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.auth_url = f"http://127.0.0.1:{self.identity_port}/v3"
        self.first_token_s = self._wait()

    def _wait(self) -> float:
        body = identity.password_body("admin", PASSWORD, "admin")
        while time.perf_counter() - self.started < 60:
            try:
                if httpx.post(f"{self.auth_url}/auth/tokens", json=body).status_code == 201:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError("cloud did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--auth-url")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--project", default="admin")
    parser.add_argument("--issue-count", type=int, default=200)
    parser.add_argument("--validate-count", type=int, default=5000)
    parser.add_argument("--bcrypt-rounds", type=int, default=12,
                        help="cost of the throwaway cloud's password hashes (Keystone: 12)")
    args = parser.parse_args()
    cloud = None if args.auth_url else Cloud(args.bcrypt_rounds)
    auth_url = args.auth_url or cloud.auth_url  # type: ignore[union-attr]
    try:
        if cloud is not None:
            print(f"first start to first token: {cloud.first_token_s:.2f} s")
        results = asyncio.run(identity.bench(
            auth_url, args.user, args.password, args.project, concurrency=args.concurrency,
            issue_count=args.issue_count, validate_count=args.validate_count))
    finally:
        if cloud is not None:
            cloud.stop()
    print(f"concurrency {args.concurrency}")
    print(table(results))
    for result in results:
        print(result.as_json())


if __name__ == "__main__":
    main()
