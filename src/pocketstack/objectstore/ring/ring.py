"""The ring: its on-disk form (`RingData`) and the live lookup object (`Ring`).

File format, version 1 (the whole file is gzip-compressed with a zero mtime and no file
name, so equal rings are equal bytes)::

    b"PSRG"                       magic
    u16   format version           big-endian, = 1
    u32   header length            big-endian
    header                         JSON, sorted keys: devs (list, null for an unused id),
                                   part_shift, replica_count, version
    replica_count x 2**(32 - part_shift) x u16
                                   replica2part2dev_id, row by row, big-endian

A reader dispatches on the version (`_FORMATS`); nothing is pickled.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import struct
import sys
import time
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.ring.types import (
    Device,
    DeviceId,
    Partition,
    RingFormatError,
    Tier,
)
from pocketstack.objectstore.ring.utils import atomic_write_bytes, tiers_for_dev

log = logging.getLogger(__name__)

MAGIC = b"PSRG"
MAX_PART_POWER = 24


@dataclass
class RingData:
    """Partition tables plus devices: what a ring file holds.

    `replica2part2dev_id[r][p]` is the id of the device holding replica `r` of partition `p`;
    `devs[id]` is that device (None for ids no longer in use).
    """

    replica2part2dev_id: list[array[int]]
    devs: list[Device | None]
    part_shift: int
    version: int = 0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def part_power(self) -> int:
        return 32 - self.part_shift

    @property
    def partition_count(self) -> int:
        return 1 << self.part_power

    @property
    def replica_count(self) -> int:
        return len(self.replica2part2dev_id)

    def validate(self) -> None:
        """Raise RingFormatError unless the tables and devices are consistent."""
        if not 32 - MAX_PART_POWER <= self.part_shift <= 32:
            raise RingFormatError(f"part_shift {self.part_shift} out of range")
        if not self.replica2part2dev_id:
            raise RingFormatError("a ring needs at least one replica")
        for dev_id, dev in enumerate(self.devs):
            if dev is not None and dev.id != dev_id:
                raise RingFormatError(f"device at index {dev_id} has id {dev.id}")
        present = {dev.id for dev in self.devs if dev is not None}
        for row in self.replica2part2dev_id:
            if len(row) != self.partition_count:
                raise RingFormatError(
                    f"a replica row has {len(row)} partitions, expected {self.partition_count}")
            unknown = set(row) - present
            if unknown:
                raise RingFormatError(f"partitions assigned to unknown devices {sorted(unknown)}")

    def to_bytes(self) -> bytes:
        """The file's bytes (deterministic: equal rings give equal bytes)."""
        codec = _FORMATS[-1]
        payload = MAGIC + struct.pack(">H", codec.version) + codec.encode(self)
        return gzip.compress(payload, compresslevel=6, mtime=0)

    @classmethod
    def from_bytes(cls, raw: bytes) -> RingData:
        try:
            payload = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise RingFormatError(f"not a ring file (bad gzip data: {exc})") from exc
        if payload[:4] != MAGIC or len(payload) < 6:
            raise RingFormatError("not a ring file (bad magic)")
        (version,) = struct.unpack_from(">H", payload, 4)
        for codec in _FORMATS:
            if codec.version == version:
                return codec.decode(memoryview(payload)[6:])
        raise RingFormatError(f"unknown ring format version {version}")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temp file, fsync, rename)."""
        atomic_write_bytes(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RingData:
        """Read a ring file; RingFormatError if it is not one, OSError if unreadable."""
        return cls.from_bytes(Path(path).read_bytes())


class _FormatV1:
    """JSON header then big-endian u16 tables (module docstring)."""

    version: ClassVar[int] = 1

    @staticmethod
    def encode(data: RingData) -> bytes:
        header = json.dumps(
            {
                "devs": [dev.to_dict() if dev else None for dev in data.devs],
                "part_shift": data.part_shift,
                "replica_count": data.replica_count,
                "version": data.version,
            },
            sort_keys=True, separators=(",", ":"),
        ).encode("ascii")
        parts = [struct.pack(">I", len(header)), header]
        for row in data.replica2part2dev_id:
            parts.append(_to_big_endian(row))
        return b"".join(parts)

    @staticmethod
    def decode(body: memoryview) -> RingData:
        try:
            (header_len,) = struct.unpack_from(">I", body, 0)
            header = json.loads(bytes(body[4:4 + header_len]))
            part_shift, replicas = int(header["part_shift"]), int(header["replica_count"])
            devs = [Device.from_dict(d) if d is not None else None for d in header["devs"]]
            version = int(header.get("version", 0))
        except (struct.error, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RingFormatError(f"bad ring header: {exc}") from exc
        if not 32 - MAX_PART_POWER <= part_shift <= 32 or not 1 <= replicas <= 255:
            raise RingFormatError("bad ring header: part_shift or replica_count out of range")
        row_bytes = 2 << (32 - part_shift)  # u16 per partition
        tables = body[4 + header_len:]
        if len(tables) != replicas * row_bytes:
            raise RingFormatError("ring file truncated or too long")
        rows = [_from_big_endian(tables[r * row_bytes:(r + 1) * row_bytes])
                for r in range(replicas)]
        return RingData(rows, devs, part_shift, version)


_FORMATS: list[type[_FormatV1]] = [_FormatV1]


def _to_big_endian(row: array[int]) -> bytes:
    if sys.byteorder == "big":
        return row.tobytes()
    swapped = array("H", row)
    swapped.byteswap()
    return swapped.tobytes()


def _from_big_endian(raw: memoryview) -> array[int]:
    row = array("H")
    row.frombytes(raw)
    if sys.byteorder == "little":
        row.byteswap()
    return row


@dataclass(frozen=True)
class _Snapshot:
    """One loaded ring; swapped whole on reload, so a lookup never sees half of two rings."""

    data: RingData
    devices: tuple[Device, ...]
    dev2tiers: dict[DeviceId, tuple[Tier, ...]]
    stat_key: tuple[int, int, int]


class Ring:
    """Partition and node lookups over a ring file, reloaded when the file changes.

    The file is checked at most every `reload_interval` seconds (its mtime, size and inode:
    `RingData.save` renames, so a new ring is a new inode). If a changed file cannot be read,
    the old ring stays in use and a warning is logged. The first load raises instead
    (OSError, RingFormatError).
    """

    def __init__(self, path: str | os.PathLike[str], hasher: PathHasher, *,
                 reload_interval: float = 15.0) -> None:
        self.path = Path(path)
        self.hasher = hasher
        self.reload_interval = reload_interval
        self._state = self._read()
        self._next_check = time.monotonic() + reload_interval

    def _read(self) -> _Snapshot:
        stat = os.stat(self.path)
        data = RingData.load(self.path)
        devices = tuple(dev for dev in data.devs if dev is not None)
        return _Snapshot(
            data=data,
            devices=devices,
            dev2tiers={dev.id: tiers_for_dev(dev) for dev in devices},
            stat_key=(stat.st_mtime_ns, stat.st_size, stat.st_ino),
        )

    def reload_if_changed(self) -> bool:
        """Check the file now; reload it if it changed. True when a new ring was loaded."""
        self._next_check = time.monotonic() + self.reload_interval
        try:
            stat = os.stat(self.path)
            if (stat.st_mtime_ns, stat.st_size, stat.st_ino) == self._state.stat_key:
                return False
            self._state = self._read()
        except (OSError, RingFormatError) as exc:
            log.warning("keeping the loaded ring: cannot reload %s: %s", self.path, exc)
            return False
        return True

    def _current(self) -> _Snapshot:
        if time.monotonic() >= self._next_check:
            self.reload_if_changed()
        return self._state

    @property
    def partition_count(self) -> int:
        return self._current().data.partition_count

    @property
    def replica_count(self) -> int:
        return self._current().data.replica_count

    @property
    def part_power(self) -> int:
        return self._current().data.part_power

    @property
    def version(self) -> int:
        return self._current().data.version

    @property
    def devices(self) -> Sequence[Device]:
        """Every device in the ring (weight 0 included), by id."""
        return self._current().devices

    def get_part(self, account: str, container: str | None = None,
                 obj: str | None = None) -> Partition:
        """The partition of a path: the top `part_power` bits of its salted md5."""
        digest = self.hasher.digest(account, container, obj)
        return Partition(struct.unpack_from(">I", digest)[0] >> self._current().data.part_shift)

    def get_part_nodes(self, part: int) -> list[Device]:
        """The primary devices of a partition, replica order, each device once."""
        return _part_nodes(self._current(), part)

    def get_nodes(self, account: str, container: str | None = None,
                  obj: str | None = None) -> tuple[Partition, list[Device]]:
        part = self.get_part(account, container, obj)
        return part, self.get_part_nodes(part)

    def get_more_nodes(self, part: int) -> Iterator[Device]:
        """Handoff devices for a partition: every other device, once, best first.

        First devices in a region no primary (nor earlier handoff) uses, then a new zone,
        then a new host, then all the rest. Within each pass devices are ranked by weighted
        rendezvous hashing of (partition, device id), so the order is fixed for a given ring,
        spreads handoff load by weight, and mostly survives ring changes (adding a device
        only inserts it). Weight 0 devices come last.
        """
        state = self._current()
        primaries = _part_nodes(state, part)
        return _handoffs(state, part, primaries)


def _part_nodes(state: _Snapshot, part: int) -> list[Device]:
    data = state.data
    if not 0 <= part < data.partition_count:
        raise ValueError(f"partition {part} out of range 0..{data.partition_count - 1}")
    nodes: list[Device] = []
    for row in data.replica2part2dev_id:
        dev = data.devs[row[part]]
        if dev is not None and all(node.id != dev.id for node in nodes):
            nodes.append(dev)
    return nodes


def _handoffs(state: _Snapshot, part: int, primaries: list[Device]) -> Iterator[Device]:
    used_ids = {dev.id for dev in primaries}
    used_tiers = {tier for dev in primaries for tier in state.dev2tiers[dev.id][:3]}
    ranked = sorted((dev for dev in state.devices if dev.id not in used_ids),
                    key=lambda dev: _rendezvous_score(part, dev))
    for level in range(3):
        for dev in ranked:
            tiers = state.dev2tiers[dev.id]
            if dev.id not in used_ids and tiers[level] not in used_tiers and dev.weight > 0:
                used_ids.add(dev.id)
                used_tiers.update(tiers[:3])
                yield dev
    for dev in ranked:
        if dev.id not in used_ids:
            yield dev


def _rendezvous_score(part: int, dev: Device) -> tuple[float, int]:
    if dev.weight <= 0:
        return (math.inf, dev.id)
    digest = hashlib.md5(f"{part}/{dev.id}".encode(), usedforsecurity=False).digest()
    uniform = (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64
    return (-math.log(uniform) / dev.weight, dev.id)
