"""Where object versioning keeps versions: reserved names, inverted version ids."""

from __future__ import annotations

import pytest

from pocketstack.objectstore.proxy.middleware.object_versioning_names import (
    invert,
    object_prefix,
    parse_version_object,
    reserved_name,
    valid_version_id,
    version_id_of,
    version_object,
    versions_container,
)
from pocketstack.objectstore.timestamp import Timestamp


def test_inversion_matches_swift() -> None:
    # Swift: ~Timestamp('1234567890.12345') == Timestamp('8765432109.87654')
    assert invert(Timestamp("1234567890.12345")).internal == "8765432109.87654"
    assert invert(Timestamp("0000000000.00000")).internal == "9999999999.99999"
    with_offset = Timestamp("1234567890.12345", offset=1)
    assert invert(with_offset).internal == "8765432109.87653_ffffffffffffffff"
    for stamp in (Timestamp("1700000000.5"), with_offset, Timestamp("9999999999.99999")):
        assert invert(invert(stamp)) == stamp


def test_later_versions_sort_first() -> None:
    early = version_object("o", "1700000000.00001")
    late = version_object("o", "1700000000.00002")
    assert late < early
    # every version of "a" sorts before any version of "a/b" or "ab"
    assert version_object("a", "1.0") < version_object("a/b", "9.0") < \
        version_object("ab", "9.0")
    assert version_object("a", "1.0").startswith(object_prefix("a"))


def test_names_round_trip() -> None:
    assert versions_container("c") == "\x00versions\x00c"
    name = version_object("dir/ö", "1700000000.12345")
    assert name.startswith("\x00dir/ö\x00")
    assert parse_version_object(name) == ("dir/ö", "1700000000.12345")
    assert parse_version_object("plain") == ("plain", None)
    assert parse_version_object("\x00o\x00garbage") == ("\x00o\x00garbage", None)
    with pytest.raises(ValueError):
        reserved_name("a\x00b")


def test_version_ids() -> None:
    assert version_id_of(Timestamp("1700000000.12345", offset=7)) == "1700000000.12345"
    assert valid_version_id("null") and not valid_version_id("null", allow_null=False)
    assert valid_version_id("1700000000.12345") and not valid_version_id("bad")
