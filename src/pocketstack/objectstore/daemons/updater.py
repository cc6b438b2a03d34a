"""The updater: replays container updates that failed (async pendings).

When an object write cannot reach a container replica, the proxy leaves the update as an
async pending on the object's device. Each pass sends every pending update of this host's
devices to all of its container's primaries and deletes the pending file once every one
of them took it (as Swift's object-updater does), so listings converge after a container
outage. It runs wherever devices are: in ``pocketstack up`` and in each ``storage-node``
(container replicas on other hosts are reached through the `Cluster`'s nodes).

A container that took updates must then tell its account its new usage: ``on_replayed``
is called with each one (``pocketstack up`` marks it dirty for the proxy's reporter); by
default the updater reports it itself after the pass (`report_containers`: the newest
state among the container's primaries, to every account primary).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pocketstack.objectstore.daemons.cluster import Cluster
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.exceptions import StorageError
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import AsyncPending, ContainerInfo

LOG = logging.getLogger(__name__)
T = TypeVar("T")
ContainerName = tuple[str, str]


@dataclass
class UpdaterStats:
    passes: int = 0
    replayed: int = 0
    failed: int = 0
    reported: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


async def _on_each(
    cluster: Cluster, ring: Ring, part: int, op: Callable[[StorageNode, str], Awaitable[T]]
) -> list[T | None]:
    """``op`` on each primary of ``part`` at once; None where it failed (or no node)."""

    async def one(device: Any) -> T | None:
        node = cluster.node_for(device)
        if node is None:
            return None
        try:
            return await asyncio.wait_for(op(node, device.device), cluster.timeout)
        except (StorageError, TimeoutError) as exc:
            LOG.info("updater: %s/%s: %s", device.address, device.device, exc)
            return None

    primaries = ring.get_part_nodes(part)
    results = await asyncio.gather(*(one(d) for d in primaries))
    return [*results, *([None] * (ring.replica_count - len(primaries)))]


async def replay_one(cluster: Cluster, pending: AsyncPending) -> bool:
    """Send one pending update to its container's primaries; True when all took it."""
    update = pending.update
    ring = cluster.container_ring
    part = ring.get_part(update.account, update.container)

    async def send(node: StorageNode, device: str) -> bool:
        await node.update_container_listing(
            device, part, update.account, update.container, update.obj,
            timestamp=update.timestamp, size=update.size, content_type=update.content_type,
            etag=update.etag, deleted=update.deleted, policy_index=update.policy_index,
        )  # fmt: skip
        return True

    return all(await _on_each(cluster, ring, part, send))


async def run_pass(
    cluster: Cluster,
    stats: UpdaterStats | None = None,
    on_replayed: Callable[[str, str], None] | None = None,
) -> UpdaterStats:
    stats = stats or UpdaterStats()
    node = cluster.local
    touched: set[ContainerName] = set()
    for device in cluster.local_devices():
        try:
            async for pending in node.iter_async_pendings(device):
                if await replay_one(cluster, pending):
                    await node.remove_async_pending(device, pending.pending_id)
                    stats.replayed += 1
                    touched.add((pending.update.account, pending.update.container))
                else:
                    stats.failed += 1
        except StorageError as exc:  # this device is unavailable: the others go on
            LOG.warning("updater skips device %s: %s", device, exc)
    if on_replayed is not None:
        for account, container in sorted(touched):
            on_replayed(account, container)
    else:
        reported = await report_containers(cluster, sorted(touched))
        stats.reported += reported
    stats.passes += 1
    return stats


async def report_containers(cluster: Cluster, containers: list[ContainerName]) -> int:
    """Tell each container's account its current state; how many were reported."""
    reported = 0
    for account, container in containers:
        ring = cluster.container_ring
        part = ring.get_part(account, container)

        async def head(node: StorageNode, device: str) -> ContainerInfo:
            return await node.head_container(device, part, account, container)  # noqa: B023

        infos = [i for i in await _on_each(cluster, ring, part, head) if i is not None]
        if infos:
            newest = max(infos, key=lambda i: (i.put_timestamp, i.object_count))
            sent = await _report(cluster, newest)
            reported += sent
    return reported


async def _report(cluster: Cluster, info: ContainerInfo) -> int:
    ring = cluster.account_ring
    part = ring.get_part(info.account)

    async def send(node: StorageNode, device: str) -> bool:
        await node.update_account_listing(
            device, part, info.account, info.container, put_timestamp=info.put_timestamp,
            delete_timestamp=info.delete_timestamp, object_count=info.object_count,
            bytes_used=info.bytes_used, policy_index=info.storage_policy_index,
        )  # fmt: skip
        return True

    return int(any(await _on_each(cluster, ring, part, send)))
