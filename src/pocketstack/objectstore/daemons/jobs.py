"""Replication jobs: one partition of one local device in one ring, its peers, its counts.

`collect_jobs` turns what this host's devices hold into jobs: for each ring and each local
device, each partition on disk. If the device is one of the partition's primaries, the
job syncs it with the other primaries (an *update*, in Swift's words); if not (a handoff
that took writes during an outage, or a partition a rebalance moved away), it pushes
everything to every primary and removes its copy once they all have it (a *revert*).
Handoff jobs come first, so moved data reaches its primaries early in a pass.

`for_each_peer` runs a job's sync with each peer in turn. A primary that answers 507 (its
device is unavailable) is replaced by the partition's next handoff, so an update still
makes every replica (Swift does the same); any other failure counts, and a revert keeps
its copy for the next pass.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pocketstack.objectstore.daemons.cluster import Cluster, RingRole
from pocketstack.objectstore.ring.types import Device
from pocketstack.objectstore.storage.exceptions import InsufficientStorage, StorageError
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import DataKind

LOG = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ReplicationCounts:
    """What replication did (one device, one pass; or totals)."""

    partitions: int = 0
    """Partitions checked (primary and handoff)."""
    handoff_partitions: int = 0
    suffixes_synced: int = 0
    objects_pushed: int = 0
    files_pushed: int = 0
    bytes_pushed: int = 0
    dbs_checked: int = 0
    dbs_synced: int = 0
    rows_pushed: int = 0
    removed: int = 0
    """Objects and databases removed from handoffs once every primary had them."""
    reclaimed: int = 0
    """Deleted databases removed after the reclaim age."""
    failures: int = 0

    def add(self, other: ReplicationCounts) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Job:
    """One partition of one local device in one ring (see the module docstring)."""

    role: RingRole
    device: str
    partition: int
    primary: bool
    peers: tuple[Device, ...]
    """The other primaries (update), or every primary (revert)."""

    @property
    def kind(self) -> DataKind:
        return self.role.kind

    @property
    def policy(self) -> int:
        return self.role.policy


@dataclass(frozen=True)
class Target:
    """A peer device and the node serving it."""

    device: Device
    node: StorageNode

    @property
    def name(self) -> str:
        return f"{self.device.address}/{self.device.device}"


def make_job(cluster: Cluster, role: RingRole, device: str, partition: int) -> Job | None:
    """The job for a partition found on ``device``; None if the ring has no such partition."""
    try:
        primaries = role.ring.get_part_nodes(partition)
    except ValueError:
        LOG.warning("%s/%s: partition %d is not in the %s ring", device, role.kind, partition,
                    role.name)  # fmt: skip
        return None
    mine = [d for d in primaries if d.device == device and cluster.is_local(d)]
    peers = tuple(d for d in primaries if d not in mine)
    return Job(role, device, partition, bool(mine), peers)


async def collect_jobs(
    cluster: Cluster, devices: list[str], list_partitions: Callable[..., Awaitable[list[int]]]
) -> list[Job]:
    """Every job of this host's ``devices``, handoffs first (unavailable devices skipped)."""
    jobs = []
    for role in cluster.rings():
        for device in devices:
            try:
                partitions = await list_partitions(device, role.kind, policy=role.policy)
            except StorageError as exc:
                LOG.warning("replication skips %s: %s", device, exc)
                continue
            for partition in partitions:
                job = make_job(cluster, role, device, partition)
                if job is not None:
                    jobs.append(job)
    return sorted(jobs, key=lambda job: job.primary)


def _handoffs(cluster: Cluster, job: Job) -> Iterator[Device]:
    """The partition's handoffs a failed primary may be replaced by (not this device)."""
    for device in job.role.ring.get_more_nodes(job.partition):
        if not (device.device == job.device and cluster.is_local(device)):
            yield device


async def for_each_peer(
    cluster: Cluster,
    job: Job,
    sync: Callable[[Target], Awaitable[T]],
    counts: ReplicationCounts,
) -> list[T] | None:
    """``sync`` with each peer in turn (module docstring); the results, None if one failed."""
    results: list[T] = []
    failed = False
    spares: Iterator[Device] | None = None
    for device in job.peers:
        current: Device | None = device
        while current is not None:
            outcome = await _attempt(cluster, current, sync)
            if outcome is not _UNAVAILABLE and outcome is not _FAILED:
                results.append(outcome)
                break
            if outcome is _FAILED or not job.primary:
                failed = True
                counts.failures += 1
                break
            spares = spares or _handoffs(cluster, job)
            current = next(spares, None)
            if current is None:
                failed = True
                counts.failures += 1
    return None if failed else results


_UNAVAILABLE: Any = object()
_FAILED: Any = object()


async def _attempt(cluster: Cluster, device: Device, sync: Callable[[Target], Awaitable[T]]) -> Any:
    node = cluster.node_for(device)
    target_name = f"{device.address}/{device.device}"
    if node is None:
        LOG.warning("replication: no node serves %s", target_name)
        return _FAILED
    try:
        return await sync(Target(device, node))
    except InsufficientStorage as exc:
        LOG.warning("replication: %s unavailable: %s", target_name, exc)
        return _UNAVAILABLE
    except (StorageError, TimeoutError) as exc:
        LOG.warning("replication with %s failed: %s", target_name, exc)
        return _FAILED
    except Exception:  # a bug must not stop the pass
        LOG.exception("replication with %s failed", target_name)
        return _FAILED
