"""Forked workers under their supervisor: spawn, replace the dead, stop (SIGTERM, then
SIGKILL), and the shared port."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from tests.procs import alive, children

from pocketstack.workers import (
    RESPAWN_DELAY,
    SETTLED,
    Workers,
    _Supervisor,
    reuse_port_socket,
)


def _sleep_forever(_number: int) -> int:
    while True:
        time.sleep(1)


def _ignore_sigterm(_number: int) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return _sleep_forever(_number)




def _wait_for(what: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while not (value := what()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def _workers_of(workers: Workers, count: int) -> list[int]:
    assert workers.supervisor is not None
    supervisor = workers.supervisor
    pids = _wait_for(lambda: len(children(supervisor)) == count and children(supervisor))
    assert isinstance(pids, list), children(supervisor)
    return pids


def test_workers_run_under_a_supervisor_and_stop_on_sigterm() -> None:
    workers = Workers(_sleep_forever)
    workers.spawn(2)
    pids = _workers_of(workers, 2)
    family = [*workers.pids, *pids]
    assert workers.reap() == []
    workers.stop(timeout=10)
    assert workers.pids == [] and workers.supervisor is None
    assert not any(alive(pid) for pid in family)


def test_a_worker_that_ignores_sigterm_is_killed() -> None:
    workers = Workers(_ignore_sigterm, grace=0.5)
    workers.spawn(1)
    (pid,) = _workers_of(workers, 1)
    time.sleep(0.2)  # let it install its handler
    workers.stop(timeout=10)
    assert workers.pids == [] and not alive(pid)


def test_a_worker_that_dies_is_replaced() -> None:
    workers = Workers(_sleep_forever)
    workers.spawn(2)
    try:
        first, second = _workers_of(workers, 2)
        os.kill(first, signal.SIGKILL)
        assert _wait_for(lambda: len(set(children(workers.supervisor or 0)) - {first}) == 2)
        replaced = children(workers.supervisor or 0)
        assert second in replaced and first not in replaced
    finally:
        workers.stop(timeout=10)


def test_workers_that_keep_dying_are_replaced_ever_more_slowly() -> None:
    supervisor = _Supervisor(_sleep_forever, 1, grace=1.0)
    young = [supervisor._next_delay(lived=2.0) for _ in range(8)]
    assert young == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert supervisor._next_delay(lived=SETTLED) == RESPAWN_DELAY  # a settled one: 1 s


def test_a_supervisor_that_dies_takes_its_workers_and_is_reported() -> None:
    workers = Workers(_sleep_forever)
    workers.spawn(2)
    pids = _workers_of(workers, 2)
    assert workers.supervisor is not None
    os.kill(workers.supervisor, signal.SIGKILL)
    gone = _wait_for(workers.reap)
    assert gone == [(0, -signal.SIGKILL)] and workers.pids == []
    assert _wait_for(lambda: not any(alive(pid) for pid in pids))


def test_a_worker_that_fails_at_once_is_replaced(tmp_path: Path) -> None:
    """Each start leaves its pid in a file and exits 3: the supervisor starts another
    (1 s later, then 2 s: not in a tight loop)."""
    starts = tmp_path / "starts"

    def fails(_number: int) -> int:
        with starts.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return 3

    workers = Workers(fails)
    began = time.monotonic()
    workers.spawn(1)
    try:
        assert _wait_for(lambda: starts.exists() and len(starts.read_text().split()) >= 2)
        took = time.monotonic() - began
        assert 0.9 < took < 5, took
        assert len(set(starts.read_text().split())) >= 2
        assert len(starts.read_text().split()) == 2  # the next comes 2 s after the second
    finally:
        workers.stop(timeout=10)


def test_sockets_share_a_port() -> None:
    first = reuse_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reuse_port_socket("127.0.0.1", port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        first.close()
        second.close()


def test_connections_get_tcp_nodelay_from_asyncio() -> None:
    sock = reuse_port_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP  # what asyncio checks before TCP_NODELAY
    finally:
        sock.close()
