"""Shared builders, layouts (hypothesis strategies) and checks for the ring tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.ring.plan import build_plan
from pocketstack.objectstore.ring.ring import RingData


@dataclass(frozen=True)
class Slot:
    """One device to add: region, zone, host number (the ip is derived), weight."""

    region: int
    zone: int
    host: int
    weight: float


class FakeClock:
    """A settable clock (seconds), for min_part_hours."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance_hours(self, hours: float) -> None:
        self.now += hours * 3600


def host_ip(slot: Slot) -> str:
    return f"10.{slot.region}.{slot.zone}.{slot.host + 1}"


def add_slots(builder: RingBuilder, slots: Sequence[Slot], first_name: int = 0) -> list[int]:
    ids = []
    for n, slot in enumerate(slots, start=first_name):
        ids.append(builder.add_dev(region=slot.region, zone=slot.zone, ip=host_ip(slot),
                                   port=6200, device=f"d{n}", weight=slot.weight))
    return ids


def make_builder(slots: Sequence[Slot], *, part_power: int, replicas: int,
                 min_part_hours: int = 0, clock: FakeClock | None = None) -> RingBuilder:
    builder = RingBuilder(part_power, replicas, min_part_hours, clock=clock or FakeClock())
    add_slots(builder, slots)
    return builder


def tables(builder: RingBuilder) -> list[list[int]]:
    return [list(row) for row in builder.get_ring().replica2part2dev_id]


def assert_distinct_devices(data: RingData) -> None:
    """Every partition has one replica per row, on `replica_count` distinct live devices."""
    for part, dev_ids in enumerate(zip(*data.replica2part2dev_id, strict=True)):
        assert len(set(dev_ids)) == data.replica_count, (part, dev_ids)
        assert all(data.devs[d] is not None for d in dev_ids), (part, dev_ids)


def is_weight_proportional(builder: RingBuilder) -> bool:
    """Whether no cap binds: every device's plan quota is its share by weight."""
    devs = [dev for dev in builder.devices if dev.id not in builder.removing]
    plan = build_plan(devs, builder.replicas, builder.partition_count)
    total = sum(dev.weight for dev in devs)
    slots = builder.replicas * builder.partition_count
    return all(abs(plan.quota(dev.id) - slots * dev.weight / total) < 1e-6 for dev in devs
               if dev.weight > 0)


@st.composite
def any_layout(draw: st.DrawFn, min_devices: int = 1) -> list[Slot]:
    """Anything: 1-2 regions, 1-4 zones, 1-3 hosts a zone, weights 0-300 (mostly > 0)."""
    count = draw(st.integers(min_value=min_devices, max_value=14))
    return [Slot(region=draw(st.integers(1, 2)), zone=draw(st.integers(1, 4)),
                 host=draw(st.integers(0, 2)),
                 weight=draw(st.sampled_from([50.0, 100.0, 100.0, 150.0, 300.0])))
            for _ in range(count)]


@st.composite
def grid_layout(draw: st.DrawFn, replicas: int) -> list[Slot]:
    """A layout where no cap binds: one region, at least 2 x replicas zones, the same number
    of hosts and devices in each, weights within 20 % of each other. Every tier's share by
    weight stays below one replica, so placement can follow weight exactly."""
    zones = draw(st.integers(2 * replicas, 2 * replicas + 2))
    hosts = draw(st.integers(1, 2))
    devices = draw(st.integers(1, 2))
    return [Slot(region=1, zone=z, host=h, weight=draw(st.sampled_from([80.0, 100.0, 120.0])))
            for z in range(1, zones + 1) for h in range(hosts) for _ in range(devices)]
