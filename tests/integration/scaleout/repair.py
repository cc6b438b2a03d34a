"""Letting the cluster repair itself: the storage nodes' replicator, auditor and updater.

The nodes run their daemons as background tasks. Started with `REPAIR_ENV` they run
them only when asked (replicator and auditor interval 0; the updater's must be > 0: an
hour), so a test decides when repair happens: `run_pass`
asks every running node for one pass at once (``POST /recon/<daemon>``, which answers
once the pass is done), and `replicate_until` repeats rounds until the disks show
what replication promises. `UPDATER_ENV` leaves the updater on its own schedule (every
second), for a test that only waits (`wait_repaired`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from tests.integration.scaleout.topology import Cluster, Place

REPAIR_TIMEOUT = 60.0
PASS_TIMEOUT = 60.0
REPAIR_ENV = {
    "POCKETSTACK_OBJECTSTORE__REPLICATOR_INTERVAL": "0",  # only when asked
    "POCKETSTACK_OBJECTSTORE__AUDITOR_INTERVAL": "0",
    "POCKETSTACK_OBJECTSTORE__UPDATER_INTERVAL": "3600",  # (must be > 0)
    "POCKETSTACK_OBJECTSTORE__NODE_TIMEOUT": "2",
    "POCKETSTACK_OBJECTSTORE__RING_CHECK_INTERVAL": "0.5",
}
UPDATER_ENV = {**REPAIR_ENV, "POCKETSTACK_OBJECTSTORE__UPDATER_INTERVAL": "1"}
"""Only the updater on its own schedule (every second)."""
Misplaced = dict[str, tuple[list[Place], list[Place]]]


def run_pass(cluster: Cluster, daemon: str) -> dict[str, Any]:
    """One pass of ``daemon`` on every running node, all at once; host -> its stats."""
    hosts = [h for h in cluster.hosts if h.alive and not h.paused]

    def one(url: str) -> Any:
        response = httpx.post(f"{url}/recon/{daemon}", timeout=PASS_TIMEOUT)
        assert response.status_code == 200, (url, response.status_code, response.text)
        return response.json()[daemon]

    with ThreadPoolExecutor(len(hosts)) as pool:
        stats = list(pool.map(one, [h.url for h in hosts]))
    return {h.name: s for h, s in zip(hosts, stats, strict=True)}


def misplaced(cluster: Cluster, account: str, container: str, names: Iterable[str]
              ) -> Misplaced:
    """Objects whose .data files are not exactly on their primaries: name -> (held,
    primaries)."""
    return {name: (sorted(held, key=str), sorted(primaries, key=str))
            for name, (held, primaries) in cluster.placement(account, container, names).items()
            if held != primaries}


def replicate_until(cluster: Cluster, account: str, container: str, names: Iterable[str], *,
                    timeout: float = REPAIR_TIMEOUT) -> tuple[float, int, Misplaced]:
    """Replication rounds until every object is exactly on its primaries (no copy left on
    a handoff); (seconds, rounds, what is still misplaced)."""
    names = list(names)
    start = time.monotonic()
    rounds = 0
    while True:
        wrong = misplaced(cluster, account, container, names)
        if not wrong or time.monotonic() - start > timeout:
            return time.monotonic() - start, rounds, wrong
        run_pass(cluster, "replicator")
        rounds += 1


def repair_until(cluster: Cluster, check: Callable[[], bool], daemons: Iterable[str], *,
                 timeout: float = REPAIR_TIMEOUT) -> tuple[float, int]:
    """Rounds of passes (each daemon in turn, every node) until ``check()`` holds;
    (seconds, rounds). AssertionError after ``timeout``."""
    daemons = list(daemons)
    start = time.monotonic()
    rounds = 0
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not repaired after {rounds} rounds of {daemons} "
                                 f"({timeout}s)")
        for daemon in daemons:
            run_pass(cluster, daemon)
        rounds += 1
    return time.monotonic() - start, rounds


def wait_repaired(check: Callable[[], bool], *, timeout: float = REPAIR_TIMEOUT) -> float:
    """Seconds until ``check()`` held, the daemons running on their own schedule;
    AssertionError after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not repaired within {timeout}s")
        time.sleep(0.25)
    return time.monotonic() - start
