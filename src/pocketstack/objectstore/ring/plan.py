"""The placement plan: how many replicas of a partition each tier should hold.

Dispersion comes first, weight second. Walking the tier tree from the root (which holds all
`replicas` of every partition), each tier splits its replicas among its children:

1. **cap** — the most replicas of *one* partition a child may hold: the smallest `u` such
   that children holding at most `u` each can hold the `ceil(share)` replicas of the parent,
   where a child never holds more replicas than it has distinct subtiers (zones for a
   region, hosts for a zone; devices, if those are too few). With 4 zones and 3 replicas
   every zone's cap is 1; with 2 regions and 3 replicas every region's cap is 2 (it holds 1
   or 2); with 2 zones of 1 and 3 hosts, the first zone's cap is 1 and the second's 2, so
   hosts stay distinct too.
2. **share** — the average replicas per partition a child holds: proportional to its weight
   but never above its cap ("water-filling": children that would exceed their cap are pinned
   to it and the rest is shared again by weight).

A device's share is at most 1 (it never holds two replicas of a partition); times the
partition count it is the device's *quota* of replica slots. Shares are exact `Fraction`s so
that tiers whose share is a whole number get exactly that many slots, with no float dust.
When weights are spread evenly enough no cap binds and every quota is proportional to
weight; when they are not (a heavy zone among fewer zones than replicas), dispersion wins and
`balance` reports how far the heavy devices fall short of their weight.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from pocketstack.objectstore.ring.types import (
    NO_DEVICE,
    Device,
    DeviceId,
    RingBuilderError,
    Tier,
)
from pocketstack.objectstore.ring.utils import build_tier_tree, tiers_for_dev


@dataclass(frozen=True)
class TierPlan:
    """What one tier should hold: `share` replicas of an average partition, `cap` at most."""

    share: Fraction
    cap: int


@dataclass(frozen=True)
class PlacementPlan:
    """Shares and caps of every tier with active (weight > 0) devices, root `()` included."""

    replicas: int
    part_count: int
    tree: Mapping[Tier, Sequence[Tier]]
    tier2plan: Mapping[Tier, TierPlan]
    devices: Mapping[DeviceId, Device]

    def quota(self, dev_id: DeviceId) -> float:
        """Replica slots the device should hold (0 for devices outside the plan)."""
        dev = self.devices.get(dev_id)
        if dev is None:
            return 0.0
        return float(self.tier2plan[tiers_for_dev(dev)[-1]].share * self.part_count)

    def tier_targets(self, holding: Mapping[Tier, int] | None = None) -> dict[Tier, int]:
        """Whole slot counts per tier (devices included): quotas rounded top-down, so each
        tier's count is within one of its exact quota, its children's counts add up to it,
        and it never passes `cap * part_count`.

        `holding` (slots each tier holds now) makes the rounding sticky: a tier already
        above its rounded-down quota is first in line for the rounded-up one, which saves
        moves that only trade one rounding for another.
        """
        holding = holding or {}
        tier2count: dict[Tier, int] = {(): self.replicas * self.part_count}
        for tier in sorted(self.tree, key=len):
            children = self.tree[tier]
            counts = _apportion(
                tier2count[tier],
                [self.tier2plan[c].share for c in children],
                [self.tier2plan[c].cap * self.part_count for c in children],
                [holding.get(c, 0) for c in children],
            )
            tier2count.update(zip(children, counts, strict=True))
        return tier2count


def build_plan(devs: Iterable[Device], replicas: int, part_count: int) -> PlacementPlan:
    """Plan placement over the devices of weight > 0.

    Raises RingBuilderError when fewer such devices exist than replicas.
    """
    active = {dev.id: dev for dev in devs if dev.weight > 0}
    if len(active) < replicas:
        raise RingBuilderError(
            f"{replicas} replicas need at least {replicas} devices with weight > 0; "
            f"the ring has {len(active)}")
    tree = build_tier_tree(active.values())
    weights, spans = _tier_weights_and_spans(active.values())
    tier2plan: dict[Tier, TierPlan] = {(): TierPlan(Fraction(replicas), replicas)}
    for tier in sorted(tree, key=len):
        children = tree[tier]
        caps = _caps(tier2plan[tier].share, [spans[c] for c in children], replicas)
        shares = _water_fill(tier2plan[tier].share, [weights[c] for c in children], caps)
        for child, share, cap in zip(children, shares, caps, strict=True):
            tier2plan[child] = TierPlan(share, cap)
    return PlacementPlan(replicas, part_count, tree, tier2plan, active)


def _tier_weights_and_spans(
    devs: Iterable[Device],
) -> tuple[dict[Tier, Fraction], dict[Tier, list[int]]]:
    """Each tier's weight, and its *spans*: how many distinct tiers it holds at each deeper
    level (a zone: [hosts, devices]; a device: [])."""
    weights: dict[Tier, Fraction] = {}
    below: dict[Tier, list[set[Tier]]] = {}
    for dev in devs:
        dev_tiers = tiers_for_dev(dev)
        for depth, tier in enumerate(dev_tiers):
            weights[tier] = weights.get(tier, Fraction(0)) + Fraction(dev.weight)
            sets = below.setdefault(tier, [set() for _ in dev_tiers[depth + 1:]])
            for subtier_set, subtier in zip(sets, dev_tiers[depth + 1:], strict=True):
                subtier_set.add(subtier)
    return weights, {tier: [len(s) for s in sets] for tier, sets in below.items()}


def _caps(share: Fraction, spans: Sequence[Sequence[int]], replicas: int) -> list[int]:
    """The most replicas of one partition each child may hold: the smallest uniform cap `u`
    that lets the children hold ceil(share) replicas, a child holding at most one replica
    per distinct subtier at the finest level needed.

    Zones are first limited by their host count, then (if the hosts cannot hold the
    replicas) by their device count: a zone with one host never takes two replicas while
    another zone has a free host. A device holds at most one.
    """
    needed = math.ceil(share)
    levels = max((len(span) for span in spans), default=0)
    capacities = [1] * len(spans)
    for level in range(levels):
        capacities = [min(span[level], replicas) for span in spans]
        if sum(capacities) >= needed:
            break
    cap = 1
    while sum(min(cap, c) for c in capacities) < needed:
        cap += 1
    return [min(cap, c) for c in capacities]


def _water_fill(
    total: Fraction, weights: Sequence[Fraction], caps: Sequence[int]
) -> list[Fraction]:
    """Split `total` in proportion to `weights`, pinning any child that would pass its cap."""
    pinned: dict[int, Fraction] = {}
    level = Fraction(0)
    while True:
        free = [i for i in range(len(weights)) if i not in pinned]
        free_weight = sum((weights[i] for i in free), Fraction(0))
        if not free or free_weight == 0:
            break
        level = (total - sum(pinned.values(), Fraction(0))) / free_weight
        over = [i for i in free if level * weights[i] >= caps[i]]
        if not over:
            break
        pinned.update((i, Fraction(caps[i])) for i in over)
    return [pinned[i] if i in pinned else level * weights[i] for i in range(len(weights))]


def _apportion(total: int, shares: Sequence[Fraction], limits: Sequence[int],
               holding: Sequence[int]) -> list[int]:
    """Round `total` split by `shares` to whole counts within `limits`: floors first, then
    one more each to those holding more than their floor, then by largest remainder."""
    share_sum = sum(shares, Fraction(0))
    exact = [total * s / share_sum for s in shares]
    counts = [min(math.floor(e), lim) for e, lim in zip(exact, limits, strict=True)]
    order = sorted(range(len(shares)),
                   key=lambda i: (holding[i] <= counts[i], counts[i] - exact[i], i))
    left = total - sum(counts)
    while left > 0:
        progressed = False
        for i in order:
            if left and counts[i] < limits[i]:
                counts[i] += 1
                left -= 1
                progressed = True
        if not progressed:
            raise RingBuilderError("internal error: tier limits cannot hold the replicas")
    return counts


@dataclass(frozen=True)
class PlanIndex:
    """The plan flattened into lists indexed by device id, for the hot loops.

    `dev2tiers[d]` holds the indexes of the device's region, zone and host tiers (None when
    the device is not in the plan), `tier_caps[t]` their caps, `dev2quota[d]` the device's
    exact quota and `dev2target[d]` its whole-slot target (see `tier_targets`), as
    `tier_targets[t]` is for tiers.
    """

    dev2tiers: list[tuple[int, int, int] | None]
    tier_caps: list[int]
    dev2quota: list[float]
    dev2target: list[int]
    tier_targets: list[int]

    @classmethod
    def from_plan(cls, plan: PlacementPlan, dev_count: int,
                  dev2count: Sequence[int] | None = None) -> PlanIndex:
        """`dev2count` (slots per device id now) makes targets sticky (`tier_targets`)."""
        holding: dict[Tier, int] = {}
        for dev in plan.devices.values():
            for tier in tiers_for_dev(dev):
                holding[tier] = holding.get(tier, 0) + (dev2count[dev.id] if dev2count else 0)
        targets = plan.tier_targets(holding)
        tier2index: dict[Tier, int] = {}
        tier_caps: list[int] = []
        tier_targets: list[int] = []
        dev2tiers: list[tuple[int, int, int] | None] = [None] * dev_count
        dev2quota, dev2target = [0.0] * dev_count, [0] * dev_count
        for dev_id, dev in plan.devices.items():
            indexes = []
            for tier in tiers_for_dev(dev)[:3]:
                if tier not in tier2index:
                    tier2index[tier] = len(tier_caps)
                    tier_caps.append(plan.tier2plan[tier].cap)
                    tier_targets.append(targets[tier])
                indexes.append(tier2index[tier])
            dev2tiers[dev_id] = (indexes[0], indexes[1], indexes[2])
            dev2quota[dev_id] = plan.quota(dev_id)
            dev2target[dev_id] = targets[tiers_for_dev(dev)[-1]]
        return cls(dev2tiers, tier_caps, dev2quota, dev2target, tier_targets)

    def is_dispersed(self, dev_ids: Iterable[int]) -> bool:
        """True when these replicas (of one partition) stay within every tier's cap.

        Replicas on devices outside the plan (weight 0, or gone) are not counted.
        """
        seen: list[int] = []
        tiers: list[int] = []
        for dev_id in dev_ids:
            dev_tiers = self.dev2tiers[dev_id] if dev_id != NO_DEVICE else None
            if dev_tiers is None:
                continue
            if dev_id in seen:
                return False
            seen.append(dev_id)
            tiers.extend(dev_tiers)
        return all(tiers.count(t) <= self.tier_caps[t] for t in set(tiers))

    def undispersed_parts(self, replica2part2dev_id: Sequence[Sequence[int]]) -> list[int]:
        """Partitions with more replicas in some tier than its cap.

        Replica sets are counted first (in C: a ring has far fewer distinct sets than
        partitions) and each distinct set is checked once; only if some set is bad are the
        partitions holding it listed.
        """
        replica_sets = Counter(zip(*replica2part2dev_id, strict=True))
        bad = {devs for devs in replica_sets if not self.is_dispersed(devs)}
        if not bad:
            return []
        return [part for part, devs in enumerate(zip(*replica2part2dev_id, strict=True))
                if devs in bad]
