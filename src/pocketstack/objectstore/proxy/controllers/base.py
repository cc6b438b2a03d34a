"""What every controller does with replicas: ask one, ask all, tell all, and look up info.

``call`` runs one storage operation on one replica and turns every outcome into a status
(storage errors carry theirs; a timeout is 503; anything unexpected is logged and 500), and
error-limits devices that failed. ``write_all`` runs a write on each replica's primary and
replaces an unavailable primary by the next handoff (given the write's form for several
devices, it asks a node that holds every replica once); ``read_first`` asks replicas in turn
until one answers. Deciding what the client hears from many answers is ``quorum``'s job.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pocketstack.objectstore.exceptions import HTTPServiceUnavailable, SwiftError
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.nodes import Target
from pocketstack.objectstore.proxy.quorum import best_status
from pocketstack.objectstore.proxy.request import Request
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.exceptions import (
    AccountNotFound,
    ContainerNotFound,
    StorageError,
)
from pocketstack.objectstore.storage.node import StorageNode
from pocketstack.objectstore.storage.types import AccountInfo, ContainerInfo

LOG = logging.getLogger(__name__)
T = TypeVar("T")
Op = Callable[[StorageNode, str], Awaitable[Any]]
BatchOp = Callable[[StorageNode, list[str]], Awaitable[list[Any]]]
"""The same operation on several devices of one node: each device's result or exception."""
# Statuses that mean "this replica could not act": try a handoff instead.
HANDOFF_STATUSES = frozenset({500, 503, 507})


@dataclass
class Outcome:
    target: Target | None
    status: int
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.status // 100 == 2


async def call(ctx: ProxyContext, target: Target, op: Op, *, streaming: bool = False,
               success: int = 200) -> Outcome:
    """One operation on one replica, within ``node_timeout`` (a ``streaming`` write has no
    overall deadline: it goes at the client's pace, and the request body's read timeout
    bounds a stalled client)."""
    assert target.node is not None
    try:
        # a deadline on this task rather than wait_for: no extra task per replica call
        async with asyncio.timeout(None if streaming else ctx.settings.node_timeout):
            value = await op(target.node, target.device.device)
    except Exception as exc:
        return failed(ctx, target, exc)
    return Outcome(target, success, value=value)


def failed(ctx: ProxyContext, target: Target, exc: Exception) -> Outcome:
    """What a replica's failure means: its status (a timeout is 503, anything unexpected
    is logged and 500), the device error-limited when the device is at fault."""
    if isinstance(exc, StorageError):
        if exc.status >= 500:
            ctx.nodes.error(target.device, exc)
            LOG.warning("%s on %s: %s", exc.status, target.name, exc)
        return Outcome(target, exc.status, error=exc)
    if isinstance(exc, SwiftError):  # the client's side failed (its body went away, too big)
        return Outcome(target, exc.status, error=exc)
    if isinstance(exc, TimeoutError):
        ctx.nodes.error(target.device, exc)
        LOG.warning("timeout on %s", target.name)
        return Outcome(target, 503, error=exc)
    # a replica's failure must not fail the request
    ctx.nodes.error(target.device, exc)
    LOG.error("unexpected error on %s", target.name, exc_info=exc)
    return Outcome(target, 500, error=exc)


async def write_all(ctx: ProxyContext, ring: Ring, part: int, op: Op, *,
                    success: int = 200, replicas: int | None = None,
                    batch: BatchOp | None = None) -> list[Outcome]:
    """The write on every replica: each primary, or a handoff in its place.

    With a ``batch`` (the same write on several devices of one node, as
    `StorageNode.delete_object_replicas`), replicas that are all on one node (a
    single-host cloud) are written by one call to it; one that fails there moves on to a
    handoff through ``op``, as it would have alone."""
    n = replicas or ring.replica_count
    targets = ctx.nodes.node_iter(ring, part)
    if batch is not None:
        first = list(itertools.islice(targets, n))
        node = first[0].node if first else None
        if len(first) == n and node is not None and all(t.node is node for t in first):
            return await _write_batch(ctx, node, first, targets, op, batch, success)
        targets = itertools.chain(first, targets)
    slots = [_write_slot(ctx, targets, op, success) for _ in range(n)]
    return list(await asyncio.gather(*slots))


async def _write_batch(ctx: ProxyContext, node: StorageNode, first: list[Target],
                       handoffs: Iterator[Target], op: Op, batch: BatchOp, success: int
                       ) -> list[Outcome]:
    try:
        results = await batch(node, [t.device.device for t in first])
    except Exception as exc:  # the node failed as a whole: each replica hears it
        results = [exc] * len(first)
    outcomes = [failed(ctx, target, result) if isinstance(result, Exception)
                else Outcome(target, success, value=result)
                for target, result in zip(first, results, strict=True)]
    retry = [i for i, outcome in enumerate(outcomes) if outcome.status in HANDOFF_STATUSES]
    again = await asyncio.gather(*(_write_slot(ctx, handoffs, op, success) for _ in retry))
    for i, outcome in zip(retry, again, strict=True):
        if outcome.target is not None:  # a handoff was tried: its outcome counts
            outcomes[i] = outcome
    return outcomes


