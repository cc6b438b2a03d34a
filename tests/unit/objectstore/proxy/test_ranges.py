"""proxy.ranges: Range (swob semantics), multipart/byteranges framing, conditionals."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.proxy.ranges import (
    MAX_RANGES,
    PART_END,
    RANGE_NOT_SATISFIABLE_BODY,
    MultipartBody,
    RangeNotSatisfiable,
    RangeSpec,
    check_put_if_none_match,
    content_range,
    etag_matches,
    evaluate_conditions,
    http_date,
    is_egregious,
    multipart_byteranges,
    multipart_content_length,
    new_boundary,
    normalize_etag,
    parse_etags,
    parse_http_date,
    parse_range,
    parse_range_header,
    stream_multipart,
)

# -- Range header syntax ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "specs"),
    [
        ("bytes=0-1", [(0, 1)]),
        ("BYTES=0-1", [(0, 1)]),
        ("bytes = 0 - 1 , 5-", [(0, 1), (5, None)]),
        ("bytes=-5", [(None, 5)]),
        ("bytes=-0", [(None, 0)]),
        ("bytes=7-7", [(7, 7)]),
        ("bytes=0-1,0-1", [(0, 1), (0, 1)]),
    ],
)
def test_valid_range_headers(header: str, specs: list[RangeSpec]) -> None:
    assert parse_range_header(header) == specs


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=5-3", "bytes=-", "bytes=45", "bytes=a-b", "bytes=1-x",
     "items=0-1", "bytes=0-1,", "bytes=,0-1", "bytes=--0", "bytes=+5-10", "bytes=1--2",
     "bytes=0-1,5-3", "bytes=\u0663-4", "0-1"],
)
def test_invalid_range_headers_are_ignored(header: str | None) -> None:
    assert parse_range_header(header) is None
    assert parse_range(header, 100) is None


# -- Range resolution ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "length", "ranges"),
    [
        ("bytes=1-7", 10, [(1, 8)]),
        ("bytes=0-0", 10, [(0, 1)]),
        ("bytes=5-", 10, [(5, 10)]),
        ("bytes=5-100", 10, [(5, 10)]),
        ("bytes=-3", 10, [(7, 10)]),
        ("bytes=-10", 10, [(0, 10)]),
        ("bytes=-50", 10, [(0, 10)]),
        ("bytes=0-0,5-5", 10, [(0, 1), (5, 6)]),
        ("bytes=20-30,2-3", 10, [(2, 4)]),  # unsatisfiable specs are dropped
        ("bytes=-0,2-3", 10, [(2, 4)]),
        ("bytes=5-9,0-1", 10, [(5, 10), (0, 2)]),  # request order kept
    ],
)
def test_satisfiable_ranges(header: str, length: int, ranges: list[tuple[int, int]]) -> None:
    assert parse_range(header, length) == ranges


@pytest.mark.parametrize(
    ("header", "length"),
    [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=-0,-0", 10),
     ("bytes=0-", 0), ("bytes=0-0", 0), ("bytes=-0", 0)],
)
def test_unsatisfiable_ranges_are_416(header: str, length: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, length)
    err = info.value
    assert err.status == 416
    assert err.content_range == f"bytes */{length}"
    assert err.headers == {"Content-Range": f"bytes */{length}"}
    assert b"Requested Range Not Satisfiable" in RANGE_NOT_SATISFIABLE_BODY


def test_suffix_range_of_an_empty_body_serves_it_whole() -> None:
    assert parse_range("bytes=-5", 0) is None
    assert parse_range("bytes=-5,0-", 0) is None


def test_more_than_50_ranges_is_416() -> None:
    fifty = ",".join(f"{i * 2}-{i * 2}" for i in range(MAX_RANGES))
    assert len(parse_range("bytes=" + fifty, 1000) or []) == 50
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + fifty + ",200-200", 1000)


def test_more_than_two_overlapping_pairs_is_416() -> None:
    assert parse_range("bytes=0-10,5-15,12-20", 100) is not None  # two overlapping pairs
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-10,5-15,8-20", 100)  # three


def test_identical_ranges_do_not_count_as_overlapping() -> None:
    assert parse_range("bytes=0-9,0-9,0-9,0-9", 100) == [(0, 10)] * 4


def test_eight_out_of_order_ranges_is_416() -> None:
    seven = "bytes=" + ",".join(f"{i}-{i}" for i in (6, 5, 4, 3, 2, 1, 0))
    assert parse_range(seven, 100) is not None
    eight = "bytes=" + ",".join(f"{i}-{i}" for i in (7, 6, 5, 4, 3, 2, 1, 0))
    with pytest.raises(RangeNotSatisfiable):
        parse_range(eight, 100)
    ascending = "bytes=" + ",".join(f"{i}-{i}" for i in range(20))
    assert parse_range(ascending, 100) is not None


def test_is_egregious_directly() -> None:
    assert not is_egregious([(0, 1)])
    assert is_egregious([(0, 1)] * 51)
    assert not is_egregious([(0, 1)] * 50)


def spec_text(spec: RangeSpec) -> str:
    first, last = spec
    return f"{'' if first is None else first}-{'' if last is None else last}"


def model_slice(data: bytes, spec: RangeSpec) -> bytes:
    """What RFC 7233 asks for, by slicing: independent of the implementation's arithmetic."""
    first, last = spec
    if first is None:
        assert last is not None
        return data[-last:] if last else b""
    return data[first:] if last is None else data[first:last + 1]


