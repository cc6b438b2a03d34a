"""Which test modules run, and how: a queue of modules drained by parallel *slots*, one
pytest process per module.

Swift runs ``test/functional`` serially (``.functests``: ``stestr --concurrency 1``) because
every module's ``tearDownModule`` deletes all containers of the primary account and many
tests list that account. Slots keep that guarantee and still run in parallel: each slot has
its own users and accounts (``accounts.slot_users(slot)``) and runs one module at a time.
How long a module takes depends on the server more than on its size (Swift's ``retry``
backs off for 31 s on every 5xx), so modules are handed out from a queue, largest first,
rather than split up front. ``test_access_control`` names its users literally
(``'tester3'``), so only slot 0, whose users have the sample names, takes it.

``s3api/`` is left out: S3 is not an API pocketstack offers.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conformance.swiftsrc import SwiftSource, Venv

SLOT_0_ONLY = frozenset({"test_access_control"})
# what ``pytest -v`` prints per test: "test/functional/x.py::Class::test_y PASSED  [ 3%]"
OUTCOME_LINE = re.compile(r"^test/\S+::\S+ (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b",
                          re.MULTILINE)


def discover(source: SwiftSource) -> dict[str, Path]:
    """Module name → file, for every functional test module of the sdist."""
    functional = source.functional
    files = sorted(functional.glob("test_*.py")) + [functional / "tests.py"]
    return {path.stem: path for path in files if path.is_file()}


def select(modules: dict[str, Path], wanted: list[str]) -> dict[str, Path]:
    """``modules`` restricted to ``wanted`` (names with or without ``.py``); all if empty."""
    if not wanted:
        return modules
    names = [w.removesuffix(".py").rsplit("/", 1)[-1] for w in wanted]
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise ValueError(f"unknown test module(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(modules))}")
    return {n: modules[n] for n in names}


def queue_order(modules: dict[str, Path]) -> list[str]:
    """SLOT_0_ONLY first (slot 0 starts with them), then largest file first."""
    return sorted(modules, key=lambda n: (n not in SLOT_0_ONLY, -modules[n].stat().st_size, n))


@dataclass
class ModuleRun:
    module: str
    slot: int
    junit: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def outcomes_so_far(self) -> int:
        try:
            return len(OUTCOME_LINE.findall(self.log.read_text(errors="replace")))
        except OSError:
            return 0


def pytest_command(venv: Venv, source: SwiftSource, run: ModuleRun, *, timeout: int,
                   extra: list[str]) -> list[str]:
    path = (source.functional / f"{run.module}.py").relative_to(source.tree)
    # addopts of the sdist's tox.ini replaced by ours: -v is what outcomes_so_far counts
    return [str(venv.python), "-m", "pytest", str(path), "-o", "addopts=", "-v", "-ra",
            "-p", "no:cacheprovider", "-p", "no:requests_mock", "-o", "junit_family=xunit2",
            f"--junitxml={run.junit}", f"--timeout={timeout}", "--timeout-method=signal",
            *extra]


def slot_env(test_conf: Path) -> dict[str, str]:
    """The suite's environment: this test.conf, a real cluster (never Swift's in-process
    servers), nothing from the caller's OpenStack env, no proxy for loopback."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OS_", "SWIFT_TEST_", "PYTEST_"))}
    env.update(SWIFT_TEST_CONFIG_FILE=str(test_conf), SWIFT_TEST_IN_PROCESS="0",
               PYTHONDONTWRITEBYTECODE="1", NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost")
    return env


@dataclass
class Runner:
    """Drains the module queue with one pytest process per busy slot."""

    queue: list[str]
    confs: list[Path]  # one test.conf per slot
    command: Callable[[ModuleRun], list[str]]
    cwd: Path
    out: Path  # junit/ and logs/ go here
    runs: list[ModuleRun] = field(default_factory=list)

    def _next_for(self, slot: int) -> str | None:
        for name in self.queue:
            if slot == 0 or name not in SLOT_0_ONLY:
                self.queue.remove(name)
                return name
        return None

    def _launch(self, module: str, slot: int) -> None:
        run = ModuleRun(module=module, slot=slot, junit=self.out / "junit" / f"{module}.xml",
                        log=self.out / "logs" / f"{module}.log")
        for path in (run.junit, run.log):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
        command = self.command(run)
        with run.log.open("wb") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            run.process = subprocess.Popen(command, cwd=self.cwd, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           env=slot_env(self.confs[slot]))
        self.runs.append(run)

    def _note_ends(self) -> None:
        for run in self.runs:
            if run.ended is None and not run.running:
                run.ended = time.monotonic()

    def fill(self) -> None:
        """Note the runs that ended; give every idle slot its next module."""
        self._note_ends()
        busy = {run.slot for run in self.runs if run.running}
        for slot in range(len(self.confs)):
            if slot not in busy and (module := self._next_for(slot)) is not None:
                self._launch(module, slot)

    @property
    def done(self) -> bool:
        return not self.queue and not any(run.running for run in self.runs)

    def wait(self, *, deadline: float, report: Callable[[Runner], None],
             every: float = 30.0) -> bool:
        """Run until the queue is drained (True) or ``deadline`` (monotonic) passes (False:
        running modules are stopped, queued ones never start)."""
        next_report = time.monotonic() + every
        while not self.done:
            self.fill()
            now = time.monotonic()
            if now >= deadline:
                self.terminate()
                return False
            if now >= next_report:
                report(self)
                next_report = now + every
            time.sleep(0.2)
        self._note_ends()
        return True

    def terminate(self, grace: float = 10.0) -> None:
        """Stop the pytest processes this runner started; kill stragglers after ``grace``."""
        running = [run.process for run in self.runs if run.running and run.process]
        for process in running:
            process.terminate()
        end = time.monotonic() + grace
        for process in running:
            try:
                process.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._note_ends()
