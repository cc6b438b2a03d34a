"""Quorum arithmetic, pure: how many replicas must agree, and which answer wins.

With ``n`` replicas a write succeeds once ``quorum_size(n) = n // 2 + 1`` of them took it
(2 of 3, 1 of 1, 2 of 2, 3 of 4 and 5): any two quorums then share at least one replica
holding the newest write, so a later read of a quorum sees it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def quorum_size(n: int) -> int:
    return n // 2 + 1


def have_quorum(statuses: Sequence[int], n: int, status_class: int) -> bool:
    """True when at least a quorum of ``n`` answers are in ``status_class`` (2 for 2xx)."""
    return sum(1 for s in statuses if s // 100 == status_class) >= quorum_size(n)


def best_status(statuses: Sequence[int], n: int) -> int:
    """The status the proxy answers with, given each replica's (503 for no answer).

    The first status class (2xx, 3xx, then 4xx) reaching a quorum wins, and within it the
    most common status (ties: the lowest). Otherwise 503, as Swift's ``best_response``:
    replicas that failed (500, 507, timeouts) never make the answer, however many agree.
    """
    padded = list(statuses) + [503] * max(0, n - len(statuses))
    for status_class in (2, 3, 4):
        if have_quorum(padded, n, status_class):
            counted = Counter(s for s in padded if s // 100 == status_class)
            return min(counted, key=lambda s: (-counted[s], s))
    return 503
