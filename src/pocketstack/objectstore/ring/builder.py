"""`RingBuilder`: devices in, balanced partition tables out, and its own file format.

The builder owns the devices, the tables and each partition's last-move time; `plan.py`
decides how many replicas each tier should hold, `placement.py` places them. A device id is
never reused, so an id names one device for the builder's whole life.

Builder file, version 1: gzip (zero mtime) of one JSON object with sorted keys::

    format            "pocketstack-ring-builder"
    version           1
    part_power, replicas, min_part_hours, ring_version
    devs              list, null for ids no longer in use
    removing          ids removed but not yet rebalanced away
    replica2part2dev_id  null, or one base64 string per replica (big-endian u16)
    part2moved_at     null, or base64 (big-endian u32 minutes since the epoch)
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import sys
import time
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pocketstack.objectstore.ring.placement import Rebalancer, Rows, count_slots, deal
from pocketstack.objectstore.ring.plan import PlanIndex, build_plan
from pocketstack.objectstore.ring.ring import MAX_PART_POWER, RingData
from pocketstack.objectstore.ring.stats import RingStats, compute_stats
from pocketstack.objectstore.ring.types import (
    MAX_DEVICE_ID,
    Device,
    DeviceId,
    RingBuilderError,
    RingFormatError,
)
from pocketstack.objectstore.ring.utils import (
    DeviceSearch,
    atomic_write_bytes,
    validate_device_name,
    validate_ip,
    validate_meta,
    validate_port,
    validate_region_or_zone,
    validate_weight,
)

BUILDER_FORMAT = "pocketstack-ring-builder"
BUILDER_VERSION = 1
MAX_REPLICAS = 64
MAX_MIN_PART_HOURS = 24 * 365


@dataclass(frozen=True)
class RebalanceResult:
    """What a rebalance did.

    `parts_moved` counts replica slots that changed device (a partition whose three replicas
    all moved counts 3). `blocked` is an upper bound on the moves put off because their
    partitions moved less than `min_part_hours` ago: when it is not 0, rebalance again after
    that time. `balance` and `dispersion` are as in `stats.py`.
    """

    parts_moved: int
    balance: float
    dispersion: float
    blocked: int = 0
    removed_devices: tuple[DeviceId, ...] = ()


class RingBuilder:
    """Builds a ring: `add_dev` / `remove_dev` / `set_dev_weight`, then `rebalance`.

    Raises ValueError (RingBuilderError for state problems) on bad arguments.
    """

    def __init__(self, part_power: int, replicas: int, min_part_hours: int, *,
                 clock: Callable[[], float] = time.time) -> None:
        _check_int("part_power", part_power, 0, MAX_PART_POWER)
        _check_int("replicas", replicas, 1, MAX_REPLICAS)
        _check_int("min_part_hours", min_part_hours, 0, MAX_MIN_PART_HOURS)
        self.part_power = part_power
        self.replicas = replicas
        self.min_part_hours = min_part_hours
        self.ring_version = 0
        self._clock = clock
        self._devs: list[Device | None] = []
        self._removing: set[DeviceId] = set()
        self._rows: Rows | None = None
        self._part2moved_at = array("I", [0]) * self.partition_count

    @property
    def partition_count(self) -> int:
        return 1 << self.part_power

    @property
    def devices(self) -> list[Device]:
        """Every device, by id, including those removed but not yet rebalanced away."""
        return [dev for dev in self._devs if dev is not None]

    @property
    def rebalanced(self) -> bool:
        """Whether the builder has a layout (it has been rebalanced at least once)."""
        return self._rows is not None

    @property
    def removing(self) -> frozenset[DeviceId]:
        return frozenset(self._removing)

    def get_dev(self, dev_id: int) -> Device:
        """The device with this id; RingBuilderError if there is none."""
        if 0 <= dev_id < len(self._devs):
            dev = self._devs[dev_id]
            if dev is not None:
                return dev
        raise RingBuilderError(f"no device with id {dev_id}")

    def search_devs(self, search: DeviceSearch) -> list[Device]:
        return [dev for dev in self.devices if search.matches(dev)]

    def add_dev(self, *, region: int = 1, zone: int, ip: str, port: int, device: str,
                weight: float, meta: str = "") -> DeviceId:
        """Add a device; it gets partitions at the next rebalance. Returns its new id."""
        ip = validate_ip(ip)
        dev = Device(
            id=DeviceId(len(self._devs)),
            region=validate_region_or_zone("region", region),
            zone=validate_region_or_zone("zone", zone),
            ip=ip, port=validate_port(port), device=validate_device_name(device),
            weight=validate_weight(weight), meta=validate_meta(meta),
        )
        if dev.id > MAX_DEVICE_ID:
            raise RingBuilderError(f"a ring holds at most {MAX_DEVICE_ID + 1} device ids")
        for other in self.devices:
            if (other.ip, other.port, other.device) == (ip, port, device):
                raise RingBuilderError(f"device {other} already uses {ip}:{port}/{device}")
        self._devs.append(dev)
        return dev.id

    def remove_dev(self, dev_id: int) -> None:
        """Mark a device for removal: the next rebalance moves all its partitions away
        (min_part_hours or not) and forgets it."""
        dev = self.get_dev(dev_id)
        self._removing.add(dev.id)

    def set_dev_weight(self, dev_id: int, weight: float) -> None:
        dev = self.get_dev(dev_id)
        if dev.id in self._removing:
            raise RingBuilderError(f"device {dev} is being removed")
        self._devs[dev.id] = replace(dev, weight=validate_weight(weight))

    def pretend_min_part_hours_passed(self) -> None:
        """Forget when partitions last moved, so the next rebalance may move any of them."""
        self._part2moved_at = array("I", [0]) * self.partition_count

    def rebalance(self, seed: int | None = None) -> RebalanceResult:
        """Place unplaced replicas and move what must move; deterministic for a given seed.

        Raises RingBuilderError when fewer devices of weight > 0 exist than replicas.
        """
        rng = random.Random(seed)  # our own generator: the global random state is untouched
        active = [dev for dev in self.devices if dev.id not in self._removing]
        plan = build_plan(active, self.replicas, self.partition_count)
        removing = tuple(sorted(self._removing))
        now = int(self._clock() // 60)
        counts = count_slots(self._rows, len(self._devs)) if self._rows is not None else []
        if self._rows is None or sum(counts) == sum(counts[d] for d in removing):
            self._rows = deal(plan, rng)
            self._part2moved_at = array("I", [now]) * self.partition_count
            counts = count_slots(self._rows, len(self._devs))
            moved, blocked = self.replicas * self.partition_count, 0
        else:
            index = PlanIndex.from_plan(plan, len(self._devs), counts)
            rebalancer = Rebalancer(self._rows, index, self._part2moved_at, now,
                                    self.min_part_hours * 60, rng, counts)
            moved, blocked = rebalancer.run(removing), rebalancer.blocked
        for dev_id in removing:
            self._devs[dev_id] = None
        self._removing.clear()
        if moved or removing:
            self.ring_version += 1
        stats = compute_stats(self._devs, self._rows, self.replicas, self.partition_count,
                              counts=counts)
        return RebalanceResult(moved, stats.balance, stats.dispersion, blocked, removing)

    def stats(self) -> RingStats:
        return compute_stats(self._devs, self._rows, self.replicas, self.partition_count)

    def get_ring(self) -> RingData:
        """The ring as last rebalanced; RingBuilderError before the first rebalance."""
        if self._rows is None:
            raise RingBuilderError("the builder has never been rebalanced")
        return RingData([array("H", row) for row in self._rows], list(self._devs),
                        32 - self.part_power, self.ring_version)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the builder state atomically (deterministic bytes)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        atomic_write_bytes(Path(path), gzip.compress(text.encode("ascii"), compresslevel=6,
                                                     mtime=0))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *,
             clock: Callable[[], float] = time.time) -> RingBuilder:
        """Read a builder file; RingFormatError if it is not one, OSError if unreadable."""
        raw = Path(path).read_bytes()
        try:
            state = json.loads(gzip.decompress(raw))
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            raise RingFormatError(f"not a ring builder file: {exc}") from exc
        return cls.from_dict(state, clock=clock)

    def to_dict(self) -> dict[str, Any]:
        rows = self._rows
        return {
            "format": BUILDER_FORMAT,
            "version": BUILDER_VERSION,
            "part_power": self.part_power,
            "replicas": self.replicas,
            "min_part_hours": self.min_part_hours,
            "ring_version": self.ring_version,
            "devs": [dev.to_dict() if dev else None for dev in self._devs],
            "removing": sorted(self._removing),
            "replica2part2dev_id": None if rows is None else [_pack(r, "H") for r in rows],
            "part2moved_at": None if rows is None else _pack(self._part2moved_at, "I"),
        }

    @classmethod
    def from_dict(cls, state: Any, *, clock: Callable[[], float] = time.time) -> RingBuilder:
        if not isinstance(state, dict) or state.get("format") != BUILDER_FORMAT:
            raise RingFormatError("not a ring builder file")
        if state.get("version") != BUILDER_VERSION:
            raise RingFormatError(f"unknown ring builder version {state.get('version')!r}")
        try:
            builder = cls(state["part_power"], state["replicas"], state["min_part_hours"],
                          clock=clock)
            builder._restore(state)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RingFormatError):
                raise
            raise RingFormatError(f"bad ring builder file: {exc!r}") from exc
        return builder

    def _restore(self, state: dict[str, Any]) -> None:
        self.ring_version = int(state["ring_version"])
        self._devs = [Device.from_dict(d) if d is not None else None for d in state["devs"]]
        self._removing = {DeviceId(int(d)) for d in state["removing"]}
        for dev_id in self._removing:
            self.get_dev(dev_id)
        if state["replica2part2dev_id"] is not None:
            self._rows = [_unpack(r, "H", self.partition_count)
                          for r in state["replica2part2dev_id"]]
            self._part2moved_at = _unpack(state["part2moved_at"], "I", self.partition_count)
            if len(self._rows) != self.replicas:
                raise RingFormatError("replica tables do not match the replica count")
            self.get_ring()  # validates device ids in the tables


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")


def _pack(values: array[int], typecode: str) -> str:
    out = array(typecode, values)
    if out.itemsize not in (2, 4):
        raise AssertionError("unexpected array item size")
    if sys.byteorder == "little":
        out.byteswap()
    return base64.b64encode(out.tobytes()).decode("ascii")


def _unpack(text: str, typecode: str, length: int) -> array[int]:
    out = array(typecode)
    out.frombytes(base64.b64decode(text, validate=True))
    if len(out) != length:
        raise RingFormatError(f"table of {len(out)} entries, expected {length}")
    if sys.byteorder == "little":
        out.byteswap()
    return out
