"""The proxy's calls into ``objectstore.constraints`` with this cloud's limits.

A failed check raises ``ConstraintError``; the app maps it to Swift's response (status and
body text) at the edge, once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Literal

from pocketstack.objectstore import constraints
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.request import Request


def true(value: str | None) -> bool:
    return constraints.config_true_value(value)


def account_name(ctx: ProxyContext, raw: bytes) -> str:
    """An account named in a header (copy source or destination)."""
    return constraints.check_account_name(raw, limits=ctx.limits, check_length=False)


def container_name(ctx: ProxyContext, name: str) -> None:
    constraints.check_container_name(name, limits=ctx.limits)


def object_name(ctx: ProxyContext, name: str) -> None:
    constraints.check_object_name(name, limits=ctx.limits)


def metadata(ctx: ProxyContext, req: Request, kind: constraints.MetaTarget) -> None:
    constraints.check_metadata(req.headers.items(), kind, limits=ctx.limits)


def metadata_total(ctx: ProxyContext, stored: Mapping[str, str], updates: Mapping[str, str],
                   kind: Literal["account", "container"]) -> None:
    constraints.check_metadata_total(stored, updates, kind, limits=ctx.limits)


def object_metadata(ctx: ProxyContext, req: Request, _stored: dict[str, str]) -> None:
    metadata(ctx, req, "object")


def content_type(req: Request) -> str:
    return constraints.resolve_content_type(req.headers.items(), req.obj or "")


def object_creation(ctx: ProxyContext, req: Request) -> int | None:
    """Swift's PUT checks; the declared body length (None when chunked)."""
    headers = [(k, v) for k, v in req.headers.items() if k.lower() != "content-type"]
    headers.append(("content-type", content_type(req)))
    created = constraints.check_object_creation(headers, req.obj or "", now=time.time(),
                                                limits=ctx.limits)
    return created.content_length


def delete_at(req: Request) -> int | None:
    return constraints.check_delete_headers(req.headers.items(), now=time.time())
