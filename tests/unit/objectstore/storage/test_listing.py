"""Swift listing semantics: examples, and a brute-force model checked by hypothesis
against both the pure algorithm and the SQL-backed brokers."""

from __future__ import annotations

import tempfile
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocketstack.objectstore.storage.account_broker import AccountBroker
from pocketstack.objectstore.storage.container_broker import ContainerBroker
from pocketstack.objectstore.storage.listing import Bound, list_entries, successor
from pocketstack.objectstore.storage.types import ListingQuery, Subdir
from pocketstack.objectstore.timestamp import Timestamp


@dataclass(frozen=True)
class Row:
    name: str


def list_fetch(names: Sequence[str]):  # type: ignore[no-untyped-def]
    ordered = sorted(set(names))

    def fetch(lower: Bound, upper: Bound, reverse: bool, limit: int) -> list[Row]:
        start = 0
        if lower is not None:
            start = (bisect_left if lower[1] else bisect_right)(ordered, lower[0])
        stop = len(ordered)
        if upper is not None:
            stop = (bisect_right if upper[1] else bisect_left)(ordered, upper[0])
        window = ordered[start:stop]
        if reverse:
            window.reverse()
        return [Row(n) for n in window[:limit]]

    return fetch


def reference(names: Sequence[str], query: ListingQuery) -> list[str]:
    """Swift's semantics, by brute force; Subdirs rendered as 'SUBDIR:<name>'."""
    prefix, delimiter, path = query.prefix or "", query.delimiter, query.path
    if path is not None:
        prefix = path.rstrip("/") + "/" if path else ""
        delimiter = "/"
    low, high = (
        (query.end_marker, query.marker) if query.reverse else (query.marker, query.end_marker)
    )
    chosen = [
        n
        for n in sorted(set(names))
        if n.startswith(prefix) and (not low or n > low) and (not high or n < high)
    ]
    if query.reverse:
        chosen.reverse()
    out: list[str] = []
    for name in chosen:
        entry = name
        if delimiter:
            end = name.find(delimiter, len(prefix))
            if path is not None:
                if name == prefix or (end >= 0 and len(name) > end + len(delimiter)):
                    continue
            elif end >= 0:
                subdir = name[: end + len(delimiter)]
                if subdir == low or (out and out[-1] == "SUBDIR:" + subdir):
                    continue
                entry = "SUBDIR:" + subdir
        out.append(entry)
    return out[: query.limit]


def render(entries: Sequence[object]) -> list[str]:
    return [f"SUBDIR:{e.name}" if isinstance(e, Subdir) else e.name for e in entries]  # type: ignore[attr-defined]


NAMES = [
    "a",
    "a/",
    "a/b",
    "a/b/c",
    "a/c",
    "a0",
    "b",
    "b/x",
    "b/y/z",
    "c",
    "photos/",
    "photos/animals/",
    "photos/animals/cats/x.jpg",
    "photos/me.jpg",
    "é",
    "é/x",
    "😀",
]


def q(**kwargs: object) -> ListingQuery:
    return ListingQuery(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (q(), NAMES),
        (q(limit=2), ["a", "a/"]),
        (
            q(marker="b"),
            [
                "b/x",
                "b/y/z",
                "c",
                "photos/",
                "photos/animals/",
                "photos/animals/cats/x.jpg",
                "photos/me.jpg",
                "é",
                "é/x",
                "😀",
            ],
        ),
        (q(marker="a0", end_marker="c"), ["b", "b/x", "b/y/z"]),
        (q(prefix="a/"), ["a/", "a/b", "a/b/c", "a/c"]),
        (
            q(delimiter="/"),
            [
                "a",
                "SUBDIR:a/",
                "a0",
                "b",
                "SUBDIR:b/",
                "c",
                "SUBDIR:photos/",
                "é",
                "SUBDIR:é/",
                "😀",
            ],
        ),
        (q(prefix="a/", delimiter="/"), ["a/", "a/b", "SUBDIR:a/b/", "a/c"]),
        (
            q(prefix="photos/", delimiter="/"),
            ["photos/", "SUBDIR:photos/animals/", "photos/me.jpg"],
        ),
        (
            q(delimiter="/", marker="a/"),
            ["a0", "b", "SUBDIR:b/", "c", "SUBDIR:photos/", "é", "SUBDIR:é/", "😀"],
        ),
        (q(delimiter="/", limit=3), ["a", "SUBDIR:a/", "a0"]),
        (q(reverse=True, limit=3), ["😀", "é/x", "é"]),
        (q(reverse=True, marker="b", end_marker="a/b"), ["a0", "a/c", "a/b/c"]),
        (
            q(reverse=True, delimiter="/"),
            [
                "😀",
                "SUBDIR:é/",
                "é",
                "SUBDIR:photos/",
                "c",
                "SUBDIR:b/",
                "b",
                "a0",
                "SUBDIR:a/",
                "a",
            ],
        ),
        (q(path="photos"), ["photos/animals/", "photos/me.jpg"]),
        (q(path="photos/animals"), []),
        (q(path=""), ["a", "a/", "a0", "b", "c", "photos/", "é", "😀"]),
        (q(prefix="é"), ["é", "é/x"]),
        (q(prefix="zzz"), []),
        (q(limit=0), []),
        (q(limit=0, delimiter="/"), []),
    ],
)
def test_examples(query: ListingQuery, expected: list[str]) -> None:
    assert render(list_entries(list_fetch(NAMES), query)) == expected
    assert reference(NAMES, query) == expected