async def _write_slot(ctx: ProxyContext, targets: Iterator[Target], op: Op, success: int
                      ) -> Outcome:
    last = Outcome(None, 503)
    for target in targets:
        last = await call(ctx, target, op, success=success)
        if last.status not in HANDOFF_STATUSES:
            return last
    return last


async def read_first(ctx: ProxyContext, ring: Ring, part: int, op: Op, *,
                     limit: int | None = None) -> Outcome:
    """The first replica that answers 2xx; otherwise the most telling failure (a 404
    seen anywhere beats the errors of unavailable replicas)."""
    outcomes: list[Outcome] = []
    for target in ctx.nodes.node_iter(ring, part, limit=limit):
        outcome = await call(ctx, target, op)
        if outcome.ok:
            return outcome
        outcomes.append(outcome)
    if not outcomes:
        return Outcome(None, 503)
    not_found = [o for o in outcomes if o.status == 404]
    if not_found:
        return not_found[0]
    decisive = [o for o in outcomes if o.status not in HANDOFF_STATUSES]
    return decisive[0] if decisive else Outcome(None, 503, error=outcomes[-1].error)


async def read_all(ctx: ProxyContext, ring: Ring, part: int, op: Op) -> list[Outcome]:
    """Ask every primary (X-Newest); unavailable ones are replaced by handoffs."""
    return await write_all(ctx, ring, part, op)


def summarize(outcomes: list[Outcome], n: int) -> int:
    return best_status([o.status for o in outcomes], n)


# -- account and container info --------------------------------------------------------------
async def account_info(ctx: ProxyContext, account: str, *, fresh: bool = False
                       ) -> AccountInfo | None:
    """The account's info (cached), None when it does not exist; 503 when no replica
    answered."""
    key = ("a", account)
    if not fresh:
        hit, value = ctx.info.get(key)
        if hit:
            return value  # type: ignore[no-any-return]
    ring = ctx.account_ring
    part = ring.get_part(account)
    outcome = await read_first(ctx, ring, part,
                               lambda node, dev: node.head_account(dev, part, account))
    info = outcome.value if outcome.ok else None
    if outcome.ok or isinstance(outcome.error, AccountNotFound):
        remember_account_info(ctx, account, info)
    elif outcome.status >= 500:
        raise HTTPServiceUnavailable()  # no replica could tell whether it exists
    return info


async def held_for_anonymous(req: Request, lookup: Awaitable[T]
                             ) -> tuple[T | None, HTTPServiceUnavailable | None]:
    """``await lookup`` (an account or container info), and the 503 it raised when no
    replica answered, held back for an anonymous caller: it is authorized first, by the
    container's ACLs alone, as Swift's proxy does (401), and hears the 503 only if they let
    it in. Any other caller hears the 503 at once."""
    try:
        return await lookup, None
    except HTTPServiceUnavailable as exc:
        if req.auth is not None:
            raise
        return None, exc


def _container_key(account: str, container: str) -> tuple[str, str, str]:
    return ("c", account, container)


def cached_container_info(ctx: ProxyContext, account: str, container: str
                          ) -> tuple[bool, ContainerInfo | None]:
    """(whether the cache knows, the info it holds) without asking any replica."""
    return ctx.info.get(_container_key(account, container))  # type: ignore[no-any-return]


async def container_info(ctx: ProxyContext, account: str, container: str, *,
                         fresh: bool = False) -> ContainerInfo | None:
    """The container's info (cached), None when it does not exist; 503 when no replica
    answered."""
    if not fresh:
        hit, value = cached_container_info(ctx, account, container)
        if hit:
            return value
    ring = ctx.container_ring
    part = ring.get_part(account, container)
    outcome = await read_first(
        ctx, ring, part, lambda node, dev: node.head_container(dev, part, account, container))
    info = outcome.value if outcome.ok else None
    if outcome.ok or isinstance(outcome.error, ContainerNotFound):
        remember_container_info(ctx, account, container, info)
    elif outcome.status >= 500:
        raise HTTPServiceUnavailable()  # no replica could tell whether it exists
    return info


def remember_account_info(ctx: ProxyContext, account: str, info: AccountInfo | None) -> None:
    """Cache what a replica just said of the account (None: it does not exist)."""
    ctx.info.put(("a", account), info)


def remember_container_info(ctx: ProxyContext, account: str, container: str,
                            info: ContainerInfo | None) -> None:
    """Cache what a replica just said of the container (None: it does not exist)."""
    ctx.info.put(_container_key(account, container), info)


def forget_account(ctx: ProxyContext, account: str) -> None:
    ctx.info.invalidate(("a", account))


def forget_container(ctx: ProxyContext, account: str, container: str) -> None:
    ctx.info.invalidate(_container_key(account, container))
