"""Container → account reports: keeps each account's listing and stats in step with its
containers' object counts and bytes.

The proxy marks a container dirty whenever it reports an object change to it; this task
sends each dirty container's current stats to its account's replicas, at most once per
``interval`` per container however many objects changed (Swift's container-updater does
the same job, on a slower schedule).
"""

from __future__ import annotations

import asyncio
import logging

from pocketstack.objectstore.exceptions import SwiftError
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.container import report_to_account
from pocketstack.objectstore.storage.exceptions import StorageError

LOG = logging.getLogger(__name__)


async def flush(ctx: ProxyContext) -> int:
    """Report every dirty container now; how many were reported."""
    dirty = list(ctx.dirty_containers)
    ctx.dirty_containers.clear()
    for account, container in dirty:
        try:
            await report_to_account(ctx, account, container)
        except (SwiftError, StorageError) as exc:  # replicas unavailable: the next pass
            LOG.warning("report of %s/%s to its account failed: %s", account, container, exc)
            ctx.dirty_containers.add((account, container))
        except Exception:  # a bug: the next change or pass retries
            LOG.exception("report of %s/%s to its account failed", account, container)
            ctx.dirty_containers.add((account, container))
    return len(dirty)


async def run(ctx: ProxyContext, interval: float = 0.5) -> None:
    while True:
        await asyncio.sleep(interval)
        await flush(ctx)
