"""Tiers, the tier tree, device strings and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocketstack.objectstore.ring.types import Device, DeviceId
from pocketstack.objectstore.ring.utils import (
    DeviceSearch,
    DeviceSpec,
    atomic_write_bytes,
    build_tier_tree,
    parse_device_spec,
    parse_search_value,
    ring_path_for,
    tiers_for_dev,
    validate_ip,
    validate_weight,
)


def _dev(dev_id: int, region: int = 1, zone: int = 1, ip: str = "10.0.0.1",
         device: str = "sdb", meta: str = "") -> Device:
    return Device(DeviceId(dev_id), region, zone, ip, 6200, device, 100.0, meta)


def test_tiers_for_dev() -> None:
    assert tiers_for_dev(_dev(7, 1, 2, "10.0.0.1")) == (
        (1,), (1, 2), (1, 2, "10.0.0.1"), (1, 2, "10.0.0.1", 7))


def test_build_tier_tree() -> None:
    devs = [_dev(0, 1, 1, "a"), _dev(1, 1, 1, "a"), _dev(2, 1, 2, "c"), _dev(3, 2, 1, "d")]
    tree = build_tier_tree(devs)
    assert tree[()] == [(1,), (2,)]
    assert tree[(1,)] == [(1, 1), (1, 2)]
    assert tree[(1, 1)] == [(1, 1, "a")]
    assert tree[(1, 1, "a")] == [(1, 1, "a", 0), (1, 1, "a", 1)]
    assert tree[(2, 1, "d")] == [(2, 1, "d", 3)]
    assert (1, 1, "a", 0) not in tree
    assert build_tier_tree([]) == {}


def test_tier_tree_sorts_numbers_as_numbers() -> None:
    tree = build_tier_tree([_dev(0, 10), _dev(1, 9)])
    assert tree[()] == [(9,), (10,)]


@pytest.mark.parametrize(("text", "expected"), [
    ("d3", DeviceSearch(id=3)),
    ("12", DeviceSearch(id=12)),
    ("r1", DeviceSearch(region=1)),
    ("z2", DeviceSearch(zone=2)),
    ("r1z2-10.0.0.1", DeviceSearch(region=1, zone=2, ip="10.0.0.1")),
    ("-10.0.0.1:6200", DeviceSearch(ip="10.0.0.1", port=6200)),
    ("10.0.0.1", DeviceSearch(ip="10.0.0.1")),
    ("10.0.0.1:6200/sdb", DeviceSearch(ip="10.0.0.1", port=6200, device="sdb")),
    (":6200", DeviceSearch(port=6200)),
    ("/sdb", DeviceSearch(device="sdb")),
    ("_fast ssd", DeviceSearch(meta="fast ssd")),
    ("d1r1z1-[::1]:6200/sdb_m", DeviceSearch(1, 1, 1, "::1", 6200, "sdb", "m")),
    ("[2001:DB8::1]", DeviceSearch(ip="2001:db8::1")),
    ("r1z1-Storage.Example:6200", DeviceSearch(region=1, zone=1, ip="storage.example",
                                                port=6200)),
])
def test_parse_search_value(text: str, expected: DeviceSearch) -> None:
    assert parse_search_value(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "z", "dx", "r1z1-10.0.0.1:port", "-[zz]",
                                  "-300.1.1.1", "d1 z2", "r1z1-a b"])
def test_parse_search_value_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_search_value(text)


def test_search_matches() -> None:
    dev = _dev(4, 1, 2, "10.0.0.1", "sdb", "ssd")
    assert parse_search_value("z2").matches(dev)
    assert parse_search_value("r1z2-10.0.0.1:6200/sdb_ssd").matches(dev)
    assert not parse_search_value("z3").matches(dev)
    assert not parse_search_value("/sdc").matches(dev)
    assert DeviceSearch().is_empty() and not parse_search_value("d0").is_empty()


def test_parse_device_spec() -> None:
    assert parse_device_spec("r2z3-10.0.0.1:6200/sdb_note") == DeviceSpec(
        2, 3, "10.0.0.1", 6200, "sdb", "note")
    assert parse_device_spec("z1-[::1]:6201/d1") == DeviceSpec(1, 1, "::1", 6201, "d1")


@pytest.mark.parametrize("text", [
    "r1-10.0.0.1:6200/sdb",         # no zone
    "r1z1:6200/sdb",                # no ip
    "r1z1-10.0.0.1/sdb",            # no port
    "r1z1-10.0.0.1:6200",           # no device
    "d1r1z1-10.0.0.1:6200/sdb",     # an id
    "r1z1-10.0.0.1:70000/sdb",      # port out of range
    "r1z1-10.0.0.1:0/sdb",
    "r1z99999-10.0.0.1:6200/sdb",   # zone out of range
    "r1z1-10.0.0.1:6200/.hidden",   # device name must start with a letter or digit
    "nonsense",
])
def test_parse_device_spec_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_device_spec(text)


@pytest.mark.parametrize(("raw", "normal"), [
    ("10.0.0.1", "10.0.0.1"), ("::0001", "::1"), ("[::1]", "::1"),
    ("Node-1.Example.COM", "node-1.example.com"), ("localhost", "localhost"),
])
def test_validate_ip(raw: str, normal: str) -> None:
    assert validate_ip(raw) == normal


@pytest.mark.parametrize("raw", ["", "1.2.3", "10.0.0.256", "bad host", "-x.example",
                                 "a_b.example", "[::1", "x" * 300])
def test_validate_ip_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        validate_ip(raw)


@pytest.mark.parametrize("raw", [-1, float("nan"), float("inf"), "abc", True, None])
def test_validate_weight_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        validate_weight(raw)  # type: ignore[arg-type]


def test_validate_weight_accepts() -> None:
    assert validate_weight(0) == 0.0
    assert validate_weight(12.5) == 12.5


def test_ring_path_for() -> None:
    assert ring_path_for(Path("/r/object-1.builder")) == Path("/r/object-1.ring")
    assert ring_path_for(Path("/r/account")) == Path("/r/account.ring")


def test_atomic_write_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_atomic_write_bytes_cleans_up_on_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "f", "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


names = st.from_regex(r"[a-z][a-z0-9.-]{0,10}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 65534), st.integers(0, 65535), st.integers(0, 65535),
       st.one_of(st.ip_addresses().map(str), names.filter(lambda n: n[-1] not in ".-")),
       st.integers(1, 65535), names, st.text(alphabet="abc xyz_", max_size=10))
def test_device_string_round_trip(dev_id: int, region: int, zone: int, ip: str, port: int,
                                  device: str, meta: str) -> None:
    """str(device) is a search value that matches exactly that device."""
    try:
        ip = validate_ip(ip)
    except ValueError:
        return
    dev = Device(DeviceId(dev_id), region, zone, ip, port, device, 1.0, meta)
    search = parse_search_value(str(dev))
    assert search == DeviceSearch(dev_id, region, zone, ip, port, device, meta or None)
    assert search.matches(dev)
