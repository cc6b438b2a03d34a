"""The auditor: re-reads what this host's devices hold and quarantines what went bad.

Each pass walks every local device: every object file (``list_object_stamps``, then
``get_object_file`` read to the end: a ``.data`` is checked against its size, its CRC-32
and its md5 (a GET checks only the CRC) by the reader a GET uses, which moves a bad file
to ``<dev>/quarantined/objects*/`` and raises; a bad ``.meta`` or ``.ts`` trailer is
quarantined on open), then every account and container database (``PRAGMA
quick_check``; a corrupt one is quarantined). Reads are paced to ``bytes_per_second`` and
``files_per_second``. A quarantined object no longer counts in its suffix hash, so the
next replication pass restores a good copy from another replica. Temp files left by
crashes (older than an hour) are removed on the way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pocketstack.objectstore.daemons.schedule import RateLimiter
from pocketstack.objectstore.storage.exceptions import (
    DatabaseQuarantined,
    DiskFileNotExist,
    DiskFileQuarantined,
    NotFound,
    StorageError,
)
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.types import DB_KINDS, DataKind, ObjectStamp

LOG = logging.getLogger(__name__)
TMP_AGE: Final = 3600.0


@dataclass
class AuditCounts:
    """What the auditor checked on one device (one pass), or in total."""

    partitions: int = 0
    files: int = 0
    bytes: int = 0
    quarantined: int = 0
    dbs: int = 0
    dbs_quarantined: int = 0
    errors: int = 0

    def add(self, other: AuditCounts) -> None:
        for name in vars(other):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class AuditPass:
    started: float
    duration: float = 0.0
    devices: dict[str, AuditCounts] = field(default_factory=dict)

    def total(self) -> AuditCounts:
        total = AuditCounts()
        for counts in self.devices.values():
            total.add(counts)
        return total

    def as_dict(self) -> dict[str, Any]:
        total = self.total()
        rate = total.bytes / self.duration if self.duration > 0 else 0.0
        return {
            "started": self.started,
            "duration": round(self.duration, 6),
            "bytes_per_second": round(rate),
            "total": vars(total),
            "devices": {name: vars(c) for name, c in sorted(self.devices.items())},
        }


@dataclass
class AuditorStats:
    passes: int = 0
    last: AuditPass | None = None
    current: AuditPass | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "passes": self.passes,
            "last": None if self.last is None else self.last.as_dict(),
            "running": None if self.current is None else self.current.as_dict(),
        }


class Auditor:
    """Audit passes over ``devices()`` of ``local`` (see the module docstring)."""

    def __init__(
        self,
        local: LocalNode,
        devices: Callable[[], Sequence[str]],
        policies: Callable[[], Sequence[int]],
        *,
        bytes_per_second: float = 10_000_000,
        files_per_second: float = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.local = local
        self.devices = devices
        self.policies = policies
        self.byte_rate = RateLimiter(bytes_per_second)
        self.file_rate = RateLimiter(files_per_second)
        self.clock = clock
        self.stats = AuditorStats()

    async def run_pass(self) -> AuditPass:
        started = self.clock()
        current = self.stats.current = AuditPass(started)
        try:
            for device in self.devices():
                counts = current.devices[device] = AuditCounts()
                try:
                    await self._audit_device(device, counts)
                except StorageError as exc:  # an unavailable device: the others go on
                    counts.errors += 1
                    LOG.warning("auditor skips %s: %s", device, exc)
        finally:
            self.stats.current = None
        current.duration = self.clock() - started
        self.stats.passes += 1
        self.stats.last = current
        total = current.total()
        LOG.info("audit pass: %d files (%d bytes), %d databases, %d quarantined, %.2fs",
                 total.files, total.bytes, total.dbs, total.quarantined + total.dbs_quarantined,
                 current.duration)  # fmt: skip
        return current

    async def _audit_device(self, device: str, counts: AuditCounts) -> None:
        await self.local.clean_tmp(device, older_than=TMP_AGE)
        for policy in self.policies():
            for partition in await self.local.list_partitions(device, "objects", policy=policy):
                counts.partitions += 1
                stamps = await self.local.list_object_stamps(device, partition, policy=policy)
                for stamp in stamps:
                    await self._audit_object(device, partition, policy, stamp, counts)
        for kind in DB_KINDS:
            for partition in await self.local.list_partitions(device, kind):
                counts.partitions += 1
                for path in await self.local.list_database_files(device, partition, kind):
                    await self._audit_database(device, path, kind, counts)

    async def _audit_object(
        self, device: str, partition: int, policy: int, stamp: ObjectStamp, counts: AuditCounts
    ) -> None:
        for filename in stamp.files:
            await self.file_rate.take(1)
            try:
                file, body = await self.local.get_object_file(
                    device, partition, stamp.name_hash, filename, policy=policy
                )
                try:
                    async for chunk in body:
                        counts.bytes += len(chunk)
                        await self.byte_rate.take(len(chunk))
                finally:
                    await body.aclose()
                counts.files += 1
            except DiskFileQuarantined as exc:
                counts.quarantined += 1
                LOG.warning("auditor quarantined %s/%s: %s", device, filename, exc)
            except DiskFileNotExist:
                continue  # replaced or removed since it was listed

    async def _audit_database(
        self, device: str, path: str, kind: DataKind, counts: AuditCounts
    ) -> None:
        await self.file_rate.take(1)
        try:
            size = await self.local.audit_database(device, path, kind)
        except DatabaseQuarantined as exc:
            counts.dbs_quarantined += 1
            LOG.warning("auditor quarantined %s: %s", path, exc)
            return
        except NotFound:
            return  # removed since it was listed
        counts.dbs += 1
        counts.bytes += size
        await self.byte_rate.take(size)
