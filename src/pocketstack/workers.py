"""Forked worker processes sharing one listening port (``pocketstack up --workers N``).

The parent prepares everything (database, keys, rings), then forks, before it starts its
event loop or any thread, one **supervisor**: a process that runs no loop and no thread,
forks the workers, waits for them, and forks a new one in place of one that died (after
1 s, doubling up to a minute while workers keep dying young). Each worker starts from the
parent's imported modules and built objects (copy-on-write: no imports, no second
start-up), and forking them from the thread-less supervisor is safe at any time, where a
fork of the serving parent would copy locks its threads hold. Every worker binds its own
socket to the port with ``SO_REUSEPORT``: the kernel spreads new connections over the
processes, which one shared accept queue does not do while one process is busy.

A process dies with the one that forked it (``PR_SET_PDEATHSIG``, and a check of
``getppid``): a parent killed with SIGKILL takes the supervisor, and so the workers, with
it. A parent that stops normally SIGTERMs the supervisor, which SIGTERMs the workers,
SIGKILLs those still there after the grace period, and reaps them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LOG = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
BACKLOG = 2048


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says so (proto 0 would leave Nagle on: 40 ms per small answer)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def die_with_parent(parent: int) -> None:
    """In a child: get SIGTERM when the parent dies (Linux); if it is already gone, exit."""
    import ctypes  # here, in a forked child: `pocketstack up` itself has no use for it
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(0)


RESPAWN_DELAY = 1.0  # seconds before a worker that died is replaced
RESPAWN_DELAY_MAX = 60.0
SETTLED = 60.0  # a worker that lived this long resets the delay


class _Stop(Exception):
    """SIGTERM/SIGINT in the supervisor."""


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop


@dataclass
class Workers:
    """The workers of this process, behind their supervisor; ``run`` is what each worker
    runs (its exit code); ``inherited``: sockets the supervisor closes (it serves none)."""

    run: Callable[[int], int]
    inherited: Sequence[socket.socket] = ()
    supervisor: int | None = None
    grace: float = 10.0  # how long the supervisor gives workers to stop on SIGTERM

    @property
    def pids(self) -> list[int]:
        """The supervisor's pid while it runs (the workers are its children)."""
        return [self.supervisor] if self.supervisor is not None else []

    def spawn(self, count: int) -> bool:
        """Fork the supervisor, which forks workers 1..count; True in the parent (the
        supervisor and the workers never return)."""
        if count <= 0:
            return True
        if threading.active_count() > 1:  # a fork would copy held locks
            LOG.warning("forking with %d threads running", threading.active_count())
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.supervisor = pid
            return True
        code = 1
        try:
            die_with_parent(parent)
            for sock in self.inherited:
                sock.close()
            code = _Supervisor(self.run, count, self.grace).serve()
        except BaseException:
            LOG.exception("the workers' supervisor failed")
        finally:
            logging.shutdown()
            os._exit(code)

    def reap(self) -> list[tuple[int, int]]:
        """The supervisor if it exited since the last call: [(0, exit status)]."""
        if self.supervisor is None:
            return []
        try:
            done, status = os.waitpid(self.supervisor, os.WNOHANG)
        except ChildProcessError:
            done, status = self.supervisor, 0
        if not done:
            return []
        self.supervisor = None
        return [(0, os.waitstatus_to_exitcode(status))]

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the supervisor (it stops the workers within ``grace``), wait for it up
        to ``timeout`` (default: the grace and 5 s more), then SIGKILL it and reap."""
        pid = self.supervisor
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + (self.grace + 5 if timeout is None else timeout)
        while self.supervisor is not None and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)
        if self.supervisor is not None:
            LOG.error("the workers' supervisor did not stop in time: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.supervisor = None


class _Supervisor:
    """The workers' parent: forks them, replaces the ones that die, stops them."""

    def __init__(self, run: Callable[[int], int], count: int, grace: float) -> None:
        self.run = run
        self.count = count
        self.grace = grace
        self.pids: dict[int, int] = {}  # pid -> worker number
        self.started: dict[int, float] = {}  # worker number -> when it was forked
        self.delay = RESPAWN_DELAY

    def serve(self) -> int:
        gc.freeze()  # its collections leave the parent's objects (and their pages) alone
        signal.signal(signal.SIGTERM, _raise_stop)
        signal.signal(signal.SIGINT, _raise_stop)
        try:
            for number in range(1, self.count + 1):
                self._fork(number)
            while True:
                pid, status = os.wait()
                number = self.pids.pop(pid, None)
                if number is None:
                    continue
                lived = time.monotonic() - self.started[number]
                delay = self._next_delay(lived)
                LOG.error("object storage worker %d (pid %d) exited (status %d) after %.0f s:"
                          " replacing it in %.0f s", number, pid,
                          os.waitstatus_to_exitcode(status), lived, delay)
                time.sleep(delay)
                self._fork(number)
        except _Stop:
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self._stop_all()
        return 0

    def _next_delay(self, lived: float) -> float:
        """1 s after a worker that had settled; each death in a row of workers that die
        young doubles the wait for the next one, up to a minute."""
        if lived >= SETTLED:
            self.delay = RESPAWN_DELAY
        delay, self.delay = self.delay, min(RESPAWN_DELAY_MAX, self.delay * 2)
        return delay

    def _fork(self, number: int) -> None:
        supervisor = os.getpid()
        pid = os.fork()
        if pid:
            self.pids[pid] = number
            self.started[number] = time.monotonic()
            return
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Python's own, as a fork of
            signal.signal(signal.SIGINT, signal.default_int_handler)  # the parent had them
            die_with_parent(supervisor)
            code = self.run(number)
        except BaseException:
            LOG.exception("worker %d failed", number)
        finally:
            logging.shutdown()
            os._exit(code)

    def _stop_all(self) -> None:
        """SIGTERM every worker, wait up to the grace period, then SIGKILL; reap them."""
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while self.pids and time.monotonic() < deadline:
            for pid in list(self.pids):
                try:
                    done = os.waitpid(pid, os.WNOHANG)[0]
                except ChildProcessError:
                    done = pid
                if done:
                    del self.pids[pid]
            time.sleep(0.05)
        if self.pids:
            LOG.error("workers %s did not stop in %ss: killing them",
                      sorted(self.pids.values()), self.grace)
            self._signal(signal.SIGKILL)
            for pid in list(self.pids):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            self.pids.clear()

    def _signal(self, signum: int) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
