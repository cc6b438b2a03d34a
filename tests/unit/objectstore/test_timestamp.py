"""Timestamp: parsing, forms, ordering (Swift's semantics, integer-exact)."""

from __future__ import annotations

import pickle
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.objectstore.timestamp import MAX_OFFSET, Timestamp, isoformat_of

raws = st.integers(min_value=0, max_value=10**15 - 1)
offsets = st.integers(min_value=0, max_value=MAX_OFFSET)


def test_normal_form_is_zero_padded_to_16_chars() -> None:
    assert Timestamp("1700000000.12345").normal == "1700000000.12345"
    assert Timestamp(0).normal == "0000000000.00000"
    assert Timestamp(1.5).normal == "0000000001.50000"
    assert Timestamp("12").normal == "0000000012.00000"
    assert len(Timestamp(9999999999.99999).normal) == 16


def test_internal_form_carries_the_offset_only_when_set() -> None:
    ts = Timestamp("1700000000.12345")
    assert ts.internal == ts.normal
    with_offset = Timestamp(ts, offset=42)
    assert with_offset.internal == "1700000000.12345_000000000000002a"
    assert with_offset.normal == ts.normal
    assert Timestamp(with_offset.internal) == with_offset
    assert Timestamp(with_offset, offset=1).offset == 43


def test_floats_round_to_ten_microseconds() -> None:
    assert Timestamp(1700000000.123456).normal == "1700000000.12346"
    assert Timestamp("1700000000.123454").normal == "1700000000.12345"
    assert Timestamp(b"1700000000.5").normal == "1700000000.50000"
    assert Timestamp(3).raw == 300_000


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "abc",
        "1e5",
        "-1",
        " 1",
        "1.2.3",
        "nan",
        "inf",
        "1_",
        "1_xyz",
        "1_" + "f" * 17,
        "10000000000",
        "1/3",
        "٣",
    ],
)
def test_garbage_raises_value_error(garbage: str) -> None:
    with pytest.raises(ValueError):
        Timestamp(garbage)


@pytest.mark.parametrize("value", [-0.5, 1e10, float("nan"), float("inf"), True, None, [1]])
def test_out_of_range_or_wrong_type_raises_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        Timestamp(value)  # type: ignore[arg-type]


def test_negative_offset_and_delta_out_of_range() -> None:
    with pytest.raises(ValueError):
        Timestamp(1, offset=-1)
    with pytest.raises(ValueError):
        Timestamp(0, delta=-1)
    assert Timestamp(1, delta=5).normal == "0000000001.00005"


@given(raws, st.sampled_from([0, 1, 42, MAX_OFFSET]))
def test_isoformat_of_stored_text_is_isoformat(raw: int, offset: int) -> None:
    ts = Timestamp.from_raw(raw, offset)
    assert isoformat_of(ts.internal) == ts.isoformat


def test_isoformat_of_other_texts_parses_them() -> None:
    assert isoformat_of("1.5") == "1970-01-01T00:00:01.500000"
    assert isoformat_of("0000000001.5") == "1970-01-01T00:00:01.500000"
    with pytest.raises(ValueError):
        isoformat_of("abcdefghij.12345")


def test_isoformat_and_back() -> None:
    ts = Timestamp("1704164645.12345")
    assert ts.isoformat == "2024-01-02T03:04:05.123450"
    assert Timestamp.from_isoformat(ts.isoformat) == ts
    assert Timestamp(0).isoformat == "1970-01-01T00:00:00.000000"


def test_http_date_and_ceil_round_up() -> None:
    assert Timestamp("1704164645.12345").http_date == "Tue, 02 Jan 2024 03:04:06 GMT"
    assert Timestamp("1704164645").http_date == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert Timestamp("1704164645.00001").ceil() == 1704164646
    assert Timestamp("1704164645").ceil() == 1704164645


def test_now_is_current() -> None:
    import time

    before = time.time()
    now = Timestamp.now()
    assert before - 0.001 <= float(now) <= time.time() + 0.001


def test_equality_hash_and_pickle() -> None:
    a = Timestamp("1.5")
    assert a == Timestamp(1.5) == Timestamp.from_raw(150_000)
    assert len({a, Timestamp(1.5), Timestamp(1.5, offset=1)}) == 2
    assert pickle.loads(pickle.dumps(a)) == a
    assert a != "1.5"
    assert str(Timestamp(a, offset=1)) == Timestamp(a, offset=1).internal
    assert not Timestamp(0) and Timestamp(0, offset=1)
    with pytest.raises(AttributeError):
        a.foo = 1


def test_comparing_with_other_types_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Timestamp(1) < 2  # type: ignore[operator]


@given(raws, offsets)
def test_internal_round_trips(raw: int, offset: int) -> None:
    ts = Timestamp.from_raw(raw, offset)
    assert Timestamp(ts.internal) == ts
    assert Timestamp(ts.normal) == Timestamp.from_raw(raw)


@given(raws, offsets, raws, offsets)
def test_order_agrees_with_internal_text_order(r1: int, o1: int, r2: int, o2: int) -> None:
    a, b = Timestamp.from_raw(r1, o1), Timestamp.from_raw(r2, o2)
    assert (a < b) == (a.internal < b.internal)
    assert (a == b) == (a.internal == b.internal)
    assert (a <= b) == (a.internal <= b.internal)
    assert (a > b) == (a.internal > b.internal)
    assert (a >= b) == (a.internal >= b.internal)


@given(st.floats(min_value=0, max_value=9.99e9, allow_nan=False, allow_infinity=False)
       | st.integers(0, 2**39).map(lambda n: n / 64))  # n/64 s: halfway between ticks if odd
def test_seconds_round_to_ticks_exactly_half_to_even(seconds: float) -> None:
    assert Timestamp(seconds).raw == round(Fraction(seconds) * 100_000)


def test_a_time_halfway_between_two_ticks_rounds_to_the_even_one() -> None:
    assert Timestamp(1 / 64).raw == 1562  # 1562.5 ticks
    assert Timestamp(3 / 64).raw == 4688  # 4687.5
    assert Timestamp(1 / 2**17).raw == 1  # 0.76 ticks
