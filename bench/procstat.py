"""What a set of server processes costs, read from ``/proc``: CPU seconds (utime + stime of
every thread) and memory (RSS, and PSS, which splits pages shared between forked workers).

A :class:`ProcessTree` is named by its root pids; its members are found again at every
reading (workers come and go), so a reading covers the roots and all their descendants.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    pss_mb: float
    processes: int


def _stat_fields(pid: int, tid: int | None = None) -> list[str] | None:
    """The fields after comm of ``/proc/<pid>/stat`` (of thread ``tid``: its task's)."""
    path = PROC / str(pid) if tid is None else PROC / str(pid) / "task" / str(tid)
    try:
        text = (path / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds; 0 if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """utime + stime of each thread of ``pid`` (thread id -> seconds); {} if it is gone.
    The thread whose id is ``pid`` is the process's main thread (a server's event loop)."""
    threads: dict[int, float] = {}
    try:
        tids = [int(entry.name) for entry in (PROC / str(pid) / "task").iterdir()]
    except OSError:
        return threads
    for tid in tids:
        fields = _stat_fields(pid, tid)
        if fields is not None:  # (None: the thread ended meanwhile)
            threads[tid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return threads


def children_of() -> dict[int, list[int]]:
    """parent pid → child pids, for every process on the machine."""
    parent2children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parent2children.setdefault(int(fields[1]), []).append(int(entry.name))
    return parent2children


def _kib(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class ProcessTree:
    """Root pids and all their descendants."""

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)

    def pids(self) -> list[int]:
        parent2children = children_of()
        found: list[int] = []
        todo = [pid for pid in self.roots if (PROC / str(pid)).exists()]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(parent2children.get(pid, []))
        return found

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def memory(self) -> Memory:
        pids = self.pids()
        rss = sum(_kib(PROC / str(pid) / "status", "VmRSS:") for pid in pids)
        pss = sum(_kib(PROC / str(pid) / "smaps_rollup", "Pss:") for pid in pids)
        return Memory(round(rss / 1024, 1), round(pss / 1024, 1), len(pids))


def self_cpu_seconds() -> float:
    """CPU of this (the client) process, all threads."""
    times = os.times()
    return times.user + times.system
