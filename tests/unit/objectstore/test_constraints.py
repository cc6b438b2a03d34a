"""objectstore.constraints: Swift's limits, with Swift's statuses and body texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.objectstore.constraints import (
    DEFAULT_LIMITS,
    MAX_DELETE_AT,
    ConstraintError,
    Limits,
    ObjectCreation,
    check_account_name,
    check_container_name,
    check_delete_headers,
    check_metadata,
    check_metadata_total,
    check_object_creation,
    check_object_name,
    clean_content_type,
    config_true_value,
    decode_utf8,
    message_length,
    parse_timestamp_header,
    resolve_content_type,
    valid_api_version,
)
from pocketstack.objectstore.timestamp import Timestamp

NOW = 1_700_000_000.5


def error(fn: object, *args: object, **kwargs: object) -> ConstraintError:
    with pytest.raises(ConstraintError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


# -- limits ----------------------------------------------------------------------------


def test_defaults_are_swifts() -> None:
    limits = Limits()
    assert limits.max_file_size == 5 * 1024**3 + 2 == 5368709122
    assert (limits.max_meta_name_length, limits.max_meta_value_length) == (128, 256)
    assert (limits.max_meta_count, limits.max_meta_overall_size) == (90, 4096)
    assert limits.max_header_size == 8192
    assert limits.max_object_name_length == 1024
    assert limits.container_listing_limit == limits.account_listing_limit == 10000
    assert limits.max_account_name_length == limits.max_container_name_length == 256
    assert limits.valid_api_versions == ("v1", "v1.0")
    assert limits.extra_header_count == 0
    assert limits.max_header_count == 90 + 36


def test_info_section_uses_swift_names() -> None:
    info = Limits(extra_header_count=3).as_info()
    assert info["max_file_size"] == 5368709122
    assert info["valid_api_versions"] == ["v1", "v1.0"]
    assert info["extra_header_count"] == 3
    assert "container_listing_limit" in info
    assert "max_header_count" not in info


def test_limits_are_frozen_and_overridable() -> None:
    small = Limits(max_object_name_length=10)
    assert small.max_object_name_length == 10
    with pytest.raises(AttributeError):
        small.max_object_name_length = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True), ("t", True),
     ("y", True), (True, True), ("false", False), ("0", False), ("", False), (None, False),
     (1, False), ("tru", False)],
)
def test_config_true_value(value: object, expected: bool) -> None:
    assert config_true_value(value) is expected


def test_valid_api_version() -> None:
    assert valid_api_version("v1") and valid_api_version("v1.0")
    assert not valid_api_version("v2") and not valid_api_version("V1")
    assert valid_api_version("v2", limits=Limits(valid_api_versions=("v2",)))


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize("check", [check_account_name, check_container_name, check_object_name])
@pytest.mark.parametrize("raw", [b"\xff", b"a\xc3", b"a\x00b", "a\x00b", "\ud800", b"\xed\xa0\x80"])
def test_invalid_utf8_or_nul_is_412(check: object, raw: str | bytes) -> None:
    err = error(check, raw)
    assert (err.status, err.message) == (412, "Invalid UTF8 or contains NULL")


@pytest.mark.parametrize(
    ("check", "kind"),
    [(check_account_name, "Account"), (check_container_name, "Container"),
     (check_object_name, "Object")],
)
def test_empty_name_is_412(check: object, kind: str) -> None:
    err = error(check, b"")
    assert (err.status, err.message) == (412, f"{kind} name cannot be empty")


@pytest.mark.parametrize(
    ("check", "kind"), [(check_account_name, "Account"), (check_container_name, "Container")]
)
def test_slash_in_account_or_container_name_is_412(check: object, kind: str) -> None:
    err = error(check, "a/b")
    assert (err.status, err.message) == (412, f"{kind} name cannot contain slashes")


@pytest.mark.parametrize("name", ["a/../b", "../../etc/passwd", "/leading", "trailing/", ".",
                                  "..", "a//b", "☃/snow man", "x" * 1024])
def test_object_names_are_data_and_may_hold_slashes_and_dots(name: str) -> None:
    assert check_object_name(name) == name
    assert check_object_name(name.encode("utf-8")) == name


def test_bytes_are_decoded_as_utf8() -> None:
    assert check_container_name("☃".encode()) == "☃"
    assert check_account_name(b"AUTH_test") == "AUTH_test"


def test_name_lengths_count_utf8_bytes() -> None:
    assert check_object_name("é" * 512) == "é" * 512
    err = error(check_object_name, "é" * 513)
    assert (err.status, err.message) == (400, "Object name length of 1026 longer than 1024")
    err = error(check_container_name, "c" * 257)
    assert (err.status, err.message) == (400, "Container name length of 257 longer than 256")
    err = error(check_account_name, "a" * 257)
    assert (err.status, err.message) == (400, "Account name length of 257 longer than 256")
    assert check_container_name("c" * 256) == "c" * 256


def test_length_check_can_be_skipped_for_reads() -> None:
    assert check_container_name("c" * 300, check_length=False) == "c" * 300
    assert check_object_name("o" * 2000, check_length=False) == "o" * 2000


def test_limits_override_name_lengths() -> None:
    err = error(check_object_name, "abcd", limits=Limits(max_object_name_length=3))
    assert err.message == "Object name length of 4 longer than 3"


@given(st.text(min_size=1).filter(lambda s: "\x00" not in s and "/" not in s))
def test_any_utf8_text_without_nul_or_slash_is_a_valid_container_name(name: str) -> None:
    assert check_container_name(name.encode("utf-8"), check_length=False) == name


@given(st.binary())
def test_decode_utf8_agrees_with_strict_decoding(raw: bytes) -> None:
    try:
        expected: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        expected = None
    if expected is not None and "\x00" in expected:
        expected = None
    assert decode_utf8(raw) == expected


# -- metadata --------------------------------------------------------------------------


def test_metadata_within_limits_passes() -> None:
    check_metadata({"X-Object-Meta-Color": "blue", "Content-Type": "x/y"}, "object")
    check_metadata([("x-container-meta-a", "")], "container")


def test_empty_meta_name_is_400() -> None:
    err = error(check_metadata, {"X-Object-Meta-": "v"}, "object")
    assert (err.status, err.message) == (400, "Metadata name cannot be empty")


def test_meta_name_too_long_names_the_header_as_swift() -> None:
    key = "a" * 129
    err = error(check_metadata, {f"X-Object-Meta-{key}": "v"}, "object")
    assert err.status == 400
    assert err.message == "Metadata name too long: x-object-meta-" + "A" + "a" * 128
    check_metadata({f"X-Object-Meta-{'a' * 128}": "v"}, "object")


def test_meta_value_too_long() -> None:
    err = error(check_metadata, {"x-container-meta-big": "v" * 257}, "container")
    assert err.status == 400
    assert err.message == "Metadata value longer than 256: x-container-meta-Big"
    check_metadata({"x-container-meta-big": "v" * 256}, "container")


def test_meta_lengths_are_bytes_of_the_wire_string() -> None:
    value = "é".encode().decode("latin-1") * 128  # 256 wire bytes: at the limit
    check_metadata({"X-Object-Meta-K": value}, "object")
    err = error(check_metadata, {"X-Object-Meta-K": value + "x"}, "object")
    assert err.message.startswith("Metadata value longer than 256")


def test_too_many_meta_items() -> None:
    headers = [(f"X-Account-Meta-K{i}", "v") for i in range(91)]
    err = error(check_metadata, headers, "account")
    assert (err.status, err.message) == (400, "Too many metadata items; max 90")
    check_metadata(headers[:90], "account")


def test_total_meta_size() -> None:
    headers = [(f"X-Object-Meta-K{i:02d}", "v" * 200) for i in range(20)]  # 20 * 203 = 4060
    check_metadata(headers, "object")
    err = error(check_metadata, [*headers, ("X-Object-Meta-Last", "v" * 40)], "object")
    assert (err.status, err.message) == (400, "Total metadata too large; max 4096")


def test_only_the_targets_prefix_counts() -> None:
    headers = [(f"X-Container-Meta-K{i}", "v") for i in range(100)]
    check_metadata(headers, "object")


def test_header_value_too_long_for_any_header() -> None:
    err = error(check_metadata, {"x-trans-id-extra": "v" * 8193}, "object")
    assert (err.status, err.message) == (400, "Header value too long: X-Trans-Id-Extra")
    check_metadata({"x-anything": "v" * 8192}, "object")


def test_metadata_total_counts_stored_and_new_items() -> None:
    """Swift's DatabaseBroker.validate_metadata: the merge of what is stored and what a
    request sets (an empty value removes) must fit, though each request fits alone."""
    stored = {f"X-Container-Meta-{i:04d}": "v" * 256 for i in range(15)}  # 3900 bytes
    stored["X-Container-Meta-K"] = "y" * 195  # 4096 in total, on the border
    stored["X-Container-Read"] = "x" * 300  # not user metadata: not counted
    check_metadata_total(stored, {}, "container")
    check_metadata_total(stored, {"x-container-meta-k": "z" * 195}, "container")
    assert error(check_metadata_total, stored, {"X-Container-Meta-k": "z" * 196},
                 "container").message == "Total metadata too large; max 4096"
    assert error(check_metadata_total, stored, {"X-Container-Meta-New": "1"},
                 "container").status == 400
    check_metadata_total(stored, {"X-Container-Meta-0000": "", "X-Container-Meta-New": "1"},
                         "container")
    many = {f"X-Account-Meta-{i}": "1" for i in range(90)}
    check_metadata_total(many, {}, "account")
    assert error(check_metadata_total, many, {"X-Account-Meta-More": "1"},
                 "account").message == "Too many metadata items; max 90"
    assert error(check_metadata_total, {}, {"X-Account-Meta-A": "1"}, "account",
                 limits=Limits(max_meta_count=0)).status == 400


def test_account_and_container_metadata_must_be_utf8() -> None:
    bad = b"\xff".decode("latin-1")
    for target in ("account", "container"):
        err = error(check_metadata, {f"X-{target}-Meta-K": bad}, target)
        assert (err.status, err.message) == (400, "Metadata must be valid UTF-8")
        err = error(check_metadata, {f"X-{target}-Meta-K{bad}": "v"}, target)
        assert err.message == "Metadata must be valid UTF-8"
    check_metadata({"X-Object-Meta-K": bad}, "object")  # objects keep raw bytes
    good = "☃".encode().decode("latin-1")
    check_metadata({"X-Container-Meta-Snow": good}, "container")


# -- object creation -------------------------------------------------------------------


def create(
    headers: dict[str, str], name: str = "o", limits: Limits = DEFAULT_LIMITS
) -> ObjectCreation:
    return check_object_creation(headers, name, now=NOW, limits=limits)


def test_valid_put_reports_length_and_expiry() -> None:
    info = create({"Content-Length": "5", "Content-Type": "text/plain"})
    assert (info.content_length, info.chunked, info.delete_at) == (5, False, None)
    info = create({"Transfer-Encoding": "chunked", "Content-Type": "a/b",
                   "X-Delete-After": "60"})
    assert (info.content_length, info.chunked) == (None, True)
    assert info.delete_at == int(NOW) + 60


def test_too_large_is_413() -> None:
    err = error(create, {"Content-Length": str(5368709123), "Content-Type": "a/b"})
    assert (err.status, err.message) == (413, "Your request is too large.")
    create({"Content-Length": str(5368709122), "Content-Type": "a/b"})
    err = error(create, {"Content-Length": "11", "Content-Type": "a/b"},
                limits=Limits(max_file_size=10))
    assert err.status == 413


def test_missing_length_is_411() -> None:
    err = error(create, {"Content-Type": "a/b"})
    assert (err.status, err.message) == (411, "Missing Content-Length header.")


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", ""])
def test_bad_content_length_is_400(value: str) -> None:
    err = error(message_length, {"Content-Length": value})
    assert (err.status, err.message) == (400, "Invalid Content-Length header value")


def test_transfer_encoding_rules() -> None:
    assert message_length({"Transfer-Encoding": "Chunked", "Content-Length": "x"}) == (None, True)
    err = error(message_length, {"Transfer-Encoding": "gzip"})
    assert (err.status, err.message) == (400, "Invalid Transfer-Encoding header value")
    err = error(message_length, {"Transfer-Encoding": "gzip, chunked"})
    assert err.status == 501
    assert err.message == ("Unsupported Transfer-Coding header value specified in "
                           "Transfer-Encoding header")
    assert message_length({}) == (None, False)


def test_object_name_too_long_on_create() -> None:
    err = error(create, {"Content-Length": "0", "Content-Type": "a/b"}, "x" * 1025)
    assert (err.status, err.message) == (400, "Object name length of 1025 longer than 1024")


def test_missing_or_invalid_content_type() -> None:
    err = error(create, {"Content-Length": "0"})
    assert (err.status, err.message) == (400, "No content type")
    err = error(create, {"Content-Length": "0", "Content-Type": "\xff"})
    assert (err.status, err.message) == (400, "Invalid Content-Type")


def test_delete_header_errors_come_before_content_type_and_metadata() -> None:
    err = error(create, {"Content-Length": "0", "Content-Type": "\xff", "X-Delete-At": "x"})
    assert err.message == "Non-integer X-Delete-At"


def test_metadata_is_checked_on_create() -> None:
    err = error(create, {"Content-Length": "0", "Content-Type": "a/b", "X-Object-Meta-": "v"})
    assert err.message == "Metadata name cannot be empty"


# -- content type ----------------------------------------------------------------------


def test_resolve_content_type() -> None:
    assert resolve_content_type({"Content-Type": "text/x"}, "a.json") == "text/x"
    assert resolve_content_type({}, "photo.jpg") == "image/jpeg"
    assert resolve_content_type({"Content-Type": ""}, "dir/readme.txt") == "text/plain"
    assert resolve_content_type({}, "noext") == "application/octet-stream"
    assert resolve_content_type({}, "data:text/html,x") == "application/octet-stream"
    detect = {"Content-Type": "text/x", "X-Detect-Content-Type": "true"}
    assert resolve_content_type(detect, "a.html") == "text/html"
    assert resolve_content_type({"content-type": "a/b;swift_bytes=5"}, "o") == "a/b"


def test_clean_content_type() -> None:
    assert clean_content_type("text/plain; swift_bytes=12") == "text/plain"
    assert clean_content_type("text/plain;charset=utf-8") == "text/plain;charset=utf-8"
    assert clean_content_type("a/b;x=1;swift_bytes=3") == "a/b;x=1"


# -- timestamps and expiry -------------------------------------------------------------


def test_parse_timestamp_header() -> None:
    assert parse_timestamp_header("1700000000.12345") == Timestamp("1700000000.12345")
    err = error(parse_timestamp_header, None)
    assert (err.status, err.message) == (400, "Missing X-Timestamp header")
    err = error(parse_timestamp_header, "soon")
    assert err.message == "X-Timestamp should be a UNIX timestamp float value; was 'soon'"


def test_delete_after_becomes_delete_at() -> None:
    assert check_delete_headers({"X-Delete-After": "10"}, now=NOW) == int(NOW) + 10
    assert check_delete_headers({"x-delete-after": "10", "x-delete-at": "5"}, now=NOW) == (
        int(NOW) + 10
    )
    assert check_delete_headers({}, now=NOW) is None


def test_delete_after_errors() -> None:
    err = error(check_delete_headers, {"X-Delete-After": "soon"}, now=NOW)
    assert (err.status, err.message) == (400, "Non-integer X-Delete-After")
    err = error(check_delete_headers, {"X-Delete-After": "0"}, now=NOW)
    assert (err.status, err.message) == (400, "X-Delete-After in past")
    err = error(check_delete_headers, {"X-Delete-After": "-5"}, now=NOW)
    assert err.message == "X-Delete-After in past"
    assert check_delete_headers({"X-Delete-After": "1"}, now=NOW) == int(NOW) + 1


def test_delete_at_errors() -> None:
    err = error(check_delete_headers, {"X-Delete-At": "1.5"}, now=NOW)
    assert (err.status, err.message) == (400, "Non-integer X-Delete-At")
    err = error(check_delete_headers, {"X-Delete-At": str(int(NOW))}, now=NOW)
    assert (err.status, err.message) == (400, "X-Delete-At in past")
    err = error(check_delete_headers, {"X-Delete-At": "-1"}, now=NOW)
    assert err.message == "X-Delete-At in past"
    assert check_delete_headers({"X-Delete-At": str(int(NOW) + 1)}, now=NOW) == int(NOW) + 1


def test_huge_expiry_values_are_clamped() -> None:
    assert check_delete_headers({"X-Delete-At": "9" * 30}, now=NOW) == MAX_DELETE_AT
    assert check_delete_headers({"X-Delete-After": "9" * 400}, now=NOW) == MAX_DELETE_AT


def test_default_limits_are_the_defaults() -> None:
    assert Limits() == DEFAULT_LIMITS
