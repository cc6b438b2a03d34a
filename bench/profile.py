"""Where the server's time goes: py-spy samples the server process while one phase runs
(``py-spy record -f raw``: one line per distinct stack, ``frame;frame;... count``, outermost
first), and :func:`aggregate` turns the stacks into the top functions by self and by
inclusive samples, and self samples by package.

Only stacks that were doing work count. py-spy's own idle detection lets waiting threads
through here (a thread-pool worker blocked on its queue showed as half of all samples), so
a stack whose innermost frame is a known wait (:data:`IDLE_LEAVES`: a pool worker waiting
for work, a condition or event wait, the event loop's ``select``) is dropped as idle, and
frames that every busy stack shares (:data:`PLUMBING`: thread bootstrap, the event loop's
run loop, the CLI) are left out of the inclusive ranking.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

IDLE_LEAVES = frozenset({
    "_worker (concurrent/futures/thread.py)", "Condition.wait (threading.py)",
    "Event.wait (threading.py)", "EpollSelector.select (selectors.py)",
    "Thread._wait_for_tstate_lock (threading.py)", "Thread.join (threading.py)",
    "SimpleQueue.get (queue.py)", "Queue.get (queue.py)",
    "_Pool._wait_for_job (pocketstack/objectstore/storage/threads.py)"})
PLUMBING_FILES = ("threading.py", "concurrent/futures/thread.py", "asyncio/runners.py",
                  "asyncio/base_events.py", "asyncio/events.py", "click/", "pocketstack/cli.py",
                  "pocketstack)", "runpy.py")
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass
class Profile:
    phase: str
    samples: int = 0
    idle_samples: int = 0
    self_by_function: Counter[str] = field(default_factory=Counter)
    inclusive_by_function: Counter[str] = field(default_factory=Counter)
    self_by_package: Counter[str] = field(default_factory=Counter)

    def top(self, counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, round(100 * count / max(self.samples, 1), 1))
                for name, count in counter.most_common(n)]

    def as_dict(self, n: int = 20) -> dict[str, object]:
        return {"phase": self.phase, "samples": self.samples,
                "idle_samples": self.idle_samples,
                "self": self.top(self.self_by_function, n),
                "inclusive": self.top(self.inclusive_by_function, n),
                "self_by_package": self.top(self.self_by_package, n)}

    def text(self, n: int = 15) -> str:
        lines = [f"## {self.phase} ({self.samples} busy samples; {self.idle_samples} idle "
                 "dropped)"]
        for title, counter in (("self", self.self_by_function),
                               ("inclusive", self.inclusive_by_function),
                               ("self by package", self.self_by_package)):
            lines.append(f"{title}:")
            lines += [f"  {pct:5.1f}%  {name}" for name, pct in self.top(counter, n)]
        return "\n".join(lines)


def function_of(frame: str) -> str:
    """``"put (pocketstack/objectstore/x.py:12)"`` → ``"put (pocketstack/objectstore/x.py)"``."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{match['func']} ({_short(match['file'])})"


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def package_of(frame: str) -> str:
    """The module a frame runs in, to two levels for pocketstack (``objectstore/proxy``),
    the distribution otherwise (``uvicorn``), ``stdlib:<module>`` for the standard library."""
    match = FRAME.match(frame.strip())
    path = match["file"] if match else frame
    if "pocketstack/" in path:
        parts = path.split("pocketstack/", 1)[1].split("/")
        return "pocketstack/" + "/".join(parts[:2]).removesuffix(".py")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if "lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1].removesuffix(".py")
    return path or "?"


def aggregate(phase: str, raw: str) -> Profile:
    profile = Profile(phase)
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        leaf = function_of(frames[-1])
        if leaf in IDLE_LEAVES:
            profile.idle_samples += count
            continue
        profile.samples += count
        profile.self_by_function[leaf] += count
        profile.self_by_package[package_of(frames[-1])] += count
        for name in {function_of(f) for f in frames}:
            if not any(marker in name for marker in PLUMBING_FILES):
                profile.inclusive_by_function[name] += count
    return profile


class Recorder:
    """``py-spy record`` attached to ``pid`` until :meth:`stop` (SIGINT: py-spy writes its
    output and exits)."""

    def __init__(self, pid: int, out: Path, *, rate: int = 250) -> None:
        self.out = out
        py_spy = Path(sys.executable).parent / "py-spy"
        self.log = out.with_suffix(".log").open("wb")
        self.process = subprocess.Popen(
            [str(py_spy), "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r",
             str(rate)], stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # attach before the phase starts

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        return self.out.read_text() if self.out.exists() else ""


def save(profiles: list[Profile], directory: Path) -> None:
    (directory / "profiles.json").write_text(
        json.dumps([p.as_dict() for p in profiles], indent=1) + "\n")
    (directory / "profiles.txt").write_text("\n\n".join(p.text(25) for p in profiles) + "\n")
