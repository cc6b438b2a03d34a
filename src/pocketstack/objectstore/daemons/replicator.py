"""The replicator: keeps every replica of objects, containers and accounts on its primaries.

A pass collects the jobs of this host's devices (`jobs.collect_jobs`: every partition on
disk, in every ring; handoffs first) and runs them, ``concurrency`` partitions at a time:
objects with `object_replicator.ObjectSync`, databases with
`db_replicator.DatabaseSync`. What each device did is counted per pass
(`ReplicationCounts`); `ReplicatorStats` keeps the last pass and the one running.

Compared with Swift's replicators: the same push model (each replica pushes what it has
to the others; a handoff pushes to the primaries and then deletes), the same suffix-hash
comparison, and 507 primaries replaced by handoffs. Objects move file by file through the
storage-node API rather than rsync or ssync, and each copy is verified (md5) on both ends.
Suffix hashes are cached per partition as Swift's ``hashes.pkl`` (`storage.suffix_hashes`),
so a quiet partition costs a few syscalls. Databases sync rows after per-peer sync points,
as Swift's usync, but never copy whole files.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pocketstack.objectstore.daemons.cluster import Cluster
from pocketstack.objectstore.daemons.db_replicator import DatabaseSync
from pocketstack.objectstore.daemons.jobs import Job, ReplicationCounts, collect_jobs
from pocketstack.objectstore.daemons.object_replicator import ObjectSync
from pocketstack.objectstore.daemons.schedule import RateLimiter
from pocketstack.objectstore.storage.diskfile import ONE_WEEK
from pocketstack.objectstore.storage.exceptions import StorageError
from pocketstack.objectstore.timestamp import Timestamp

LOG = logging.getLogger(__name__)


@dataclass
class ReplicationPass:
    """One pass: when, how long, and what it did per device."""

    started: float
    duration: float = 0.0
    devices: dict[str, ReplicationCounts] = field(default_factory=dict)

    def total(self) -> ReplicationCounts:
        total = ReplicationCounts()
        for counts in self.devices.values():
            total.add(counts)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "duration": round(self.duration, 6),
            "total": self.total().as_dict(),
            "devices": {name: c.as_dict() for name, c in sorted(self.devices.items())},
        }


@dataclass
class ReplicatorStats:
    passes: int = 0
    last: ReplicationPass | None = None
    current: ReplicationPass | None = None
    """The pass running now (its counts so far), if any."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "passes": self.passes,
            "last": None if self.last is None else self.last.as_dict(),
            "running": None if self.current is None else self.current.as_dict(),
        }


class Replicator:
    """Replication passes over this host's devices (see the module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        concurrency: int = 4,
        reclaim_age: float = ONE_WEEK,
        bytes_per_second: float = 0,
        pause: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.cluster = cluster
        self.concurrency = concurrency
        self.reclaim_age = reclaim_age
        self.limiter = RateLimiter(bytes_per_second)
        self.pause = pause
        """Seconds each worker rests between partitions: a pass is background work, and
        its threads would otherwise compete with requests for the GIL and the disk."""
        self.clock = clock
        self.stats = ReplicatorStats()

    async def run_pass(self) -> ReplicationPass:
        """Replicate every partition of this host's devices once."""
        started = self.clock()
        devices = self.cluster.local_devices()
        current = ReplicationPass(started, devices={d: ReplicationCounts() for d in devices})
        self.stats.current = current
        try:
            jobs = await collect_jobs(self.cluster, devices, self.cluster.local.list_partitions)
            reclaim_before = Timestamp(max(0.0, started - self.reclaim_age))
            pending = iter(jobs)

            async def worker() -> None:
                for job in pending:  # one shared iterator: each job runs once
                    await self._run_job(job, current, reclaim_before)
                    await asyncio.sleep(self.pause)

            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(jobs))):
                    group.create_task(worker())
        finally:
            self.stats.current = None
        current.duration = self.clock() - started
        self.stats.passes += 1
        self.stats.last = current
        _log_pass(current)
        return current

    async def _run_job(self, job: Job, current: ReplicationPass, reclaim_before: Timestamp) -> None:
        counts = current.devices.setdefault(job.device, ReplicationCounts())
        counts.partitions += 1
        counts.handoff_partitions += not job.primary
        try:
            if job.kind == "objects":
                await ObjectSync(self.cluster, job, counts, self.limiter).run()
            else:
                await DatabaseSync(self.cluster, job, counts, reclaim_before).run()
        except StorageError as exc:  # this device failed: its other partitions go on
            counts.failures += 1
            LOG.warning("replication of %s/%s/%d failed: %s", job.device, job.role.name,
                        job.partition, exc)  # fmt: skip
        except Exception:  # a bug must not stop the pass
            counts.failures += 1
            LOG.exception("replication of %s/%s/%d failed", job.device, job.role.name,
                          job.partition)  # fmt: skip


def _log_pass(done: ReplicationPass) -> None:
    total = done.total()
    LOG.info(
        "replication pass: %d partitions (%d handoff), %d objects and %d rows pushed, "
        "%d removed from handoffs, %d failures, %.2fs",
        total.partitions, total.handoff_partitions, total.objects_pushed, total.rows_pushed,
        total.removed, total.failures, done.duration,
    )  # fmt: skip
