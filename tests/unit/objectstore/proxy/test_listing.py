"""proxy.listing: listing parameters, format negotiation and bodies, byte for byte as Swift."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.objectstore.constraints import ConstraintError, Limits
from pocketstack.objectstore.proxy.listing import (
    NOT_ACCEPTABLE_BODY,
    ContainerRow,
    ListingParams,
    ObjectRow,
    SubdirRow,
    accept_patterns,
    best_match,
    format_of,
    get_param,
    listing_format,
    listing_media_type,
    listing_params,
    listing_status,
    object_rows,
    parse_query,
    render_account_listing,
    render_object_listing,
    render_stored_listing,
)
from pocketstack.objectstore.storage.types import ListedObject, Subdir
from pocketstack.objectstore.timestamp import Timestamp

LM = "2024-01-02T03:04:05.123450"


def error(fn: object, *args: object, **kwargs: object) -> ConstraintError:
    with pytest.raises(ConstraintError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


# -- query parameters ------------------------------------------------------------------


def test_parse_query_keeps_wire_bytes_blanks_and_the_last_value() -> None:
    params = parse_query(b"prefix=a+b%2Fc&marker=&limit=1&limit=2&path")
    assert params == {"prefix": "a b/c", "marker": "", "limit": "2", "path": ""}
    assert parse_query("prefix=%E2%98%83")["prefix"] == "\xe2\x98\x83"


def test_get_param_decodes_utf8() -> None:
    params = parse_query(b"prefix=%E2%98%83&bad=%FF&empty=")
    assert get_param(params, "prefix") == "☃"
    assert get_param(params, "empty") == ""
    assert get_param(params, "missing") is None
    err = error(get_param, params, "bad")
    assert (err.status, err.message) == (400, '"bad" parameter not valid UTF-8')


def test_listing_params_defaults() -> None:
    assert listing_params(b"") == ListingParams(limit=10000)
    assert listing_params(b"", target="account") == ListingParams(limit=10000)
    limits = Limits(container_listing_limit=50, account_listing_limit=20)
    assert listing_params(b"", limits=limits).limit == 50
    assert listing_params(b"", target="account", limits=limits).limit == 20


def test_listing_params_values() -> None:
    params = listing_params(
        b"limit=5&marker=m&end_marker=z&prefix=p%2F&delimiter=%2F&reverse=on&format=json"
    )
    assert params == ListingParams(limit=5, marker="m", end_marker="z", prefix="p/",
                                   delimiter="/", reverse=True)


@pytest.mark.parametrize(
    ("raw", "limit"),
    [("0", 0), ("1", 1), ("10000", 10000), ("", 10000), ("abc", 10000), ("-1", 10000),
     ("1.5", 10000), ("+5", 10000), ("%D9%A3", 10000)],
)
def test_non_numeric_limits_are_ignored(raw: str, limit: int) -> None:
    assert listing_params(f"limit={raw}").limit == limit


def test_limit_over_the_maximum_is_412() -> None:
    err = error(listing_params, b"limit=10001")
    assert (err.status, err.message) == (412, "Maximum limit is 10000")
    err = error(listing_params, b"limit=21", target="account",
                limits=Limits(account_listing_limit=20))
    assert err.message == "Maximum limit is 20"


def test_multi_character_delimiters_are_accepted() -> None:
    assert listing_params(b"delimiter=--").delimiter == "--"
    assert listing_params("delimiter=%E2%98%83").delimiter == "☃"


def test_empty_values_mean_none_except_path() -> None:
    params = listing_params(b"prefix=&delimiter=&marker=&end_marker=&path=")
    assert params == ListingParams(limit=10000, path="")
    assert listing_params(b"path=a%2Fb").path == "a/b"
    assert listing_params(b"path=a", target="account").path is None


@pytest.mark.parametrize(("raw", "reverse"), [("true", True), ("1", True), ("Yes", True),
                                              ("no", False), ("", False), ("2", False)])
def test_reverse_is_swifts_config_true_value(raw: str, reverse: bool) -> None:
    assert listing_params(f"reverse={raw}").reverse is reverse


def test_invalid_utf8_params_are_400_naming_the_first_bad_one() -> None:
    for name in ("marker", "end_marker", "prefix", "delimiter", "path", "reverse", "limit"):
        err = error(listing_params, f"{name}=%FF".encode())
        assert (err.status, err.message) == (400, f'"{name}" parameter not valid UTF-8')
    err = error(listing_params, b"prefix=%FF&marker=%FE")
    assert err.message == '"marker" parameter not valid UTF-8'


def test_listing_params_accepts_an_already_decoded_mapping() -> None:
    assert listing_params({"prefix": "☃é", "limit": "3"}) == ListingParams(limit=3, prefix="☃é")
    with pytest.raises(ConstraintError):
        listing_params({"limit": "10001"})


# -- format negotiation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "text/plain"),
        ("", "text/plain"),
        ("*/*", "text/plain"),
        ("application/json", "application/json"),
        ("application/xml", "application/xml"),
        ("text/xml", "text/xml"),
        ("text/plain", "text/plain"),
        ("application/*", "application/json"),
        ("text/*", "text/plain"),
        ("*/xml", "application/xml"),
        ("application/json;q=0.5, text/xml", "text/xml"),
        ("text/plain;q=0.1, application/json;q=0.9", "application/json"),
        ("text/*, application/json", "application/json"),  # exact beats a wildcard
        ("application/json;q=0", "application/json"),  # swob still accepts q=0
        ('application/json; charset="utf-8"', "application/json"),
        ("image/png, */*;q=0.1", "text/plain"),
    ],
)
def test_accept_negotiation(accept: str | None, media: str) -> None:
    assert listing_media_type(None, accept) == media


def test_nothing_acceptable_is_406() -> None:
    err = error(listing_media_type, None, "image/png")
    assert (err.status, err.message) == (406, NOT_ACCEPTABLE_BODY)
    assert error(listing_media_type, None, "Application/JSON").status == 406  # case-sensitive


@pytest.mark.parametrize(
    "accept", ["json", "application/json;q=x", "a/b;q=1;q=0.5", "a/b;c", "a/b;c=1=2", "/json"]
)
def test_malformed_accept_is_400(accept: str) -> None:
    err = error(listing_media_type, None, accept)
    assert (err.status, err.message) == (400, "Invalid Accept header")


@pytest.mark.parametrize(
    ("query_format", "media"),
    [("json", "application/json"), ("JSON", "application/json"), ("xml", "application/xml"),
     ("plain", "text/plain"), ("csv", "text/plain"), ("", "text/xml"), (None, "text/xml")],
)
def test_format_query_parameter_wins(query_format: str | None, media: str) -> None:
    assert listing_media_type(query_format, "text/xml") == media
    if query_format:  # the Accept header is not even read then
        assert listing_media_type(query_format, "garbage") == media
    else:
        assert error(listing_media_type, query_format, "garbage").status == 400


def test_format_given_as_raw_bytes_is_checked_as_utf8() -> None:
    assert listing_media_type(b"json", None) == "application/json"
    err = error(listing_media_type, b"\xff", None)
    assert (err.status, err.message) == (400, '"format" parameter not valid UTF-8')


def test_listing_format_and_format_of() -> None:
    assert listing_format("json", None) == "json"
    assert listing_format(None, "text/xml") == "xml"
    assert listing_format(None, None) == "plain"
    assert format_of("application/xml") == format_of("text/xml") == format_of("xml") == "xml"
    assert format_of("text/plain") == "plain"


def test_best_match_and_patterns() -> None:
    assert best_match(None, ["a/b", "c/d"]) == "a/b"
    assert best_match("c/*", ["a/b", "c/d"]) == "c/d"
    assert best_match("x/y", ["a/b"]) is None
    assert accept_patterns(None) == []
    with pytest.raises(ValueError):
        accept_patterns("nonsense")


# -- bodies ----------------------------------------------------------------------------

OBJECTS: list[ObjectRow | SubdirRow] = [
    ObjectRow(name="a.txt", hash="h1", bytes=5, content_type="text/plain", last_modified=LM),
    SubdirRow(subdir="dir/"),
    ObjectRow(name="☃", hash="h2", bytes=0, content_type="a/b", last_modified=LM,
              extra=(("symlink_path", "/v1/a/c/o"),)),
]
CONTAINERS: list[ContainerRow | SubdirRow] = [
    ContainerRow(name="c1", count=2, bytes=7, last_modified=LM),
    SubdirRow(subdir="p-"),
    ContainerRow(name="c2", count=0, bytes=0, last_modified=LM, storage_policy="gold"),
]


def test_object_listing_json_has_swifts_key_order_and_ascii_escapes() -> None:
    body, ctype = render_object_listing("c", OBJECTS, "json")
    assert ctype == "application/json; charset=utf-8"
    assert body == (
        b'[{"bytes": 5, "hash": "h1", "name": "a.txt", "content_type": "text/plain", '
        b'"last_modified": "2024-01-02T03:04:05.123450"}, {"subdir": "dir/"}, '
        b'{"bytes": 0, "hash": "h2", "name": "\\u2603", "content_type": "a/b", '
        b'"last_modified": "2024-01-02T03:04:05.123450", "symlink_path": "/v1/a/c/o"}]'
    )
    assert json.loads(body)[2]["name"] == "☃"


@given(st.lists(st.one_of(
    st.builds(SubdirRow, subdir=st.text()),
    st.builds(ObjectRow, name=st.text(), hash=st.text(), bytes=st.integers(min_value=0),
              content_type=st.text(), last_modified=st.text(), extra=st.just(())),
)))
def test_object_listing_json_is_json_dumps_byte_for_byte(rows: list[ObjectRow | SubdirRow]
                                                         ) -> None:
    records = [{"subdir": r.subdir} if isinstance(r, SubdirRow) else {
        "bytes": r.bytes, "hash": r.hash, "name": r.name, "content_type": r.content_type,
        "last_modified": r.last_modified} for r in rows]
    body, _ = render_object_listing("c", rows, "json")
    assert body == json.dumps(records).encode("ascii")


stamps = st.builds(lambda t, o: Timestamp(t / 100_000, offset=o).internal,
                   st.integers(min_value=0, max_value=10**15 - 1), st.sampled_from([0, 0, 7]))
content_types = st.one_of(st.text(), st.sampled_from([
    "application/octet-stream;swift_bytes=1048576", "text/plain; swift_bytes=12",
    "x/y;swift_bytes=", "text/html; charset=utf-8", "a/b;symlink_target=c/o"]))


@given(st.lists(st.one_of(
    st.builds(lambda n: Subdir(n), st.text()),
    st.builds(ListedObject, name=st.text(), created_at=stamps,
              size=st.integers(min_value=0, max_value=2**63), content_type=content_types,
              etag=st.text()),
), max_size=8), st.sampled_from(["json", "xml", "plain"]))
def test_a_stored_listing_renders_as_its_rows_do(
        entries: list[ListedObject | Subdir], fmt: str) -> None:
    expected = render_object_listing("c", object_rows(entries), fmt)  # type: ignore[arg-type]
    assert render_stored_listing("c", entries, fmt) == expected  # type: ignore[arg-type]


def test_object_listing_json_keeps_values_a_middleware_left_odd() -> None:
    rows: list[ObjectRow | SubdirRow] = [
        ObjectRow(name="a", hash=None, bytes=True, content_type="t", last_modified=LM),  # type: ignore[arg-type]
    ]
    body, _ = render_object_listing("c", rows, "json")
    assert json.loads(body) == [{"bytes": True, "hash": None, "name": "a", "content_type": "t",
                                 "last_modified": LM}]


def test_account_listing_json() -> None:
    body, ctype = render_account_listing("AUTH_a", CONTAINERS, "application/json")
    assert ctype == "application/json; charset=utf-8"
    assert body == (
        b'[{"name": "c1", "count": 2, "bytes": 7, "last_modified": "2024-01-02T03:04:05.123450"}'
        b', {"subdir": "p-"}, {"name": "c2", "count": 0, "bytes": 0, '
        b'"last_modified": "2024-01-02T03:04:05.123450", "storage_policy": "gold"}]'
    )


def test_empty_json_listing_is_an_empty_array_with_200() -> None:
    body, _ = render_object_listing("c", [], "json")
    assert body == b"[]" and listing_status(body) == 200


def test_object_listing_xml_is_swifts() -> None:
    body, ctype = render_object_listing("c&<\"", OBJECTS[:2], "xml")
    assert ctype == "application/xml; charset=utf-8"
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<container name="c&amp;&lt;&quot;">'
        b"<object><name>a.txt</name><hash>h1</hash><bytes>5</bytes>"
        b"<content_type>text/plain</content_type>"
        b"<last_modified>2024-01-02T03:04:05.123450</last_modified></object>"
        b'<subdir name="dir/"><name>dir/</name></subdir>'
        b"</container>"
    )


def test_xml_escapes_names_and_is_utf8() -> None:
    rows: list[ObjectRow | SubdirRow] = [
        ObjectRow(name='<&>"☃', hash="h", bytes=1, content_type="t/t", last_modified=LM)
    ]
    body, _ = render_object_listing("c", rows, "text/xml")
    assert "<name>&lt;&amp;&gt;\"☃</name>".encode() in body
    assert ET.fromstring(body).find("object/name").text == '<&>"☃'  # type: ignore[union-attr]


def test_empty_container_xml() -> None:
    body, ctype = render_object_listing("c", [], "text/xml")
    assert ctype == "text/xml; charset=utf-8"
    assert body == b'<?xml version="1.0" encoding="UTF-8"?>\n<container name="c" />'
    assert listing_status(body) == 200


def test_account_listing_xml_is_swifts() -> None:
    body, ctype = render_account_listing("AUTH_a", CONTAINERS, "xml")
    assert ctype == "application/xml; charset=utf-8"
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<account name="AUTH_a">\n'
        b"<container><name>c1</name><count>2</count><bytes>7</bytes>"
        b"<last_modified>2024-01-02T03:04:05.123450</last_modified></container>\n"
        b'<subdir name="p-" />\n'
        b"<container><name>c2</name><count>0</count><bytes>0</bytes>"
        b"<last_modified>2024-01-02T03:04:05.123450</last_modified>"
        b"<storage_policy>gold</storage_policy></container>\n"
        b"</account>"
    )
    empty, _ = render_account_listing("AUTH_a", [], "xml")
    assert empty == b'<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n</account>'


def test_plain_listings_are_one_name_per_line() -> None:
    body, ctype = render_object_listing("c", OBJECTS, "plain")
    assert ctype == "text/plain; charset=utf-8"
    assert body == "a.txt\ndir/\n☃\n".encode()
    body, _ = render_account_listing("a", CONTAINERS, "text/plain")
    assert body == b"c1\np-\nc2\n"
    assert listing_status(body) == 200


def test_empty_plain_listing_is_204() -> None:
    body, ctype = render_account_listing("a", [], "plain")
    assert body == b"" and ctype == "text/plain; charset=utf-8"
    assert listing_status(body) == 204


names = st.text(min_size=1, max_size=20).filter(
    lambda s: all(c in "\t\n\r" or (c >= " " and c not in "\ud800\udfff") for c in s)
    and "\x7f" not in s
)


@given(st.lists(names, max_size=5))
def test_every_format_lists_the_same_names(name_list: list[str]) -> None:
    rows: list[ObjectRow | SubdirRow] = [
        ObjectRow(name=n, hash="h", bytes=1, content_type="t/t", last_modified=LM)
        for n in name_list
    ]
    as_json, _ = render_object_listing("c", rows, "json")
    assert [r["name"] for r in json.loads(as_json)] == name_list
    as_xml, _ = render_object_listing("c", rows, "xml")
    parsed = [e.text for e in ET.fromstring(as_xml).iter("name")]
    assert parsed == [n.replace("\r\n", "\n").replace("\r", "\n") for n in name_list]
    as_text, _ = render_object_listing("c", rows, "plain")
    assert as_text == b"".join(n.encode() + b"\n" for n in name_list)
