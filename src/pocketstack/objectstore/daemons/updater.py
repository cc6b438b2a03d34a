"""The updater: replays container updates that failed (async pendings).

When an object write cannot reach a container replica, the proxy leaves the update as an
async pending on the object's device. Each pass sends every pending update to all of its
container's primaries and deletes the pending file once every one of them took it (as
Swift's object-updater does), so listings converge after a container outage.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import call
from pocketstack.objectstore.storage.exceptions import StorageError
from pocketstack.objectstore.storage.types import AsyncPending

LOG = logging.getLogger(__name__)


@dataclass
class UpdaterStats:
    passes: int = 0
    replayed: int = 0
    failed: int = 0


async def replay_one(ctx: ProxyContext, pending: AsyncPending) -> bool:
    """Send one pending update to its container's primaries; True when all took it."""
    update = pending.update
    ring = ctx.container_ring
    part = ring.get_part(update.account, update.container)
    targets = [t for t in ctx.nodes.primaries(ring, part) if t.node is not None]
    outcomes = await asyncio.gather(*(call(ctx, t, lambda node, dev: node.update_container_listing(
        dev, part, update.account, update.container, update.obj, timestamp=update.timestamp,
        size=update.size, content_type=update.content_type, etag=update.etag,
        deleted=update.deleted, policy_index=update.policy_index)) for t in targets))
    if len(targets) < ring.replica_count or not all(o.ok for o in outcomes):
        return False
    ctx.dirty_containers.add((update.account, update.container))
    return True


async def run_pass(ctx: ProxyContext, stats: UpdaterStats | None = None) -> UpdaterStats:
    stats = stats or UpdaterStats()
    node = ctx.nodes.local
    for device in local_devices(ctx):
        try:
            async for pending in node.iter_async_pendings(device):
                if await replay_one(ctx, pending):
                    await node.remove_async_pending(device, pending.pending_id)
                    stats.replayed += 1
                else:
                    stats.failed += 1
        except StorageError as exc:  # this device is unavailable: the others go on
            LOG.warning("updater skips device %s: %s", device, exc)
    stats.passes += 1
    return stats


def local_devices(ctx: ProxyContext) -> list[str]:
    """Names of this host's devices in any ring."""
    rings = [ctx.account_ring, ctx.container_ring, *(p.ring for p in ctx.policies)]
    names = {d.device for ring in rings for d in ring.devices
             if ctx.nodes.node_for(d) is ctx.nodes.local}
    return sorted(names)


async def run(ctx: ProxyContext, interval: float, stats: UpdaterStats) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await run_pass(ctx, stats)
        except Exception:  # a bad pass must not stop the daemon
            LOG.exception("updater pass failed")
