"""proxy.quorum: quorum sizes and the status the proxy answers with (Swift's best_response)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.objectstore.proxy.quorum import best_status, have_quorum, quorum_size


@pytest.mark.parametrize(("n", "size"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4)])
def test_quorum_size(n: int, size: int) -> None:
    assert quorum_size(n) == size


@given(st.integers(min_value=1, max_value=20))
def test_two_quorums_always_overlap(n: int) -> None:
    assert 2 * quorum_size(n) > n


def test_have_quorum_counts_a_status_class() -> None:
    assert have_quorum([201, 202, 503], 3, 2)
    assert not have_quorum([201, 404, 503], 3, 2)
    assert have_quorum([404, 409], 3, 4)


@pytest.mark.parametrize(("statuses", "n", "expected"), [
    ([201, 201, 201], 3, 201),
    ([201, 201, 507], 3, 201),
    ([201, 202, 202], 3, 202),
    ([201, 202], 3, 201),           # a tie: the lowest
    ([201], 3, 503),                # padded with 503: no quorum
    ([404, 404, 201], 3, 404),
    ([404, 409, 201], 3, 404),      # 4xx quorum, tie between 404 and 409: the lowest
    ([507, 507, 507], 3, 503),      # failures never make the answer, however many agree
    ([500, 500, 404], 3, 503),
    ([507, 201], 2, 503),
    ([204], 1, 204),
    ([], 1, 503),
])
def test_best_status(statuses: list[int], n: int, expected: int) -> None:
    assert best_status(statuses, n) == expected


@given(st.lists(st.sampled_from([200, 201, 202, 204, 404, 409, 412, 500, 503, 507]),
                max_size=5), st.integers(min_value=1, max_value=5))
def test_best_status_is_never_an_unavailable_replica(statuses: list[int], n: int) -> None:
    status = best_status(statuses[:n], n)
    assert status == 503 or status in statuses
    assert status not in (500, 507)
