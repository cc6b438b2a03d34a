"""storage.listing_json: a page written by SQLite is the page the proxy would render from
the rows, byte for byte, or it is not written there at all (None)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocketstack.objectstore.proxy.listing import render_stored_listing
from pocketstack.objectstore.storage import listing_json
from pocketstack.objectstore.storage.container_broker import ContainerBroker
from pocketstack.objectstore.storage.types import ListingQuery, ObjectRecord
from pocketstack.objectstore.timestamp import Timestamp

_counter = itertools.count()

ASCII_NAME = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1,
                     max_size=12)
ANY_NAME = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   min_size=1, max_size=12)
CONTENT_TYPE = st.sampled_from([
    "application/octet-stream", "text/plain", 'text/x-"quoted"\\', "a/b;swift_bytes=77",
    "text/plain; charset=utf-8", "image/\tjpeg", "x/\x7f", "application/\u00e9t\u00e9", ""])
TIMESTAMP = st.builds(Timestamp, st.floats(min_value=0, max_value=4e9),
                      offset=st.sampled_from([0, 0, 1, 0xABCDEF]))
ROW = st.tuples(st.one_of(ASCII_NAME, ANY_NAME), TIMESTAMP,
                st.integers(min_value=0, max_value=2**40), CONTENT_TYPE,
                st.sampled_from(["d41d8cd98f00b204e9800998ecf8427e", "", 'e"t\\ag', "\u00e9"]),
                st.booleans())
QUERY = st.builds(
    ListingQuery,
    limit=st.integers(min_value=0, max_value=12),
    marker=st.one_of(st.just(""), ASCII_NAME),
    end_marker=st.one_of(st.just(""), ASCII_NAME),
    prefix=st.one_of(st.none(), st.just(""), st.text("abc", max_size=2)),
    reverse=st.booleans(),
)


def broker_with(devices: Path, rows: list[tuple[str, Timestamp, int, str, str, bool]]
                ) -> ContainerBroker:
    device = devices / "sda"
    name = f"c{next(_counter)}"
    path = device / "containers" / "0" / "abc" / f"{name}abc" / f"{name}abc.db"
    broker = ContainerBroker(str(path), device_path=str(device), account="a", container=name,
                             fsync=False)
    broker.initialize(Timestamp(1))
    broker.merge_items(ObjectRecord(*row) for row in rows)
    return broker


def rendered_by_python(broker: ContainerBroker, query: ListingQuery) -> bytes:
    return render_stored_listing("c", broker.listing(query).entries, "application/json")[0]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ROW, max_size=15), QUERY)
def test_a_page_is_the_pythons_byte_for_byte_or_none(
        devices: Path, rows: list[tuple[str, Timestamp, int, str, str, bool]],
        query: ListingQuery) -> None:
    broker = broker_with(devices, rows)
    try:
        rendered = broker.rendered_listing(query)
        if rendered is not None:
            assert rendered.json == rendered_by_python(broker, query)
            assert rendered.info == broker.listing(query).info
    finally:
        broker.close()


def plain(count: int) -> list[tuple[str, Timestamp, int, str, str, bool]]:
    return [(f"obj-{i:05d} \"q\" \\ \t", Timestamp(1_764_000_000.5 + i, offset=i % 2),
             i * 7, "application/octet-stream", f"{i:032x}", False) for i in range(count)]


def test_plain_pages_are_written_by_the_database(devices: Path) -> None:
    broker = broker_with(devices, plain(2500))
    for query in (ListingQuery(10_000), ListingQuery(10_000, reverse=True),
                  ListingQuery(300, marker="obj-00100", end_marker="obj-02000"),
                  ListingQuery(50, prefix="obj-001", reverse=True), ListingQuery(0)):
        rendered = broker.rendered_listing(query)
        assert rendered is not None, query
        assert rendered.json == rendered_by_python(broker, query), query
    backwards = broker.rendered_listing(ListingQuery(10_000, reverse=True))
    assert backwards is not None
    names = [entry["name"] for entry in json.loads(backwards.json)]
    assert names == sorted(names, reverse=True) and len(names) == 2500


def test_pages_only_python_renders_are_left_to_it(devices: Path) -> None:
    unicode = broker_with(devices, [("snow \u2603", Timestamp(5), 1, "text/plain", "e", False)])
    params = broker_with(devices, [("slo", Timestamp(5), 1, "a/b;swift_bytes=9", "e", False)])
    delete = broker_with(devices, [("del", Timestamp(5), 1, "a/b", "e", True)])
    for broker in (unicode, params):
        assert broker.rendered_listing(ListingQuery(100)) is None
        assert broker.rendered_listing(ListingQuery(100, prefix="zzz")) is not None  # no row
    assert delete.rendered_listing(ListingQuery(100)).json == b"[]"  # type: ignore[union-attr]
    assert unicode.rendered_listing(ListingQuery(100, delimiter="/")) is None
    assert unicode.rendered_listing(ListingQuery(100, path="")) is None


def test_an_sqlite_without_json_functions_leaves_every_page_to_python(
        devices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = broker_with(devices, plain(3))
    assert broker.rendered_listing(ListingQuery(10)) is not None
    monkeypatch.setattr(listing_json, "_RENDERS", False)
    assert broker.rendered_listing(ListingQuery(10)) is None
