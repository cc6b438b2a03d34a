"""Image list parameters as Glance reads them."""

from __future__ import annotations

from datetime import datetime

import pytest

from pocketstack.image.exceptions import BadRequest
from pocketstack.image.service import query


def parse(*pairs: tuple[str, str]) -> query.ListQuery:
    return query.parse(pairs, default_limit=25, max_limit=1000)


def test_defaults() -> None:
    q = parse()
    assert (q.limit, q.sort, q.member_status, q.visibility, q.os_hidden) == \
        (25, [("created_at", "desc")], "accepted", None, False)


def test_everything() -> None:
    q = parse(("limit", "5000"), ("sort", "name:asc,size"), ("tag", "a"), ("tag", "b"),
              ("name", 'in:"glass, darkly",share me'), ("size_min", "1"),
              ("created_at", "gte:2016-04-18T21:38:54Z"), ("hw_arch", "x86_64"),
              ("owner", "p1"), ("visibility", "all"), ("os_hidden", "true"))
    assert q.limit == 1000
    assert q.sort == [("name", "asc"), ("size", "desc")]
    assert q.tags == ["a", "b"]
    assert q.in_filters == {"name": ["glass, darkly", "share me"]}
    assert q.times == [("created_at", "gte", datetime(2016, 4, 18, 21, 38, 54))]
    assert (q.size_min, q.properties, q.exact) == (1, {"hw_arch": "x86_64"}, {"owner": "p1"})
    assert (q.visibility, q.os_hidden) == ("all", True)


def test_classic_sorting() -> None:
    assert parse(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")).sort == \
        [("name", "asc"), ("size", "asc")]


@pytest.mark.parametrize("pairs", [
    [("limit", "x")], [("limit", "-1")], [("sort_key", "owner")], [("sort_dir", "up")],
    [("sort", "name"), ("sort_key", "name")], [("sort_key", "name"), ("sort_key", "id"),
                                               ("sort_dir", "asc"), ("sort_dir", "asc"),
                                               ("sort_dir", "asc")],
    [("visibility", "secret")], [("member_status", "maybe")], [("os_hidden", "yes")],
    [("protected", "1")], [("size_min", "big")], [("changes-since", "2020-01-01")],
    [("created_at", "after:2020-01-01")], [("created_at", "gt:yesterday")],
    [("name", 'in:"open')], [("min_ram", "lots")],
])
def test_mistakes_are_400(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(BadRequest):
        parse(*pairs)
