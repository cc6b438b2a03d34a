"""The placement plan: shares and caps per tier, whole-slot targets."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocketstack.objectstore.ring.plan import PlanIndex, build_plan
from pocketstack.objectstore.ring.types import Device, DeviceId, RingBuilderError, Tier
from pocketstack.objectstore.ring.utils import tiers_for_dev

from .helpers import Slot, any_layout, host_ip


def _devs(layout: list[Slot]) -> list[Device]:
    return [Device(DeviceId(i), s.region, s.zone, host_ip(s), 6200, f"d{i}", s.weight)
            for i, s in enumerate(layout)]


def test_four_zones_three_replicas() -> None:
    plan = build_plan(_devs([Slot(1, z, 0, 100.0) for z in (1, 2, 3, 4)]), 3, 64)
    for zone in (1, 2, 3, 4):
        assert plan.tier2plan[(1, zone)].cap == 1
        assert plan.tier2plan[(1, zone)].share == Fraction(3, 4)
    assert plan.quota(DeviceId(0)) == 48.0


def test_two_regions_three_replicas() -> None:
    layout = [Slot(r, z, 0, 100.0) for r in (1, 2) for z in (1, 2)]
    plan = build_plan(_devs(layout), 3, 64)
    assert [plan.tier2plan[(r,)].cap for r in (1, 2)] == [2, 2]
    assert [plan.tier2plan[(r,)].share for r in (1, 2)] == [Fraction(3, 2)] * 2


def test_heavy_zone_is_pinned_to_its_cap() -> None:
    """Dispersion first: a zone with half the weight still holds one replica of three."""
    layout = [Slot(1, 1, 0, 100.0), Slot(1, 2, 0, 100.0), Slot(1, 3, 0, 200.0),
              Slot(1, 4, 0, 100.0)]
    plan = build_plan(_devs(layout), 3, 64)
    assert plan.tier2plan[(1, 3)].share == 1
    assert [plan.tier2plan[(1, z)].share for z in (1, 2, 4)] == [Fraction(2, 3)] * 3


def test_zone_with_one_host_is_capped_by_hosts() -> None:
    layout = [Slot(1, 1, 0, 100.0), Slot(1, 1, 0, 100.0),
              Slot(1, 2, 0, 100.0), Slot(1, 2, 1, 100.0), Slot(1, 2, 2, 100.0)]
    plan = build_plan(_devs(layout), 3, 64)
    assert plan.tier2plan[(1, 1)].cap == 1 and plan.tier2plan[(1, 2)].cap == 2


def test_a_single_host_falls_back_to_devices() -> None:
    plan = build_plan(_devs([Slot(1, 1, 0, 100.0)] * 3), 3, 16)
    host: Tier = (1, 1, "10.1.1.1")
    assert plan.tier2plan[host].cap == 3 and plan.tier2plan[host].share == 3


def test_too_few_devices() -> None:
    with pytest.raises(RingBuilderError):
        build_plan(_devs([Slot(1, 1, 0, 100.0), Slot(1, 2, 0, 0.0)]), 2, 16)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), any_layout(min_devices=5), st.integers(0, 10))
def test_plan_invariants(replicas: int, layout: list[Slot], part_power: int) -> None:
    devs = _devs(layout)
    plan = build_plan(devs, replicas, 1 << part_power)
    targets = plan.tier_targets()
    assert targets[()] == replicas << part_power
    for tier, children in plan.tree.items():
        assert sum(plan.tier2plan[c].share for c in children) == plan.tier2plan[tier].share
        assert sum(targets[c] for c in children) == targets[tier]
        for child in children:
            child_plan = plan.tier2plan[child]
            assert 0 < child_plan.share <= child_plan.cap <= replicas
            assert targets[child] <= child_plan.cap << part_power
            assert abs(targets[child] - child_plan.share * (1 << part_power)) < len(child) + 1
    for dev in devs:
        assert plan.tier2plan[tiers_for_dev(dev)[-1]].cap == 1


def test_sticky_targets_round_where_slots_are() -> None:
    plan = build_plan(_devs([Slot(1, z, 0, 100.0) for z in (1, 2, 3)]), 1, 16)
    # 16 slots over 3 devices: 5.33 each; one device gets 6
    plain = plan.tier_targets()
    assert sorted(plain[(1, z, f"10.1.{z}.1", z - 1)] for z in (1, 2, 3)) == [5, 5, 6]
    holding = {tier: 6 for dev in plan.devices.values() for tier in tiers_for_dev(dev)
               if dev.zone == 3}
    sticky = plan.tier_targets(holding)
    assert sticky[(1, 3, "10.1.3.1", 2)] == 6


def test_plan_index() -> None:
    layout = [Slot(1, z, 0, 100.0) for z in (1, 2, 3)] + [Slot(1, 3, 0, 0.0)]
    plan = build_plan(_devs(layout), 2, 32)
    index = PlanIndex.from_plan(plan, 5)
    assert index.dev2tiers[3] is None and index.dev2tiers[4] is None
    assert index.dev2quota[:3] == [pytest.approx(64 / 3)] * 3
    assert sum(index.dev2target) == 64
    assert index.is_dispersed([0, 1]) and not index.is_dispersed([0, 0])
    assert index.is_dispersed([0, 3])  # device 3 is outside the plan: not counted
    assert index.undispersed_parts([[0, 1, 2], [1, 1, 0]]) == [1]
