"""Forked worker processes sharing one listening port (``pocketstack up --workers N``).

The parent prepares everything (database, keys, rings), then forks the extra workers
before it starts its event loop or any thread, so each child starts from the parent's
imported modules and built objects (copy-on-write: no imports, no second start-up) and
runs its own loop. Every process binds its own socket to the port with ``SO_REUSEPORT``:
the kernel spreads new connections over the processes, which one shared accept queue does
not do while one process is busy.

A child dies with its parent (``PR_SET_PDEATHSIG``, and a check of ``getppid``), so a
parent killed with SIGKILL leaves no orphans; a parent that stops normally stops its
children with SIGTERM, then SIGKILL after a grace period, and reaps them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass
class Workers:
    """The children of this process; ``run`` is what each child runs (its exit code)."""

    run: Callable[[int], int]
    pids: dict[int, int] = field(default_factory=dict)  # pid -> worker number

    def spawn(self, count: int) -> bool:
        """Fork workers 1..count; True in the parent, and never returns in a child."""
        if count and threading.active_count() > 1:  # a fork would copy held locks
            LOG.warning("forking with %d threads running", threading.active_count())
        parent = os.getpid()
        for number in range(1, count + 1):
            pid = os.fork()
            if pid == 0:
                self.pids.clear()
                code = 1
                try:
                    die_with_parent(parent)
                    code = self.run(number)
                except BaseException:
                    LOG.exception("worker %d failed", number)
                finally:
                    logging.shutdown()
                    os._exit(code)
            self.pids[pid] = number
        return True

    def reap(self) -> list[tuple[int, int]]:
        """Children that have exited since the last call: (worker number, exit status)."""
        gone = []
        for pid, number in list(self.pids.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                del self.pids[pid]
                gone.append((number, os.waitstatus_to_exitcode(status)))
        return gone

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every child, wait up to ``timeout`` seconds, then SIGKILL and reap."""
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pids and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)
        if self.pids:
            LOG.error("workers %s did not stop in %ss: killing them",
                      sorted(self.pids.values()), timeout)
            self._signal(signal.SIGKILL)
            for pid in list(self.pids):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            self.pids.clear()

    def _signal(self, signum: int) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