def test_names_sort_in_utf8_byte_order() -> None:
    names = ["\U0001f600", "\uffff", "\ue000", "\u00e9", "z", "Z", "\x7f", "\x01"]
    expected = sorted(names, key=lambda n: n.encode("utf-8"))
    assert render(list_entries(list_fetch(names), q())) == expected


def test_successor() -> None:
    assert successor("a/") == "a0"
    assert successor("a") == "b"
    assert successor("\ud7ff") == "\ue000"
    assert successor("a\U0010ffff") == "b"
    assert successor("\U0010ffff") is None
    assert successor("") is None


def test_negative_limit() -> None:
    with pytest.raises(ValueError):
        list_entries(list_fetch(NAMES), q(limit=-1))


ALPHABET = st.sampled_from(["a", "b", "/", "-", "é", "😀", "\x00", "\ue000"])
NAME = st.text(ALPHABET, min_size=1, max_size=6)
MARK = st.one_of(st.just(""), NAME)
QUERIES = st.builds(
    ListingQuery,
    limit=st.integers(0, 12),
    marker=MARK,
    end_marker=MARK,
    prefix=st.one_of(st.none(), st.text(ALPHABET, max_size=3)),
    delimiter=st.one_of(st.none(), st.sampled_from(["/", "-", "é", "a/"])),
    path=st.one_of(st.none(), st.none(), st.text(ALPHABET, max_size=3)),
    reverse=st.booleans(),
)


@given(st.lists(NAME, max_size=25), QUERIES)
def test_algorithm_matches_the_model(names: list[str], query: ListingQuery) -> None:
    assert render(list_entries(list_fetch(names), query)) == reference(names, query)


@pytest.fixture(scope="module")
def brokers() -> Iterator[tuple[ContainerBroker, AccountBroker]]:
    with tempfile.TemporaryDirectory() as root:
        device = Path(root, "sda")
        container = ContainerBroker(
            str(device / "c.db"),
            device_path=str(device),
            account="a",
            container="c",
            fsync=False,
        )
        account = AccountBroker(
            str(device / "a.db"), device_path=str(device), account="a", fsync=False
        )
        container.initialize(Timestamp(1))
        account.initialize(Timestamp(1))
        yield container, account
        container.close()
        account.close()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(NAME, max_size=20), st.lists(NAME, max_size=5), QUERIES)
def test_brokers_match_the_model(
    brokers: tuple[ContainerBroker, AccountBroker],
    names: list[str],
    deleted: list[str],
    query: ListingQuery,
) -> None:
    container, account = brokers
    tick = Timestamp.now()
    for name in names:
        container.put_object(name, tick, 1, "text/plain", "etag")
        account.put_container(name, tick, Timestamp(0), 1, 1)
    live = [n for n in names if n not in deleted]
    for name in deleted:  # tombstones never show up in listings
        container.delete_object(name, Timestamp(tick, delta=1))
        account.put_container(name, tick, Timestamp(tick, delta=1), 0, 0)
    expected = reference(live, query)
    args = (query.limit, query.marker, query.end_marker, query.prefix, query.delimiter)
    got = container.list_objects_iter(*args, path=query.path, reverse=query.reverse)
    assert render(got) == expected
    got_containers = account.list_containers_iter(*args, reverse=query.reverse, path=query.path)
    assert render(got_containers) == expected
    for name in names:  # reset for the next example
        container.delete_object(name, Timestamp(tick, delta=2))
        account.put_container(name, tick, Timestamp(tick, delta=2), 0, 0)
