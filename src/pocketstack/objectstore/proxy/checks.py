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

CONTENT_TYPE_OVERRIDDEN = "content_type_overridden"
RESERVED = "\x00"
ALLOW_RESERVED_NAMES = "x-backend-allow-reserved-names"


def true(value: str | None) -> bool:
    return constraints.config_true_value(value)


def account_name(ctx: ProxyContext, raw: bytes) -> str:
    """An account named in a header (copy source or destination)."""
    return constraints.check_account_name(raw, limits=ctx.limits, check_length=False)


def container_name(ctx: ProxyContext, name: str, *, req: Request | None = None) -> None:
    if req is not None and reserved_name(req, name):
        return
    constraints.check_container_name(name, limits=ctx.limits)


def object_name(ctx: ProxyContext, name: str, *, req: Request | None = None) -> None:
    if req is not None and reserved_name(req, name):
        return
    constraints.check_object_name(name, limits=ctx.limits)


def reserved_name(req: Request, name: str) -> bool:
    """Is ``name`` in the reserved namespace (it starts with NUL) and may ``req`` use it?
    Only the proxy's own sub-requests may, with ``X-Backend-Allow-Reserved-Names: true``
    (Swift's: e.g. object versioning's hidden ``<NUL>versions<NUL><container>``); clients
    can neither send that header (the gatekeeper drops it) nor a NUL in a path (412)."""
    return name.startswith(RESERVED) and allows_reserved_names(req)


def allows_reserved_names(req: Request) -> bool:
    return true(req.headers.get(ALLOW_RESERVED_NAMES))


def metadata(ctx: ProxyContext, req: Request, kind: constraints.MetaTarget) -> None:
    constraints.check_metadata(req.headers.items(), kind, limits=ctx.limits)


def metadata_total(ctx: ProxyContext, stored: Mapping[str, str], updates: Mapping[str, str],
                   kind: Literal["account", "container"]) -> None:
    constraints.check_metadata_total(stored, updates, kind, limits=ctx.limits)


def object_metadata(ctx: ProxyContext, req: Request, _stored: dict[str, str]) -> None:
    metadata(ctx, req, "object")


def content_type(req: Request) -> str:
    """The Content-Type a PUT stores; taken as sent when a feature middleware set it on
    its sub-request (``req.state["content_type_overridden"]``, Swift's
    ``swift.content_type_overridden``: a static large object's ``;swift_bytes=N``)."""
    if req.state.get(CONTENT_TYPE_OVERRIDDEN) and req.headers.get("content-type"):
        return req.headers["content-type"]
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
