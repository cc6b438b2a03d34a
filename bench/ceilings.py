"""The machine's ceilings, measured in the same run, so each figure reads as a fraction of a
limit:

- disk: fsync'd 4 KiB file writes/s (each a new file: write, fsync, close — a replica
  write without the metadata), with 1 and with ``concurrency`` threads, and sequential
  write MB/s of one 1 GiB file fsync'd at the end, on the data dir's disk;
- HTTP: two trivial servers driven by the same aiohttp client as the clouds — a raw ASGI
  app under uvicorn + httptools + uvloop in one process (pocketstack's own stack, with no
  work: the floor of one Python process) and Debian's nginx serving static files
  (2 workers: what the client can take). Each serves a 4 KiB body (requests/s) and a
  64 MiB body (MB/s, MD5-verified by the client as object GETs are).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

from bench.clouds import free_port
from bench.procstat import ProcessTree
from bench.runner import Result, measure

MiB = 1024 * 1024


@dataclass(frozen=True)
class DiskCeiling:
    fsync_writes_per_s_1: float
    fsync_writes_per_s_n: float
    threads: int
    seq_write_mb_s: float


def _fsync_writes(directory: Path, seconds: float, threads: int) -> float:
    body = os.urandom(4096)
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def writer(slot: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            path = directory / f"w{slot}-{n}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            n += 1
        counts[slot] = n

    started = time.perf_counter()
    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def _sequential_write(path: Path, size: int) -> float:
    chunk = os.urandom(MiB)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(size // MiB):
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size / (time.perf_counter() - started) / 1e6


def disk(directory: Path, *, seconds: float, threads: int, seq_size: int) -> DiskCeiling:
    scratch = directory / "disk-ceiling"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        one = _fsync_writes(scratch, seconds, 1)
        shutil.rmtree(scratch)
        scratch.mkdir()
        many = _fsync_writes(scratch, seconds, threads)
        seq = _sequential_write(scratch / "seq", seq_size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return DiskCeiling(round(one, 1), round(many, 1), threads, round(seq, 1))


HELLO_APP = textwrap.dedent('''
    import sys, uvicorn
    SMALL = b"x" * 4096
    BLOCK = bytes(range(256)) * 4096  # 1 MiB
    BIG = int(sys.argv[2])

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        big = scope["path"] == "/big"
        size = BIG if big else len(SMALL)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode()),
                                (b"content-type", b"application/octet-stream")]})
        if not big:
            await send({"type": "http.response.body", "body": SMALL})
            return
        for offset in range(0, size, len(BLOCK)):
            await send({"type": "http.response.body", "body": BLOCK[:size - offset],
                        "more_body": offset + len(BLOCK) < size})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop",
                http="httptools", lifespan="off", access_log=False, log_level="warning")
''')


class TrivialServer:
    """One of the two trivial servers: ``/small`` (4 KiB) and ``/big`` (``big_size``)."""

    def __init__(self, kind: str, work: Path, big_size: int) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.big_size = big_size
        self.dir = work / f"trivial-{kind}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = self._spawn()
        self._wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        log = (self.dir / "server.log").open("ab")
        if self.kind == "uvicorn":
            script = self.dir / "hello.py"
            script.write_text(HELLO_APP)
            return subprocess.Popen([sys.executable, str(script), str(self.port),
                                     str(self.big_size)], stdout=log, stderr=subprocess.STDOUT)
        block = bytes(range(256)) * 4096
        (self.dir / "small").write_bytes(b"x" * 4096)
        with (self.dir / "big").open("wb") as out:
            for offset in range(0, self.big_size, MiB):
                out.write(block[:self.big_size - offset])
        user = "user root;" if os.getuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(textwrap.dedent(f'''
            {user}
            worker_processes {os.cpu_count() or 2};
            pid {self.dir}/nginx.pid;
            error_log {self.dir}/error.log warn;
            events {{ worker_connections 1024; }}
            http {{
                access_log off;
                sendfile on;
                tcp_nopush on;
                keepalive_requests 1000000;
                client_body_temp_path {self.dir}/tmp;
                proxy_temp_path {self.dir}/tmp;
                fastcgi_temp_path {self.dir}/tmp;
                uwsgi_temp_path {self.dir}/tmp;
                scgi_temp_path {self.dir}/tmp;
                default_type application/octet-stream;
                server {{ listen 127.0.0.1:{self.port}; root {self.dir}; }}
            }}
        '''))
        return subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c",
                                 str(self.dir / "nginx.conf"), "-p", str(self.dir), "-g",
                                 "daemon off;"], stdout=log, stderr=subprocess.STDOUT)

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trivial {self.kind} server exited (log in {self.dir})")
            try:
                if httpx.get(f"{self.url}/small", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"trivial {self.kind} server did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM if self.kind == "uvicorn" else signal.SIGQUIT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


async def http(server: TrivialServer, *, concurrency: int, small_count: int,
               big_count: int) -> list[Result]:
    servers = ProcessTree([server.process.pid])
    expected_big = hashlib.md5()
    block = bytes(range(256)) * 4096
    for offset in range(0, server.big_size, MiB):
        expected_big.update(block[:server.big_size - offset])
    big_md5 = expected_big.hexdigest()
    small_md5 = hashlib.md5(b"x" * 4096).hexdigest()
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def small(_: int) -> int:
            async with session.get(f"{server.url}/small") as response:
                body = await response.read()
            if response.status != 200 or hashlib.md5(body).hexdigest() != small_md5:
                raise RuntimeError(f"status {response.status} or body MD5 differs")
            return len(body)

        async def big(_: int) -> int:
            digest, size = hashlib.md5(), 0
            async with session.get(f"{server.url}/big") as response:
                async for part in response.content.iter_chunked(MiB):
                    digest.update(part)
                    size += len(part)
            if digest.hexdigest() != big_md5:
                raise RuntimeError("body MD5 differs")
            return size

        name = f"trivial {server.kind}"
        return [await measure(name, "GET 4 KiB", small, count=small_count,
                              concurrency=concurrency, servers=servers),
                await measure(name, f"GET {server.big_size // MiB} MiB", big,
                              count=big_count, concurrency=concurrency, servers=servers)]


def http_ceilings(work: Path, *, concurrency: int, small_count: int, big_count: int,
                  big_size: int) -> list[Result]:
    results: list[Result] = []
    kinds = ["uvicorn"] + (["nginx"] if shutil.which("nginx") or
                           Path("/usr/sbin/nginx").exists() else [])
    for kind in kinds:
        server = TrivialServer(kind, work, big_size)
        try:
            results += asyncio.run(http(server, concurrency=concurrency,
                                        small_count=small_count, big_count=big_count))
        finally:
            server.stop()
    return results
