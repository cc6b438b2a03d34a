"""The expiring-objects queue the proxy fills (the expirer daemon empties it).

As in Swift, the queue is ordinary storage: a hidden account ``.expiring_objects`` whose
containers are named by day (``delete_at // 86400 * 86400``) and hold one row per object to
expire, named ``<delete_at>-<account>/<container>/<object>``.
"""

from __future__ import annotations

from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.account import ensure_account
from pocketstack.objectstore.proxy.controllers.base import container_info, write_all
from pocketstack.objectstore.proxy.controllers.container import report_to_account
from pocketstack.objectstore.timestamp import Timestamp

ACCOUNT = ".expiring_objects"
DIVISOR = 86400
EMPTY_ETAG = "d41d8cd98f00b204e9800998ecf8427e"


def queue_names(delete_at: int, account: str, container: str, obj: str) -> tuple[str, str]:
    return str(delete_at // DIVISOR * DIVISOR), f"{delete_at:010d}-{account}/{container}/{obj}"


async def enqueue(ctx: ProxyContext, account: str, container: str, obj: str, delete_at: int,
                  *, remove: bool = False) -> None:
    """Add (or, with ``remove``, withdraw) an object's expiry in the queue."""
    queue, entry = queue_names(delete_at, account, container, obj)
    await ensure_account(ctx, ACCOUNT)
    await _ensure_queue(ctx, queue)
    ring = ctx.container_ring
    part = ring.get_part(ACCOUNT, queue)
    now = Timestamp.now()
    await write_all(ctx, ring, part, lambda node, dev: node.update_container_listing(
        dev, part, ACCOUNT, queue, entry, timestamp=now, size=0,
        content_type="text/plain", etag=EMPTY_ETAG, deleted=remove))


async def _ensure_queue(ctx: ProxyContext, queue: str) -> None:
    if await container_info(ctx, ACCOUNT, queue) is not None:
        return
    ring = ctx.container_ring
    part = ring.get_part(ACCOUNT, queue)
    now = Timestamp.now()
    await write_all(ctx, ring, part, lambda node, dev: node.put_container(
        dev, part, ACCOUNT, queue, timestamp=now, policy_index=0))
    ctx.info.invalidate(("c", ACCOUNT, queue))
    await report_to_account(ctx, ACCOUNT, queue)
