"""bench.procstat: /proc readings of a process tree."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.procstat import ProcessTree, cpu_seconds


def test_tree_finds_children_and_reads_cpu_and_memory() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = ProcessTree([os.getpid()])
        assert child.pid in tree.pids()
        memory = ProcessTree([child.pid]).memory()
        assert memory.processes == 1 and memory.rss_mb > 1
        own = cpu_seconds(os.getpid())  # first: the tree, read after, includes it and more
        assert tree.cpu_seconds() >= own > 0
    finally:
        child.kill()
        child.wait()


def test_gone_process_reads_as_nothing() -> None:
    assert cpu_seconds(2 ** 22 + 12345) == 0.0
    assert ProcessTree([2 ** 22 + 12345]).pids() == []
