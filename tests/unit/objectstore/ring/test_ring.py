"""RingData (file format) and Ring (lookups, handoffs, reloading)."""

from __future__ import annotations

import gzip
import hashlib
import logging
import struct
from array import array
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.ring.ring import MAGIC, Ring, RingData
from pocketstack.objectstore.ring.types import Device, DeviceId, RingFormatError

from .helpers import Slot, make_builder

HASHER = PathHasher(prefix=b"pre", suffix=b"suf")
FOUR_ZONES = [Slot(1, z, h, 100.0) for z in (1, 2, 3, 4) for h in range(2)]  # 8 devices


def _ring_data(layout: list[Slot] = FOUR_ZONES, part_power: int = 8, replicas: int = 3,
               seed: int = 1) -> RingData:
    builder = make_builder(layout, part_power=part_power, replicas=replicas)
    builder.rebalance(seed=seed)
    return builder.get_ring()


@pytest.fixture
def ring_file(tmp_path: Path) -> Path:
    path = tmp_path / "object.ring"
    _ring_data().save(path)
    return path


# --- RingData ---------------------------------------------------------------------------

def test_round_trip(tmp_path: Path) -> None:
    data = _ring_data()
    data.save(tmp_path / "x.ring")
    loaded = RingData.load(tmp_path / "x.ring")
    assert loaded.replica2part2dev_id == data.replica2part2dev_id
    assert loaded.devs == data.devs
    assert (loaded.part_shift, loaded.version, loaded.part_power) == (24, 1, 8)
    assert loaded.partition_count == 256 and loaded.replica_count == 3


def test_equal_rings_are_equal_bytes(tmp_path: Path) -> None:
    _ring_data().save(tmp_path / "a.ring")
    _ring_data().save(tmp_path / "b.ring")
    RingData.load(tmp_path / "a.ring").save(tmp_path / "c.ring")
    raw = (tmp_path / "a.ring").read_bytes()
    assert raw == (tmp_path / "b.ring").read_bytes() == (tmp_path / "c.ring").read_bytes()
    assert raw != _ring_data(seed=2).to_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ring", "b.ring", "c.ring"]


def test_file_layout_is_documented_format() -> None:
    data = _ring_data(part_power=2, replicas=1)
    payload = gzip.decompress(data.to_bytes())
    assert payload[:4] == MAGIC
    assert struct.unpack_from(">H", payload, 4) == (1,)
    (header_len,) = struct.unpack_from(">I", payload, 6)
    tables = payload[10 + header_len:]
    assert list(struct.unpack(">4H", tables)) == list(data.replica2part2dev_id[0])


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "x.ring"
    path.write_bytes(b"old")
    _ring_data().save(path)
    assert RingData.load(path).version == 1
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["x.ring"]


def _tweak_payload(data: RingData, mutate: object) -> bytes:
    payload = bytearray(gzip.decompress(data.to_bytes()))
    assert callable(mutate)
    return gzip.compress(bytes(mutate(payload)), mtime=0)


@pytest.mark.parametrize("mutate", [
    lambda p: p[:-1],                                     # truncated table
    lambda p: p + b"\0\0",                                # trailing bytes
    lambda p: b"XXXX" + p[4:],                            # bad magic
    lambda p: p[:4] + struct.pack(">H", 9) + p[6:],       # unknown version
    lambda p: p[:6] + struct.pack(">I", 3) + p[10:],      # bad header length
    lambda p: p[:8],                                      # no header
])
def test_load_rejects_damaged_files(tmp_path: Path, mutate: object) -> None:
    path = tmp_path / "x.ring"
    path.write_bytes(_tweak_payload(_ring_data(part_power=3), mutate))
    with pytest.raises(RingFormatError):
        RingData.load(path)


