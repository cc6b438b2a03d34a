"""Count a server's Python and C function calls, for A/B runs too fine for CPU time.

On a shared machine, CPU ms per request moves by 10-15% between identical runs, more than
most single changes of the request path are worth. Function calls per request do not move.
Put this directory on the server's ``PYTHONPATH`` with ``CALLCOUNT`` naming an output file:

    CALLCOUNT=/tmp/calls PYTHONPATH=bench/callcount pocketstack up ...
    kill -USR1 <pid>            # writes "<python calls> <C calls>" (all threads) to $CALLCOUNT

Read it before and after N requests (after a warm-up), and divide the difference by N.
Counting makes the server a few times slower: compare counts, never the rates of such runs.
Without ``CALLCOUNT`` this file does nothing (the interpreter imports it at every start).
"""

from __future__ import annotations

import os

if os.environ.get("CALLCOUNT"):
    import signal
    import sys
    import threading

    _counts = {"call": 0, "c_call": 0}

    def _count(_frame: object, event: str, _arg: object) -> None:
        if event in _counts:
            _counts[event] += 1

    def _write(_signum: int, _frame: object) -> None:
        with open(os.environ["CALLCOUNT"], "w", encoding="ascii") as out:
            out.write(f"{_counts['call']} {_counts['c_call']}\n")

    sys.setprofile(_count)
    threading.setprofile(_count)
    signal.signal(signal.SIGUSR1, _write)
