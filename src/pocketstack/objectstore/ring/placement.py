"""Placement: turn a `PlacementPlan` into partition tables, fresh or incrementally.

The tables are `replica2part2dev_id`: one `array('H')` per replica, indexed by partition,
holding device ids (2 bytes each: a power-20 ring with 3 replicas is 6 MiB, where a list of
ints would be ten times that). `NO_DEVICE` marks a slot waiting for a device.

**Fresh layout (`deal`)** — used when no slot is assigned yet. Each tier lays the partitions
it holds out on a line, layer by layer (a layer per replica it holds; the partitions it holds
once more come first, so the last, partial layer holds exactly them), and each child takes a
contiguous run of the line as long as its slot target (McNaughton's wrap-around rule). A
partition appears once per layer, so a run of length `L` over `n` partitions holds it
`floor(L/n)` or `ceil(L/n)` times — never more than the child's cap — and every child gets
exactly its target. Each tier scrambles its order, and reshuffles it between layers as far as
the run crossing the layer boundary allows, so a device's partitions have their other
replicas spread over many devices and sibling tiers rather than mirrored on a few (faster
recovery, and room for later moves). Computed bottom-up with list slicing, at C speed.

**Incremental (`Rebalancer`)** — keeps every slot that may stay and moves the rest, in rounds:

1. free every slot of removed devices (even inside min_part_hours);
2. free one replica of each partition that breaks a tier cap (dispersion);
3. free the slots of weight-0 devices (draining);
4. place the freed slots, each on the least-full device (count / target) that keeps the
   partition within every cap, or else on the one breaking the fewest caps, widest first;
5. shed: move slots off devices above their whole-slot target straight to devices below
   theirs that fit the partition, one replica per partition; a slot no such device fits goes
   to the least-full device that fits if that evens things out (that one sheds next round).

Steps 2, 3 and 5 skip partitions moved less than `min_part_hours` ago. A freed partition that
lands back on its own device did not move, and keeps its last-move time.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from pocketstack.objectstore.ring.plan import PlacementPlan, PlanIndex
from pocketstack.objectstore.ring.types import NO_DEVICE, Tier

MAX_ROUNDS = 8
# Step 3 looks at most this many slots of an overfull device (per slot it must shed, plus a
# base) for ones another device can take; what it misses, the next rebalance looks for.
SCAN_BUDGET_PER_SLOT = 20
SCAN_BUDGET_BASE = 1000

Rows = list["array[int]"]


def empty_rows(replicas: int, part_count: int) -> Rows:
    return [array("H", [NO_DEVICE]) * part_count for _ in range(replicas)]


def count_slots(rows: Sequence[Iterable[int]], dev_count: int) -> list[int]:
    """Slots held by each device id (NO_DEVICE slots are not counted)."""
    counter: Counter[int] = Counter()
    for row in rows:
        counter.update(row)
    return [counter.get(dev_id, 0) for dev_id in range(dev_count)]


def deal(plan: PlacementPlan, rng: random.Random) -> Rows:
    """A fresh layout that meets every target exactly and every tier cap (module docstring).

    Computed bottom-up: each tier returns the device ids of its run of its parent's line, in
    the parent's order; a parent concatenates its children's runs (its own, scrambled, line)
    and maps that back to its parent's order with its scramble — slices only, no per-slot
    Python work. The root's order is the partition order, replica by replica: the tables.
    """
    part_count, replicas = plan.part_count, plan.replicas
    targets = plan.tier_targets()
    flat = _deal_tier(plan, targets, (), part_count, replicas, 0, rng)
    rows = [array("H", flat[r * part_count:(r + 1) * part_count]) for r in range(replicas)]
    _stagger(rows)
    return rows


def _deal_tier(plan: PlacementPlan, targets: dict[Tier, int], tier: Tier, n: int, base: int,
               high: int, rng: random.Random) -> list[int]:
    """Device ids for a tier holding `n` partitions, `base` times each and once more for the
    first `high` of them: `base` layers of `n` then a partial layer of `high`."""
    if len(tier) == 4:
        return [int(tier[3])] * (base * n + high)
    line: list[int] = []
    runs: list[tuple[int, int]] = []  # (start, length) of each child's run on the line
    for child in plan.tree[tier]:
        child_base, extra = divmod(targets[child], n)
        if child_base:
            line += _deal_tier(plan, targets, child, n, child_base, extra, rng)
        elif extra:
            line += _deal_tier(plan, targets, child, extra, 1, 0, rng)
        runs.append((len(line) - targets[child], targets[child]))
    first = _segment_mixer([high], n, rng)
    reshuffles = [_layer_reshuffle(runs, n, high, layer, rng) for layer in range(1, base + 1)]
    out: list[int] = []
    for layer in range(base + 1):
        items = line[layer * n:(layer + 1) * n]
        for reshuffle in reversed(reshuffles[:layer]):
            items = reshuffle(items)
        out += first(items)
    return out


def _layer_reshuffle(runs: list[tuple[int, int]], n: int, high: int, layer: int,
                     rng: random.Random) -> Callable[[list[int]], list[int]]:
    """How layer `layer`'s partition order differs from the previous layer's, as a gather:
    `reshuffle(items)[i] = items[t(i)]` for `items` in this layer's order and `i` a position
    in the previous layer's.

    This mixes the combinations of siblings a partition's replicas land on (else with 4
    zones and 2 replicas every partition would sit in zones 1+3 or 2+4). The one rule: the
    run crossing from the previous layer (its tail at positions [a, n) there) into this one
    (its head at [0, b) here) must not meet a partition twice, so [0, b) here takes only
    partitions from [0, a) there. A tier holding partitions once more than others (high > 0)
    keeps its segments [0, high) and [0, a) instead; a run holding partitions more than
    once (share > 1) needs its layers alike: no reshuffle.
    """
    boundary = layer * n
    crossing = [(start, length) for start, length in runs if start < boundary < start + length]
    if not crossing:
        return _segment_mixer([high], n, rng)
    start, length = crossing[0]
    if length > n:
        return lambda items: items
    if high:
        return _segment_mixer([high, start % n], n, rng)
    a, b = start % n, start + length - boundary  # b <= a as length <= n
    mix_rest, mix_head = _mixer(n - b, rng), _mixer(a, rng)

    def reshuffle(items: list[int]) -> list[int]:
        rest = mix_rest(items[b:])
        return mix_head(items[:b] + rest[n - a:]) + rest[:n - a]

    return reshuffle


def _segment_mixer(cuts: list[int], n: int,
                   rng: random.Random) -> Callable[[list[int]], list[int]]:
    """A seeded permutation of lists of `n` (or of a prefix ending at a cut) that keeps every
    item within its segment between cuts."""
    bounds = sorted({0, n, *(c for c in cuts if 0 < c < n)})
    segments = [(lo, hi, _mixer(hi - lo, rng)) for lo, hi in pairwise(bounds)]

    def mix(items: list[int]) -> list[int]:
        out: list[int] = []
        for lo, hi, mixer in segments:
            if lo < len(items):
                out += mixer(items[lo:hi])
        return out

    return mix


def _mixer(size: int, rng: random.Random) -> Callable[[list[int]], list[int]]:
    """A seeded permutation of lists of `size`, applied alike to every layer of a tier.

    Big lists: rotate by a random offset, then interleave `stride` strided slices taken in
    random order (C-speed slicing; it scatters neighbours apart, which is what spreads a
    device's partitions over the devices of other tiers). Small lists: a plain shuffle.
    """
    if size < 64:
        perm = list(range(size))
        rng.shuffle(perm)
        return lambda items: [items[i] for i in perm] if items else items
    root = math.isqrt(size)
    stride = rng.randrange(root // 2 + 1, root + 2)
    residues = list(range(stride))
    rng.shuffle(residues)
    offset = rng.randrange(size)

    def mix(items: list[int]) -> list[int]:
        if not items:
            return items
        rotated = items[offset:] + items[:offset]
        out: list[int] = []
        for residue in residues:
            out += rotated[residue::stride]
        return out

    return mix


def _stagger(rows: Rows) -> None:
    """Rotate replica order by partition (p % replicas) so no tier owns a whole row: the
    first replica of every partition would otherwise sit in the first zone dealt."""
    replicas = len(rows)
    for shift in range(1, replicas):
        column = [row[shift::replicas] for row in rows]
        for r in range(replicas):
            rows[r][shift::replicas] = column[(r + shift) % replicas]


@dataclass
class Rebalancer:
    """Incremental placement over existing tables (module docstring, steps 1–5).

    `rows` and `part2moved_at` (each partition's last move, in minutes since the epoch) are
    updated in place, and so is `counts` (slots per device id, as `count_slots` gives).
    After `run`, `blocked` counts the moves that min_part_hours put off.
    """

    rows: Rows
    index: PlanIndex
    part2moved_at: array[int]
    now: int
    min_part_minutes: int
    rng: random.Random
    counts: list[int]
    freed: list[tuple[int, int, int]] = field(init=False, default_factory=list)
    _blocked: dict[str, int] = field(init=False, default_factory=dict)
    _moved_before: array[int] = field(init=False)
    _touched: bytearray = field(init=False)
    _tiers_of: list[tuple[int, int, int] | None] = field(init=False)

    def __post_init__(self) -> None:
        self._touched = bytearray(self.part_count)
        self._moved_before = array("I", self.part2moved_at)
        # indexable by any u16, NO_DEVICE included, so hot loops need no range checks
        self._tiers_of = self.index.dev2tiers + [None] * (NO_DEVICE + 1 - len(self.counts))

    @property
    def part_count(self) -> int:
        return len(self.rows[0])

    @property
    def blocked(self) -> int:
        """Moves min_part_hours put off in the last round of each step (an upper bound)."""
        return sum(self._blocked.values())

    def run(self, removed: Iterable[int]) -> int:
        """Do steps 1–5, in rounds while they move something; return how many slots changed
        device."""
        moved, check_dispersion = 0, True
        self.free_devices(removed)
        for round_number in range(MAX_ROUNDS):
            if round_number:
                self._touched = bytearray(self.part_count)
                self._moved_before = array("I", self.part2moved_at)
            if check_dispersion:
                self.gather_undispersed()
            self.gather_draining()
            placed, check_dispersion = self.place_freed()
            shed = self.shed_overfull()
            moved += placed + shed
            if not placed + shed:
                break
        return moved

    def _locked(self, part: int) -> bool:
        return self.now - self.part2moved_at[part] < self.min_part_minutes

    def _free(self, part: int, replica: int) -> None:
        row = self.rows[replica]
        self.freed.append((part, replica, row[part]))
        self.counts[row[part]] -= 1
        row[part] = NO_DEVICE
        self._touched[part] = 1
        self.part2moved_at[part] = self.now

    def free_devices(self, dev_ids: Iterable[int]) -> None:
        """Step 1: free every slot of these devices, min_part_hours or not."""
        for dev_id in dev_ids:
            for replica, row in enumerate(self.rows):
                for part in _positions(row, dev_id, 0, len(row)):
                    self._free(part, replica)

    def gather_undispersed(self) -> None:
        """Step 2: free the worst-placed replica of each partition that breaks a cap."""
        blocked = 0
        for part in self.index.undispersed_parts(self.rows):
            if self._touched[part]:
                continue
            if self._locked(part):
                blocked += 1
                continue
            self._free(part, self._worst_replica([row[part] for row in self.rows]))
        self._blocked["dispersion"] = blocked

    def gather_draining(self) -> None:
        """Step 3: free the slots of devices outside the plan (weight 0). Unlike shedding,
        these go even where no device has room: placement may push a device over its
        target, and shedding moves some other slot of that device on."""
        blocked = 0
        for dev_id, count in enumerate(self.counts):
            if not count or self.index.dev2tiers[dev_id] is not None:
                continue
            for replica, row in enumerate(self.rows):
                for part in _positions(row, dev_id, 0, len(row)):
                    if self._touched[part]:
                        continue
                    if self._locked(part):
                        blocked += 1
                        continue
                    self._free(part, replica)
        self._blocked["draining"] = blocked

    def _worst_replica(self, dev_ids: list[int]) -> int:
        """The replica in the widest over-cap tier; among those, on the fullest device."""
        caps = self.index.tier_caps
        used = _used_tiers(self._tiers_of, dev_ids)
        best_key: tuple[int, float] = (5, 0.0)
        worst = 0
        for replica, dev_id in enumerate(dev_ids):
            dev_tiers = self._tiers_of[dev_id]
            if dev_tiers is None:
                continue
            over = [lvl for lvl, t in enumerate(dev_tiers) if used.count(t) > caps[t]]
            if dev_ids.count(dev_id) > 1:
                over.append(3)
            key = (min(over, default=4), -self._fill(dev_id, 0))
            if key < best_key:
                best_key, worst = key, replica
        return worst

    def _fill(self, dev_id: int, extra: int) -> float:
        """How full a device would be with `extra` more slots, relative to its target."""
        target = self.index.dev2target[dev_id]
        return (self.counts[dev_id] + extra) / target if target > 0 else math.inf

    def place_freed(self) -> tuple[int, bool]:
        """Step 4: place the freed slots. Returns (slots that changed device, whether any
        placement had to break a cap).

        Fast path: the least-full device (top of a heap keyed by fill, refreshed lazily)
        fits. Otherwise the least full of the devices that fit, found through a cache of
        fitting devices per set of other replicas.
        """
        rows, counts, targets = self.rows, self.counts, self.index.dev2target
        tiers_of, caps = self._tiers_of, self.index.tier_caps
        heap = [(self._fill(d, 1), self.rng.random(), d) for d, t in enumerate(targets) if t > 0]
        heapq.heapify(heap)
        fitting: dict[tuple[int, ...], list[int]] = {}
        moved, broke_caps, changed = 0, False, set()
        for part, replica, old_dev in self.freed:
            others = [row[part] for row in rows]
            used = _used_tiers(tiers_of, others)
            while True:  # refresh stale heap tops
                fill, tiebreak, dev_id = heap[0]
                if fill == (counts[dev_id] + 1) / targets[dev_id]:
                    break
                heapq.heapreplace(heap, ((counts[dev_id] + 1) / targets[dev_id], tiebreak, dev_id))
            if _fits(tiers_of[dev_id], dev_id, others, used, caps):
                heapq.heapreplace(heap, ((counts[dev_id] + 2) / targets[dev_id], tiebreak, dev_id))
            else:
                dev_id = self._least_full_fitting(others, used, fitting)
                if dev_id < 0:
                    dev_id, broke_caps = self._least_bad(others, used), True
            rows[replica][part] = dev_id
            counts[dev_id] += 1
            if dev_id != old_dev:
                moved += 1
                changed.add(part)
        for part in {part for part, _, _ in self.freed} - changed:
            self.part2moved_at[part] = self._moved_before[part]  # it did not move after all
        self.freed = []
        return moved, broke_caps

    def _least_full_fitting(self, others: list[int], used: list[int],
                            fitting: dict[tuple[int, ...], list[int]], exclude: int = -1) -> int:
        """The least full device that fits (caching fitting devices per replica set)."""
        key = tuple(others)
        devs = fitting.get(key)
        if devs is None:
            caps, tiers_of = self.index.tier_caps, self._tiers_of
            devs = fitting[key] = [d for d, quota in enumerate(self.index.dev2quota)
                                   if quota > 0 and _fits(tiers_of[d], d, others, used, caps)]
        return min((d for d in devs if d != exclude), key=lambda d: self._fill(d, 1),
                   default=-1)

    def shed_overfull(self) -> int:
        """Step 5: move slots off devices above their target, one replica per partition, to
        devices below theirs that fit the partition (else see `_push`). Returns how many
        slots moved."""
        pairs = list(enumerate(zip(self.counts, self.index.dev2target, strict=True)))
        need = {dev_id: count - limit for dev_id, (count, limit) in pairs if count > limit}
        room = {dev_id: limit - count for dev_id, (count, limit) in pairs if count < limit}
        if self.now - min(self.part2moved_at) < self.min_part_minutes:  # all locked
            self._blocked["balance"] = sum(need.values())
            return 0
        takers_of: dict[tuple[int, ...], list[int]] = {}
        moved = blocked = 0
        for dev_id, left in sorted(need.items()):
            shed, locked = self._shed(dev_id, left, room, takers_of)
            moved += shed
            blocked += min(left - shed, locked)
        self._blocked["balance"] = blocked
        return moved

    def _shed(self, dev_id: int, left: int, room: dict[int, int],
              takers_of: dict[tuple[int, ...], list[int]]) -> tuple[int, int]:
        """Move up to `left` slots off one device, scanning its slots (array.index, in C)
        from a seeded random row and partition: first to devices with room, then (`_push`)
        the rest. Returns (moved, skipped as locked)."""
        replicas, part_count = len(self.rows), self.part_count
        touched, moved_at, window = self._touched, self.part2moved_at, self.min_part_minutes
        budget = SCAN_BUDGET_PER_SLOT * left + SCAN_BUDGET_BASE
        moved = locked = 0
        stuck: list[tuple[int, int]] = []
        first, start = self.rng.randrange(replicas), self.rng.randrange(part_count)
        for k in range(replicas + 1):
            replica = (first + k) % replicas
            row = self.rows[replica]
            pos, stop = (start if k == 0 else 0), (start if k == replicas else part_count)
            while moved < left and budget > 0 and (room or len(stuck) < left - moved):
                try:
                    part = row.index(dev_id, pos, stop)
                except ValueError:
                    break
                pos, budget = part + 1, budget - 1
                if touched[part]:
                    continue
                if self.now - moved_at[part] < window:
                    locked += 1
                    continue
                taker = self._taker(part, replica, room, takers_of) if room else -1
                if taker < 0:
                    if len(stuck) < left:
                        stuck.append((part, replica))
                    continue
                self._move(part, replica, taker)
                room[taker] -= 1
                if not room[taker]:
                    del room[taker]
                moved += 1
        return moved + self._push(dev_id, stuck[:left - moved]), locked

    def _push(self, dev_id: int, stuck: list[tuple[int, int]]) -> int:
        """Move slots no device with room can take to the least-full device that fits, when
        that leaves it less full than `dev_id` is now. That device may go over its target
        and shed something else next round: a chain around a full tier (say, a region at
        its cap whose devices are all at target). Returns how many moved."""
        pushed = 0
        fitting: dict[tuple[int, ...], list[int]] = {}
        for part, replica in stuck:
            if self._touched[part]:
                continue
            others = [row[part] for row in self.rows]
            del others[replica]
            used = _used_tiers(self._tiers_of, others)
            alt = self._least_full_fitting(others, used, fitting, exclude=dev_id)
            if alt >= 0 and self._fill(alt, 1) < self._fill(dev_id, 0):
                self._move(part, replica, alt)
                pushed += 1
        return pushed

    def _move(self, part: int, replica: int, dev_id: int) -> None:
        row = self.rows[replica]
        self.counts[row[part]] -= 1
        self.counts[dev_id] += 1
        row[part] = dev_id
        self._touched[part] = 1
        self.part2moved_at[part] = self.now

    def _taker(self, part: int, replica: int, room: dict[int, int],
               takers_of: dict[tuple[int, ...], list[int]]) -> int:
        """The device with the most room that could take this replica, or -1.

        `takers_of` caches, per set of other replicas, the devices that fit (rooms only
        shrink during one shedding, so a cached device without room is skipped, not wrong).
        """
        others = [row[part] for row in self.rows]
        del others[replica]
        key = tuple(others)
        takers = takers_of.get(key)
        if takers is None:
            used = _used_tiers(self._tiers_of, others)
            caps = self.index.tier_caps
            takers = takers_of[key] = [d for d in room
                                       if _fits(self._tiers_of[d], d, others, used, caps)]
        best, best_room = -1, 0
        for dev_id in takers:
            dev_room = room.get(dev_id, 0)
            if dev_room > best_room:
                best, best_room = dev_id, dev_room
        return best

    def _least_bad(self, others: list[int], used: list[int]) -> int:
        """The device breaking the fewest caps, widest tier first; then the least full."""
        caps = self.index.tier_caps
        best_key: tuple[tuple[int, ...], float] | None = None
        best = -1
        for dev_id, dev_tiers in enumerate(self.index.dev2tiers):
            if dev_tiers is None or dev_id in others:
                continue
            over = tuple(max(0, used.count(t) + 1 - caps[t]) for t in dev_tiers)
            key = (over, self._fill(dev_id, 1))
            if best_key is None or key < best_key:
                best_key, best = key, dev_id
        if best < 0:
            raise AssertionError("no device can take the slot (plan has too few devices)")
        return best


def _fits(dev_tiers: tuple[int, int, int] | None, dev_id: int, others: list[int],
          used: list[int], caps: list[int]) -> bool:
    """Whether a device may take a replica of a partition whose replicas are on `others`."""
    if dev_tiers is None or dev_id in others:
        return False
    region, zone, host = dev_tiers
    return (used.count(host) < caps[host] and used.count(zone) < caps[zone]
            and used.count(region) < caps[region])


def _used_tiers(tiers_of: Sequence[tuple[int, int, int] | None], dev_ids: list[int]) -> list[int]:
    used: list[int] = []
    for dev_id in dev_ids:
        dev_tiers = tiers_of[dev_id]
        if dev_tiers is not None:
            used += dev_tiers
    return used


def _positions(row: array[int], value: int, start: int, stop: int) -> Iterator[int]:
    """Indexes of `value` in row[start:stop] (array.index does the scanning, in C)."""
    while True:
        try:
            start = row.index(value, start, stop)
        except ValueError:
            return
        yield start
        start += 1
