"""Legacy versioning: the names of versions and the stored location."""

from __future__ import annotations

from pocketstack.objectstore.proxy.middleware.versioned_writes import (
    location_name,
    version_name,
    version_prefix,
)


def test_version_names_use_the_utf8_length() -> None:
    assert version_prefix("obj") == "003obj/"
    assert version_prefix("ö") == "002ö/"  # two UTF-8 bytes
    assert version_name("a/b", "1700000000.12345") == "003a/b/1700000000.12345"


def test_locations_are_percent_decoded_wire_strings() -> None:
    assert location_name("versions") == "versions"
    assert location_name("v%20s") == "v s"
    assert location_name("☃".encode().decode("latin-1")) == "☃"  # raw UTF-8 bytes
    assert location_name("a%2Fb") == "a"