bounds = st.integers(min_value=0, max_value=40)
specs = st.one_of(
    st.tuples(st.none(), bounds),
    st.tuples(bounds, st.none()),
    st.tuples(bounds, bounds).map(lambda t: (min(t), max(t))),
)


@given(st.lists(specs, min_size=1, max_size=2), st.integers(min_value=0, max_value=30))
def test_ranges_select_what_the_slicing_model_selects(
    spec_list: list[RangeSpec], length: int
) -> None:
    data = bytes(i % 251 for i in range(length))
    header = "bytes=" + ",".join(spec_text(s) for s in spec_list)
    expected = [part for part in (model_slice(data, s) for s in spec_list) if part]
    suffix_of_empty = length == 0 and any(s[0] is None and s[1] for s in spec_list)
    if suffix_of_empty:
        assert parse_range(header, length) is None
    elif not expected:
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, length)
    else:
        ranges = parse_range(header, length)
        assert ranges is not None
        assert [data[start:stop] for start, stop in ranges] == expected


@given(st.lists(specs, min_size=1, max_size=60), st.integers(min_value=1, max_value=30))
def test_any_answer_is_within_bounds_and_limits(spec_list: list[RangeSpec], length: int) -> None:
    header = "bytes=" + ",".join(spec_text(s) for s in spec_list)
    try:
        ranges = parse_range(header, length)
    except RangeNotSatisfiable:
        return
    assert ranges is not None and 1 <= len(ranges) <= MAX_RANGES
    assert all(0 <= start < stop <= length for start, stop in ranges)


def test_content_range() -> None:
    assert content_range(0, 10, 10) == "bytes 0-9/10"
    assert content_range(5, 6, 100) == "bytes 5-5/100"


# -- multipart/byteranges --------------------------------------------------------------

BOUNDARY = "0123456789abcdef0123456789abcdef"


def assemble(plan: MultipartBody, data: bytes) -> bytes:
    parts = [part.header + data[part.start:part.stop] + PART_END for part in plan.parts]
    return b"".join(parts) + plan.trailer


def test_multipart_framing_is_swifts() -> None:
    plan = multipart_byteranges([(0, 2), (5, 8)], 10, "text/plain", BOUNDARY)
    assert plan.content_type == f"multipart/byteranges;boundary={BOUNDARY}"
    body = assemble(plan, b"0123456789")
    assert body == (
        f"--{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n"
        f"01\r\n"
        f"--{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-7/10\r\n\r\n"
        f"567\r\n"
        f"--{BOUNDARY}--"
    ).encode()
    assert plan.content_length == len(body)
    assert multipart_content_length([(0, 2), (5, 8)], 10, "text/plain", BOUNDARY) == len(body)


def test_new_boundary_is_32_hex_digits() -> None:
    first, second = new_boundary(), new_boundary()
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


ranges_of_100 = st.lists(
    st.tuples(st.integers(0, 99), st.integers(1, 100)).filter(lambda r: r[0] < r[1]),
    min_size=1, max_size=8,
)


@given(ranges_of_100, st.text(min_size=1, max_size=30).filter(lambda t: "\r" not in t))
def test_multipart_content_length_matches_the_body(
    ranges: list[tuple[int, int]], content_type: str
) -> None:
    data = bytes(range(100))
    plan = multipart_byteranges(ranges, 100, content_type, BOUNDARY)
    assert plan.content_length == len(assemble(plan, data))


def test_stream_multipart_reads_each_range_from_an_async_source() -> None:
    data = b"abcdefghij"
    calls: list[tuple[int, int]] = []

    async def read_range(start: int, stop: int) -> AsyncIterator[bytes]:
        calls.append((start, stop))
        for i in range(start, stop):  # one byte per chunk: framing must not depend on it
            yield data[i:i + 1]

    async def collect(plan: MultipartBody) -> bytes:
        return b"".join([chunk async for chunk in stream_multipart(plan, read_range)])

    plan = multipart_byteranges([(1, 3), (8, 10)], 10, "a/b", BOUNDARY)
    body = asyncio.run(collect(plan))
    assert calls == [(1, 3), (8, 10)]
    assert body == assemble(plan, data)
    assert len(body) == plan.content_length


