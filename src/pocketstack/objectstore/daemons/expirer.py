"""The expirer: removes objects whose X-Delete-At has passed, for good.

A GET already answers 404 for an expired object; each pass walks the due days of the
expiring-objects queue (``proxy/expiring.py``), deletes each due object with a tombstone
stamped at its delete-at time (so a newer PUT of the same name survives), updates the
container listing, and withdraws the queue row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pocketstack.objectstore.exceptions import SwiftError
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import container_info, read_first, write_all
from pocketstack.objectstore.proxy.controllers.obj import Located, update_containers
from pocketstack.objectstore.proxy.expiring import ACCOUNT, enqueue
from pocketstack.objectstore.storage.exceptions import (
    DiskFileExpired,
    NotFound,
    StorageError,
)
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import ListedObject
from pocketstack.objectstore.timestamp import Timestamp

LOG = logging.getLogger(__name__)


@dataclass
class ExpirerStats:
    passes: int = 0
    expired: int = 0
    errors: int = 0


async def run_pass(ctx: ProxyContext, stats: ExpirerStats | None = None,
                   now: float | None = None) -> ExpirerStats:
    stats = stats or ExpirerStats()
    now = time.time() if now is None else now
    for queue in await _due_queues(ctx, now):
        for record in await _entries(ctx, queue):
            delete_at, _, path = record.name.partition("-")
            if int(delete_at) > now:
                break
            try:
                await _expire(ctx, int(delete_at), path)
                stats.expired += 1
            except (SwiftError, StorageError) as exc:  # replicas unavailable: next pass
                stats.errors += 1
                LOG.warning("expiring %s failed: %s", path, exc)
            except Exception:  # a bug; the row stays queued and the next pass retries it
                stats.errors += 1
                LOG.exception("expiring %s failed", path)
    stats.passes += 1
    return stats


async def _due_queues(ctx: ProxyContext, now: float) -> list[str]:
    ring = ctx.account_ring
    part = ring.get_part(ACCOUNT)
    outcome = await read_first(ctx, ring, part, lambda node, dev: node.list_containers(
        dev, part, ACCOUNT, limit=10000))
    if not outcome.ok:
        return []
    return [e.name for e in outcome.value.entries if e.name.isdigit() and int(e.name) <= now]


async def _entries(ctx: ProxyContext, queue: str) -> list[ListedObject]:
    ring = ctx.container_ring
    part = ring.get_part(ACCOUNT, queue)
    outcome = await read_first(ctx, ring, part, lambda node, dev: node.list_objects(
        dev, part, ACCOUNT, queue, limit=10000))
    if not outcome.ok:
        return []
    return [e for e in outcome.value.entries if isinstance(e, ListedObject)]


async def _expire(ctx: ProxyContext, delete_at: int, path: str) -> None:
    account, _, rest = path.partition("/")
    container, _, obj = rest.partition("/")
    info = await container_info(ctx, account, container)
    if info is not None:
        policy = ctx.policies.get(info.storage_policy_index)
        part = policy.ring.get_part(account, container, obj)
        here = Located(account, container, obj, info, policy, part)
        stamp = Timestamp(delete_at)
        outcomes = await write_all(ctx, policy.ring, part, lambda node, dev: _delete_if_due(
            node, dev, here, stamp, delete_at))
        written = [o for o in outcomes if o.ok and o.value]
        if written:
            await update_containers(ctx, here, stamp, written, deleted=True)
    await enqueue(ctx, account, container, obj, delete_at, remove=True)


async def _delete_if_due(node: StorageNode, dev: str, here: Located, stamp: Timestamp,
                         delete_at: int) -> bool:
    """Tombstone the object if it still expires at ``delete_at`` (Swift's X-If-Delete-At):
    a newer PUT or POST may have changed or removed its expiry."""
    args = (dev, here.part, here.account, here.container, here.obj)
    try:
        info = await node.head_object(*args, policy=here.policy.index)
    except DiskFileExpired:
        pass  # due, as expected
    except NotFound:
        return False
    else:
        if info.delete_at != delete_at:
            return False
    await node.delete_object(*args, policy=here.policy.index, timestamp=stamp)
    return True


async def run(ctx: ProxyContext, interval: float, stats: ExpirerStats) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await run_pass(ctx, stats)
        except Exception:
            LOG.exception("expirer pass failed")
