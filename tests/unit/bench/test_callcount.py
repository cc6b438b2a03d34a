"""bench/callcount: a process started with it counts its calls and writes them on SIGUSR1;
without CALLCOUNT it changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HOOK = Path(__file__).resolve().parents[3] / "bench" / "callcount"
PROGRAM = """
import os, signal, sys, time
def f(n): return n + 1
for i in range({n}): f(i)
if os.environ.get("CALLCOUNT"):
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(0.1)
print(sys.getprofile() is not None)
"""


def run(n: int, out: Path | None) -> str:
    env = {**os.environ, "PYTHONPATH": str(HOOK)}
    env.pop("CALLCOUNT", None)
    if out is not None:
        env["CALLCOUNT"] = str(out)
    done = subprocess.run([sys.executable, "-c", PROGRAM.format(n=n)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_calls_are_counted_and_more_work_counts_more(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    assert run(100, small) == "True" and run(10_100, large) == "True"
    python_small, c_small = map(int, small.read_text().split())
    python_large, c_large = map(int, large.read_text().split())
    assert 10_000 <= python_large - python_small <= 10_100  # f() 10 000 times more
    assert c_small > 0 and c_large >= c_small


def test_without_callcount_nothing_is_installed(tmp_path: Path) -> None:
    assert run(10, None) == "False"