# -- conditional requests --------------------------------------------------------------

ETAG = "d41d8cd98f00b204e9800998ecf8427e"
TS = 1_700_000_000.25  # Last-Modified: ceil -> ...001
LM = http_date(TS)
BEFORE = http_date(TS - 10)
AFTER = http_date(TS + 10)


def test_http_date_rounds_up_to_the_second() -> None:
    assert http_date(1_700_000_000.0) == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert http_date(1_700_000_000.25) == "Tue, 14 Nov 2023 22:13:21 GMT"
    assert parse_http_date(LM) == 1_700_000_001


@pytest.mark.parametrize(
    "value",
    ["Tue, 14 Nov 2023 22:13:21 GMT", "Tuesday, 14-Nov-23 22:13:21 GMT",
     "Tue Nov 14 22:13:21 2023", "Tue, 14 Nov 2023 22:13:21 +0500"],
)
def test_parse_http_date_formats(value: str) -> None:
    assert parse_http_date(value) == 1_700_000_001


@pytest.mark.parametrize("value", [None, "", "yesterday", "Tue, 45 Nov 2023 22:13:21 GMT", "1"])
def test_unparsable_dates_are_none(value: str | None) -> None:
    assert parse_http_date(value) is None


def test_etag_lists() -> None:
    assert parse_etags('"a", b ,, "c"') == frozenset({"a", "b", "c"})
    assert normalize_etag('"x"') == "x" and normalize_etag('"') == '"'
    assert etag_matches(frozenset({"*"}), "anything")
    assert etag_matches(frozenset({ETAG}), f'"{ETAG}"')
    assert not etag_matches(frozenset({f'W/"{ETAG}"'}), ETAG)


def get(headers: dict[str, str], etag: str | None = ETAG, method: str = "GET") -> int | None:
    return evaluate_conditions(method, headers, etag, None if etag is None else TS)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, None),
        ({"If-None-Match": f'"{ETAG}"'}, 304),
        ({"If-None-Match": ETAG}, 304),
        ({"If-None-Match": '"other", "' + ETAG + '"'}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"other"'}, None),
        ({"If-Match": f'"{ETAG}"'}, None),
        ({"If-Match": "*"}, None),
        ({"If-Match": '"other"'}, 412),
        ({"if-match": '"a", "b"'}, 412),
        ({"If-Modified-Since": LM}, 304),
        ({"If-Modified-Since": AFTER}, 304),
        ({"If-Modified-Since": BEFORE}, None),
        ({"If-Modified-Since": "garbage"}, None),
        ({"If-Unmodified-Since": LM}, None),
        ({"If-Unmodified-Since": AFTER}, None),
        ({"If-Unmodified-Since": BEFORE}, 412),
        ({"If-Unmodified-Since": "garbage"}, None),
        # swob's order: If-None-Match, If-Match, If-Modified-Since, If-Unmodified-Since
        ({"If-None-Match": ETAG, "If-Match": '"other"'}, 304),
        ({"If-Match": '"other"', "If-Modified-Since": LM}, 412),
        ({"If-Modified-Since": LM, "If-Unmodified-Since": BEFORE}, 304),
        ({"If-None-Match": '"other"', "If-Modified-Since": LM}, 304),
    ],
)
def test_get_and_head_conditions(headers: dict[str, str], status: int | None) -> None:
    assert get(headers) == status
    assert get(headers, method="HEAD") == status


def test_conditions_on_a_missing_object() -> None:
    assert get({"If-Match": "*"}, etag=None) == 412
    assert get({"If-Match": '"x"'}, etag=None) is None  # the caller's 404 stands
    assert get({"If-None-Match": "*"}, etag=None) is None
    assert get({"If-Modified-Since": LM}, etag=None) is None


def test_put_honours_only_if_none_match() -> None:
    assert get({"If-None-Match": "*"}, method="PUT") == 412
    assert get({"If-None-Match": "*"}, etag=None, method="PUT") is None
    assert get({"If-Match": '"other"'}, method="PUT") is None
    assert get({"If-Unmodified-Since": BEFORE}, method="PUT") is None


def test_post_and_delete_ignore_preconditions() -> None:
    for method in ("POST", "DELETE"):
        assert get({"If-Match": '"other"', "If-None-Match": "*"}, method=method) is None


def test_headers_may_be_pairs() -> None:
    assert evaluate_conditions("GET", [("if-none-match", ETAG)], ETAG, TS) == 304


def test_put_if_none_match_only_supports_star() -> None:
    check_put_if_none_match({})
    check_put_if_none_match({"If-None-Match": "*"})
    check_put_if_none_match({"If-None-Match": '"a", *'})
    with pytest.raises(ConstraintError) as info:
        check_put_if_none_match({"If-None-Match": f'"{ETAG}"'})
    assert (info.value.status, info.value.message) == (400, "If-None-Match only supports *")
