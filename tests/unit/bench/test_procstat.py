"""bench.procstat: /proc readings of a process tree."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from bench.procstat import ProcessTree, cpu_seconds, thread_cpu_seconds


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


def test_threads_are_read_one_by_one_the_main_thread_under_the_pid() -> None:
    spun, stop = threading.Event(), threading.Event()

    def spin() -> None:  # 0.15 s of its own CPU, then it waits
        while time.thread_time() < 0.15:
            sum(range(1000))
        spun.set()
        stop.wait(30)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        assert spun.wait(30)
        threads = thread_cpu_seconds(os.getpid())
    finally:
        stop.set()
        spinner.join()
    assert os.getpid() in threads and len(threads) >= 2
    others = sum(cpu for tid, cpu in threads.items() if tid != os.getpid())
    assert others >= 0.1  # the spinner's
    assert sum(threads.values()) <= cpu_seconds(os.getpid()) + 0.05
    assert thread_cpu_seconds(2 ** 22 + 12345) == {}
