"""The rings of a first start."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.ring.defaults import create_default_rings, ring_name
from pocketstack.objectstore.ring.ring import RingData

from .helpers import assert_distinct_devices

DEVICES = (("d1", 1), ("d2", 2), ("d3", 3))


def _create(ring_dir: Path, **overrides: object) -> list[Path]:
    args: dict[str, object] = {"devices": DEVICES, "replicas": 3, "part_power": 6,
                               "ip": "127.0.0.1", "port": 6200}
    return create_default_rings(ring_dir, **{**args, **overrides})  # type: ignore[arg-type]


def test_ring_name() -> None:
    assert [ring_name("account"), ring_name("container"), ring_name("object"),
            ring_name("object", 1), ring_name("object", 12)] == [
        "account", "container", "object", "object-1", "object-12"]
    for bad in (("objects", 0), ("object", -1)):
        with pytest.raises(ValueError):
            ring_name(*bad)


def test_creates_every_ring_and_builder(tmp_path: Path) -> None:
    ring_dir = tmp_path / "rings"
    written = _create(ring_dir, object_policies=(0, 1), policy_replicas={1: 1})
    names = ["account", "container", "object", "object-1"]
    assert written == [ring_dir / f"{name}.ring" for name in names]
    assert sorted(p.name for p in ring_dir.iterdir()) == sorted(
        [f"{n}.ring" for n in names] + [f"{n}.builder" for n in names])
    for name in names:
        data = RingData.load(ring_dir / f"{name}.ring")
        assert data.replica_count == (1 if name == "object-1" else 3)
        assert data.partition_count == 64
        assert [(d.device, d.zone, d.ip, d.port) for d in data.devs if d] == [
            ("d1", 1, "127.0.0.1", 6200), ("d2", 2, "127.0.0.1", 6200),
            ("d3", 3, "127.0.0.1", 6200)]
        assert_distinct_devices(data)
        builder = RingBuilder.load(ring_dir / f"{name}.builder")
        assert builder.get_ring().to_bytes() == data.to_bytes()


def test_existing_rings_are_left_alone(tmp_path: Path) -> None:
    _create(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert _create(tmp_path, replicas=2, part_power=4) == []
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_missing_ring_is_written_from_its_builder(tmp_path: Path) -> None:
    _create(tmp_path)
    expected = (tmp_path / "object.ring").read_bytes()
    (tmp_path / "object.ring").unlink()
    assert _create(tmp_path, part_power=4) == [tmp_path / "object.ring"]
    assert (tmp_path / "object.ring").read_bytes() == expected


def test_bad_arguments_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs 2 replicas"):
        _create(tmp_path / "a", object_policies=(0, 1), policy_replicas={1: 2},
                devices=(("d1", 1),), replicas=1)
    with pytest.raises(ValueError):
        _create(tmp_path / "b", devices=(("bad/name", 1), ("d2", 2), ("d3", 3)))
    with pytest.raises(ValueError):
        _create(tmp_path / "c", ip="not an ip")
    assert list(tmp_path.iterdir()) == []


def test_default_arguments(tmp_path: Path) -> None:
    written = create_default_rings(tmp_path)
    assert [p.name for p in written] == ["account.ring", "container.ring", "object.ring"]
    assert RingData.load(written[2]).partition_count == 1024
