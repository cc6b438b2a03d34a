"""What the clients do to a cluster: many writes at once, a steady background load, reads
that check every byte, and the figures the tests assert on.

A write is *acknowledged* when the proxy answered 2xx; only those carry a promise. A read
is *exact* when it returned 200 and the very bytes written; a read cut off mid-body (the
proxy stops a stream whose replica turned out corrupt) is never counted as exact, and
`Reads.corrupt` counts the 200s that delivered other bytes (what must never happen).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.integration.scaleout.topology import Account, StorageHost

WORKERS = 8


def bodies(count: int, *, seed: int, prefix: str = "o", big_every: int = 25
           ) -> dict[str, bytes]:
    """``count`` objects of 0..16 KiB (every ``big_every``-th of 150 KiB: several chunks)."""
    rng = random.Random(seed)
    out = {}
    for i in range(count):
        size = 150 * 1024 if big_every and i % big_every == big_every - 1 else \
            rng.randrange(0, 16 * 1024)
        out[f"{prefix}{i:04d}"] = rng.randbytes(size)
    return out


@dataclass
class Writes:
    """The statuses of a batch of writes, by object name."""

    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def acknowledged(self) -> list[str]:
        return sorted(n for n, s in self.statuses.items() if 200 <= s < 300)

    def count(self) -> Counter[int]:
        return Counter(self.statuses.values())


def write_many(account: Account, container: str, objects: dict[str, bytes], *,
               workers: int = WORKERS, after: Callable[[int], None] | None = None) -> Writes:
    """PUT every object, ``workers`` at a time; ``after(n)`` runs once n writes ended."""
    writes = Writes()
    lock = threading.Lock()

    def one(name: str) -> None:
        status = account.put(f"{container}/{name}", objects[name])
        with lock:
            writes.statuses[name] = status
            done = len(writes.statuses)
        if after is not None:
            after(done)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, objects))
    return writes


@dataclass
class Reads:
    exact: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    cut_off: list[str] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{len(self.exact)} exact, {len(self.corrupt)} corrupt, "
                f"{len(self.cut_off)} cut off, {len(self.failed)} failed {self.failed}")


def read_back(account: Account, container: str, objects: dict[str, bytes],
              names: Iterable[str] | None = None, *, workers: int = WORKERS) -> Reads:
    """GET each object and compare every byte."""
    reads = Reads()
    lock = threading.Lock()

    def one(name: str) -> None:
        status, body = account.get(f"{container}/{name}")
        with lock:
            if status == 200 and body == objects[name]:
                reads.exact.append(name)
            elif status == 200 and body is not None:
                reads.corrupt.append(name)
            elif body is None:
                reads.cut_off.append(name)
            else:
                reads.failed[name] = status

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, sorted(names if names is not None else objects)))
    return reads


class Load:
    """Writes (and reads back) in a background thread until stopped: ``with Load(...)``."""

    def __init__(self, account: Account, container: str, *, seed: int,
                 prefix: str = "load") -> None:
        self.account = account
        self.container = container
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.objects: dict[str, bytes] = {}
        self.writes = Writes()
        self.misreads: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            name = f"{self.prefix}{i:05d}"
            body = self.rng.randbytes(self.rng.randrange(0, 8192))
            self.objects[name] = body
            self.writes.statuses[name] = self.account.put(f"{self.container}/{name}", body)
            if 200 <= self.writes.statuses[name] < 300:
                status, got = self.account.get(f"{self.container}/{name}")
                if status != 200 or got != body:
                    self.misreads.append(f"{name}: {status}")
            i += 1
            time.sleep(0.005)


ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) /(?P<role>objects|containers|accounts)/'
                         r'(?P<device>[^/ ]+)/\S*" (?P<status>\d{3}) ')


def statuses_by_device(hosts: Iterable[StorageHost], wanted: Callable[[int], bool]
                       ) -> dict[str, Counter[int]]:
    """``host/device`` -> how often it answered each status ``wanted`` accepts (from the
    storage-node access logs: one line per request)."""
    found: dict[str, Counter[int]] = {}
    for host in hosts:
        for match in ACCESS_LINE.finditer(host.log()):
            status = int(match["status"])
            if wanted(status):
                found.setdefault(f"{host.name}/{match['device']}", Counter())[status] += 1
    return found


def wait_for(check: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> float:
    """Seconds until ``check()`` held; AssertionError after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not reached within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start


def status_summary(document: dict[str, Any]) -> tuple[list[str], int]:
    """From a ``pocketstack status`` document: the unreachable hosts, and the handoff
    partitions waiting on the others' devices."""
    unreachable = sorted(h["host"] for h in document["hosts"] if "error" in h)
    waiting = sum(d["handoffs_waiting"] for h in document["hosts"] if "error" not in h
                  for d in h["devices"])
    return unreachable, waiting
