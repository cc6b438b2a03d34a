"""Forked workers: spawn, reap, stop (SIGTERM, then SIGKILL), and the shared port."""

from __future__ import annotations

import os
import signal
import socket
import time

from pocketstack.workers import Workers, reuse_port_socket


def _sleep_forever(_number: int) -> int:
    while True:
        time.sleep(1)


def _ignore_sigterm(_number: int) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return _sleep_forever(_number)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_stop_on_sigterm_and_are_reaped() -> None:
    workers = Workers(_sleep_forever)
    workers.spawn(2)
    pids = list(workers.pids)
    assert sorted(workers.pids.values()) == [1, 2]
    assert workers.reap() == []
    workers.stop(timeout=10)
    assert workers.pids == {}
    assert not any(_alive(pid) for pid in pids)


def test_a_worker_that_ignores_sigterm_is_killed() -> None:
    workers = Workers(_ignore_sigterm)
    workers.spawn(1)
    (pid,) = workers.pids
    time.sleep(0.2)  # let it install its handler
    workers.stop(timeout=0.5)
    assert workers.pids == {} and not _alive(pid)


def test_an_exited_worker_is_reported_with_its_status() -> None:
    workers = Workers(lambda number: 3)
    workers.spawn(1)
    deadline = time.monotonic() + 10
    gone: list[tuple[int, int]] = []
    while not gone and time.monotonic() < deadline:
        gone = workers.reap()
        time.sleep(0.02)
    assert gone == [(1, 3)] and workers.pids == {}


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