@pytest.mark.parametrize("content", [b"", b"plain text", b"\x1f\x8b\x08\x00broken"])
def test_load_rejects_non_ring_files(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.ring").write_bytes(content)
    with pytest.raises(RingFormatError):
        RingData.load(tmp_path / "x.ring")


def test_load_missing_file_is_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        RingData.load(tmp_path / "missing.ring")


def test_ring_data_validates() -> None:
    dev = Device(DeviceId(0), 1, 1, "10.0.0.1", 6200, "d0", 1.0)
    with pytest.raises(RingFormatError, match="partitions"):
        RingData([array("H", [0, 0, 0])], [dev], 30)
    with pytest.raises(RingFormatError, match="unknown devices"):
        RingData([array("H", [0, 1, 0, 0])], [dev], 30)
    with pytest.raises(RingFormatError, match="index 1"):
        RingData([array("H", [0, 0, 0, 0])], [dev, dev], 30)
    with pytest.raises(RingFormatError):
        RingData([], [dev], 30)
    with pytest.raises(RingFormatError):
        RingData([array("H", [0])], [dev], 2)


# --- Ring lookups -----------------------------------------------------------------------

def test_ring_properties(ring_file: Path) -> None:
    ring = Ring(ring_file, HASHER)
    assert (ring.partition_count, ring.replica_count, ring.part_power, ring.version) == (
        256, 3, 8, 1)
    assert [dev.id for dev in ring.devices] == list(range(8))


def test_get_part_is_top_bits_of_salted_md5(ring_file: Path) -> None:
    ring = Ring(ring_file, HASHER)
    digest = hashlib.md5(b"pre/AUTH_a/c/o/bj" + b"suf").digest()
    assert ring.get_part("AUTH_a", "c", "o/bj") == struct.unpack(">I", digest[:4])[0] >> 24
    with pytest.raises(ValueError):
        ring.get_part("AUTH_a", None, "o")


@pytest.fixture(scope="module")
def shared_ring(tmp_path_factory: pytest.TempPathFactory) -> Ring:
    path = tmp_path_factory.mktemp("ring") / "shared.ring"
    _ring_data().save(path)
    return Ring(path, HASHER)


@settings(max_examples=50, deadline=None)
@given(account=st.text(min_size=1, max_size=20), container=st.text(max_size=20),
       obj=st.text(max_size=20))
def test_get_part_is_stable_and_in_range(shared_ring: Ring, account: str, container: str,
                                         obj: str) -> None:
    ring = shared_ring
    part = ring.get_part(account, container, obj)
    assert 0 <= part < ring.partition_count
    assert part == ring.get_part(account, container, obj)
    assert ring.get_nodes(account, container, obj) == (part, ring.get_part_nodes(part))


def test_get_part_is_uniform(ring_file: Path) -> None:
    ring = Ring(ring_file, HASHER)
    counts = Counter(ring.get_part("AUTH_x", "c", f"obj-{i}") for i in range(25_600))
    assert len(counts) == 256
    assert max(counts.values()) < 160 and min(counts.values()) > 50  # mean 100, sd 10


def test_get_part_nodes(ring_file: Path) -> None:
    ring = Ring(ring_file, HASHER)
    data = RingData.load(ring_file)
    for part in range(ring.partition_count):
        nodes = ring.get_part_nodes(part)
        assert [n.id for n in nodes] == [row[part] for row in data.replica2part2dev_id]
        assert len({n.zone for n in nodes}) == 3
    for bad in (-1, 256):
        with pytest.raises(ValueError):
            ring.get_part_nodes(bad)


def test_handoffs_are_the_other_devices_new_tiers_first(ring_file: Path) -> None:
    ring = Ring(ring_file, HASHER)
    for part in range(0, ring.partition_count, 7):
        primaries = ring.get_part_nodes(part)
        handoffs = list(ring.get_more_nodes(part))
        assert {n.id for n in handoffs} == {d.id for d in ring.devices} - {
            n.id for n in primaries}
        assert len(handoffs) == len(ring.devices) - len(primaries)
        primary_zones = {n.zone for n in primaries}
        assert handoffs[0].zone not in primary_zones  # the one zone without a replica
        assert [n.id for n in ring.get_more_nodes(part)] == [n.id for n in handoffs]
    assert [n.id for n in Ring(ring_file, HASHER).get_more_nodes(3)] == [
        n.id for n in ring.get_more_nodes(3)]


def test_handoffs_prefer_new_regions_then_hosts(tmp_path: Path) -> None:
    layout = [Slot(1, 1, 0, 100.0), Slot(1, 1, 1, 100.0), Slot(1, 2, 0, 100.0),
              Slot(1, 2, 1, 100.0), Slot(2, 1, 0, 100.0), Slot(2, 1, 0, 100.0)]
    _ring_data(layout, part_power=6, replicas=2).save(tmp_path / "r.ring")
    ring = Ring(tmp_path / "r.ring", HASHER)
    for part in range(ring.partition_count):
        primaries = ring.get_part_nodes(part)
        handoffs = list(ring.get_more_nodes(part))
        seen_regions = {n.region for n in primaries}
        if seen_regions != {1, 2}:
            assert handoffs[0].region not in seen_regions
        hosts = [(n.region, n.zone, n.ip) for n in primaries + handoffs]
        unique_hosts = len(set(hosts))
        assert len(set(hosts[:unique_hosts])) == unique_hosts  # every host before repeats


def test_weight_zero_devices_are_last_handoffs(tmp_path: Path) -> None:
    builder = make_builder(FOUR_ZONES, part_power=5, replicas=2)
    builder.rebalance(seed=1)
    builder.set_dev_weight(7, 0)
    builder.pretend_min_part_hours_passed()
    builder.rebalance(seed=1)
    builder.get_ring().save(tmp_path / "w.ring")
    ring = Ring(tmp_path / "w.ring", HASHER)
    for part in range(ring.partition_count):
        assert [n.id for n in ring.get_more_nodes(part)][-1] == 7
    alone = make_builder([Slot(1, z, 0, 100.0) for z in (1, 2, 3)] + [Slot(1, 4, 0, 0.0)],
                         part_power=4, replicas=2)
    alone.rebalance(seed=1)
    alone.get_ring().save(tmp_path / "a.ring")
    ring = Ring(tmp_path / "a.ring", HASHER)
    for part in range(ring.partition_count):  # even alone in its zone
        assert [n.id for n in ring.get_more_nodes(part)][-1] == 3


def test_handoff_load_follows_weight(tmp_path: Path) -> None:
    """Zone 4 (one primary in 4 partitions) has a device of weight 100 and one of 300: the
    first handoff of the others goes to the heavy one about 3 times as often."""
    layout = [Slot(1, z, 0, 400.0) for z in (1, 2, 3)] + [Slot(1, 4, 0, 100.0),
                                                          Slot(1, 4, 1, 300.0)]
    _ring_data(layout, part_power=10, replicas=3).save(tmp_path / "h.ring")
    ring = Ring(tmp_path / "h.ring", HASHER)
    first: Counter[int] = Counter()
    for part in range(ring.partition_count):
        primaries = ring.get_part_nodes(part)
        if 4 not in {n.zone for n in primaries}:
            first[next(ring.get_more_nodes(part)).id] += 1
    assert sum(first.values()) > 200
    assert set(first) == {3, 4}
    assert first[4] > 2 * first[3]


# --- reloading --------------------------------------------------------------------------

def test_reload_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "o.ring"
    _ring_data(seed=1).save(path)
    ring = Ring(path, HASHER, reload_interval=3600)
    old_nodes = ring.get_part_nodes(5)
    builder = make_builder(FOUR_ZONES[:4], part_power=8, replicas=3)
    builder.rebalance(seed=9)
    builder.rebalance(seed=9)
    builder.get_ring().save(path)
    assert ring.get_part_nodes(5) == old_nodes  # not checked yet (interval)
    assert ring.reload_if_changed() is True
    assert ring.reload_if_changed() is False
    assert len(ring.devices) == 4


def test_automatic_reload_after_interval(tmp_path: Path) -> None:
    path = tmp_path / "o.ring"
    _ring_data().save(path)
    ring = Ring(path, HASHER, reload_interval=0)
    _ring_data(part_power=4).save(path)
    assert ring.partition_count == 16


def test_unreadable_new_file_keeps_old_ring(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "o.ring"
    _ring_data().save(path)
    ring = Ring(path, HASHER, reload_interval=0)
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        assert ring.partition_count == 256
    assert "keeping the loaded ring" in caplog.text
    path.unlink()
    assert ring.reload_if_changed() is False


def test_first_load_errors_propagate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Ring(tmp_path / "none.ring", HASHER)
    (tmp_path / "bad.ring").write_bytes(b"x")
    with pytest.raises(RingFormatError):
        Ring(tmp_path / "bad.ring", HASHER)
