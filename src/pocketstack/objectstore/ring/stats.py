"""How good a layout is: partitions per device, balance and dispersion.

* **balance** of a device: how far its replica count is from its share by weight, in percent
  (`+5` holds 5 % more than `replicas * partitions * weight / total weight`). A device of
  weight 0 holding anything scores `MAX_BALANCE`. The ring's balance is the worst device's
  absolute value.
* **dispersion**: the percentage of partitions with more replicas in some region, zone or host
  than the plan's cap for it (see `plan.py`): 0 means every partition is spread as uniquely
  as the devices allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pocketstack.objectstore.ring.placement import count_slots
from pocketstack.objectstore.ring.plan import PlacementPlan, PlanIndex, build_plan
from pocketstack.objectstore.ring.types import Device, RingBuilderError

MAX_BALANCE = 999.99


@dataclass(frozen=True)
class DeviceStats:
    """`wanted`: replica slots by weight alone; `target`: by the placement plan, which puts
    dispersion first (they differ when weights are spread unevenly over zones)."""

    device: Device
    parts: int
    wanted: float
    target: float
    balance: float


@dataclass(frozen=True)
class RingStats:
    devices: list[DeviceStats]
    balance: float
    dispersion: float
    regions: int
    zones: int
    hosts: int


def compute_stats(
    devs: Sequence[Device | None],
    replica2part2dev_id: Sequence[Sequence[int]] | None,
    replicas: int,
    part_count: int,
    *,
    counts: Sequence[int] | None = None,
) -> RingStats:
    """Stats of a layout (`replica2part2dev_id` None means nothing placed yet). `counts`,
    slots per device id, saves counting them again when the caller has them."""
    present = [dev for dev in devs if dev is not None]
    if counts is None:
        counts = (count_slots(replica2part2dev_id, len(devs))
                  if replica2part2dev_id is not None else [0] * len(devs))
    plan = _plan_or_none(present, replicas, part_count)
    total_weight = sum(dev.weight for dev in present)
    slots = replicas * part_count
    dev_stats = []
    for dev in present:
        wanted = slots * dev.weight / total_weight if total_weight > 0 else 0.0
        target = plan.quota(dev.id) if plan else 0.0
        dev_stats.append(DeviceStats(dev, counts[dev.id], wanted, target,
                                     device_balance(counts[dev.id], wanted)))
    return RingStats(
        devices=dev_stats,
        balance=max((abs(s.balance) for s in dev_stats), default=0.0),
        dispersion=_dispersion(plan, len(devs), replica2part2dev_id, part_count),
        regions=len({dev.region for dev in present}),
        zones=len({(dev.region, dev.zone) for dev in present}),
        hosts=len({dev.ip for dev in present}),
    )


def device_balance(parts: int, wanted: float) -> float:
    if wanted <= 0:
        return 0.0 if parts == 0 else MAX_BALANCE
    return max(-MAX_BALANCE, min(MAX_BALANCE, 100.0 * (parts - wanted) / wanted))


def _plan_or_none(devs: Sequence[Device], replicas: int, part_count: int) -> PlacementPlan | None:
    try:
        return build_plan(devs, replicas, part_count)
    except RingBuilderError:  # too few devices: there is no plan to measure against
        return None


def _dispersion(
    plan: PlacementPlan | None,
    dev_count: int,
    replica2part2dev_id: Sequence[Sequence[int]] | None,
    part_count: int,
) -> float:
    if replica2part2dev_id is None:
        return 0.0
    if plan is None:
        return 100.0  # no layout of too few devices is dispersed
    index = PlanIndex.from_plan(plan, dev_count)
    return 100.0 * len(index.undispersed_parts(replica2part2dev_id)) / part_count
