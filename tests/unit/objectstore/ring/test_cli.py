"""`pocketstack ring ...` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.ring.cli import ring_group
from pocketstack.objectstore.ring.ring import RingData


def run(*args: object) -> Result:
    return CliRunner().invoke(ring_group, [str(a) for a in args], catch_exceptions=True)


def ok(*args: object) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def fails(*args: object, match: str = "") -> Result:
    result = run(*args)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert "Traceback" not in result.output
    assert "Error" in result.output
    assert match in result.output, result.output
    return result


@pytest.fixture
def builder(tmp_path: Path) -> Path:
    path = tmp_path / "object.builder"
    ok("create", path, 8, 3, 1)
    ok("add", path, "r1z1-127.0.0.1:6200/d1", 100, "r1z2-127.0.0.1:6200/d2", 100)
    ok("add", path, "--zone", 3, "--ip", "127.0.0.1", "--port", 6200, "--device", "d3",
       "--weight", 100, "--meta", "third")
    return path


def test_create_add_rebalance_show(builder: Path) -> None:
    result = ok("rebalance", builder, "--seed", 1)
    assert "Reassigned 768 of 768 replicas (100.00%)" in result.output
    ring_path = builder.with_suffix(".ring")
    assert f"Wrote {ring_path}" in result.output
    data = RingData.load(ring_path)
    assert data.replica_count == 3 and data.partition_count == 256
    assert [d.meta for d in data.devs if d] == ["", "", "third"]

    shown = ok("show", builder).output
    assert "256 partitions, 3 replicas, min_part_hours 1" in shown
    assert "1 regions, 3 zones, 1 hosts, 3 devices; balance 0.00, dispersion 0.00" in shown
    assert "127.0.0.1:6200" in shown and "d3" in shown and "third" in shown
    ring_shown = ok("show", ring_path).output
    assert "(ring), version 1" in ring_shown and "3 devices" in ring_shown


def test_seeded_rebalances_are_reproducible(tmp_path: Path) -> None:
    rings = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.builder"
        ok("create", path, 6, 2, 0)
        ok("add", path, "z1-10.0.0.1:6200/d1", 1, "z2-10.0.0.2:6200/d1", 2,
           "z3-[::1]:6200/d1", 3)
        ok("rebalance", path, "--seed", 7)
        rings.append((tmp_path / f"{name}.ring").read_bytes())
    assert rings[0] == rings[1]


def test_set_weight_remove_and_min_part_hours(builder: Path) -> None:
    ok("rebalance", builder, "--seed", 1)
    ok("add", builder, "r1z4-127.0.0.1:6200/d4", 100)
    result = ok("rebalance", builder)
    assert "Reassigned 0 of 768" in result.output and "min_part_hours (1)" in result.output
    ok("pretend-min-part-hours-passed", builder)
    assert "Reassigned 192 of 768" in ok("rebalance", builder).output

    assert "from 100 to 50" in ok("set-weight", builder, "d1", 50).output
    assert RingBuilder.load(builder).get_dev(1).weight == 50
    assert "Marked d3r1z4-127.0.0.1:6200/d4 for removal" in ok(
        "remove", builder, "/d4").output
    ok("pretend-min-part-hours-passed", builder)
    result = ok("rebalance", builder)
    assert "Removed devices d3" in result.output
    data = RingData.load(builder.with_suffix(".ring"))
    assert data.devs[3] is None and data.version == 3


def test_search_values_matching_many_devices(builder: Path) -> None:
    fails("remove", builder, "127.0.0.1", match="matches 3 devices")
    fails("set-weight", builder, "-127.0.0.1", 5, match="matches 3 devices")
    assert ok("set-weight", builder, "--yes", "-127.0.0.1", 5).output.count("Set weight") == 3
    assert all(dev.weight == 5 for dev in RingBuilder.load(builder).devices)


@pytest.mark.parametrize(("args", "match"), [
    (("create", "{b}", 8, 3, 1), "exists"),
    (("create", "{new}", 30, 3, 1), "part_power must be"),
    (("create", "{new}", 8, 0, 1), "replicas must be"),
    (("create", "{new}", "eight", 3, 1), "is not a valid integer"),
    (("add", "{b}"), "missing --zone"),
    (("add", "{b}", "--zone", 1), "missing --ip"),
    (("add", "{b}", "r1z1-127.0.0.1:6200/d9"), "weight is missing"),
    (("add", "{b}", "r1z1-127.0.0.1:6200/d9", "heavy"), "not a weight"),
    (("add", "{b}", "r1z1-127.0.0.1:6200/d9", -5), "not a weight"),
    (("add", "{b}", "z1-127.0.0.1:6200/d9", 1, "--zone", 2), "not both"),
    (("add", "{b}", "r1z1-127.0.0.1/d9", 1), "missing port"),
    (("add", "{b}", "r1z1-127.0.0.1:6200/d1", 1), "already uses"),
    (("add", "{b}", "r1z1-999.0.0.1:6200/d9", 1), "invalid"),
    (("add", "{missing}", "r1z1-127.0.0.1:6200/d9", 1), "no such file"),
    (("remove", "{b}", "d9"), "no device matches"),
    (("remove", "{b}", "not a search value"), "invalid device search value"),
    (("set-weight", "{b}", "d1", "-1"), "not a weight"),
    (("set-weight", "{b}", "_"), "Missing argument"),
    (("show", "{missing}"), "no such file"),
    (("show", "{garbage}"), "neither a ring nor a ring builder"),
    (("rebalance", "{garbage}"), "not a ring builder file"),
    (("rebalance", "{small}"), "at least 3 devices"),
])
def test_bad_input_gives_clean_errors(builder: Path, tmp_path: Path, args: tuple[object, ...],
                                      match: str) -> None:
    (tmp_path / "garbage").write_bytes(b"\x00junk")
    small = tmp_path / "small.builder"
    ok("create", small, 4, 3, 1)
    ok("add", small, "z1-10.0.0.1:6200/d1", 1)
    paths = {"b": builder, "new": tmp_path / "new.builder", "missing": tmp_path / "nope",
             "garbage": tmp_path / "garbage", "small": small}
    before = builder.read_bytes()
    fails(*[str(a).format(**paths) for a in args], match=match)
    assert builder.read_bytes() == before  # a failed command changes nothing


def test_create_force_overwrites(builder: Path) -> None:
    ok("create", builder, 4, 1, 0, "--force")
    assert RingBuilder.load(builder).devices == []


def test_help_lists_the_commands() -> None:
    output = ok("--help").output
    for command in ("create", "add", "remove", "set-weight", "rebalance", "show"):
        assert command in output
