"""The proxy's edge for internal headers (Swift's ``gatekeeper`` middleware).

System metadata (``X-Account-Sysmeta-*``, ``X-Container-Sysmeta-*``,
``X-Object-Sysmeta-*``, ``X-Object-Transient-Sysmeta-*``) and backend headers
(``X-Backend-*``) belong to the proxy: a client may neither set them (they are removed from
every request as it arrives) nor see them (they are removed from every response as it
leaves). Between the two edges, feature middlewares set them on their sub-requests (the
controllers store them like any metadata) and read them from the responses.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Scope

INTERNAL_PREFIXES = (b"x-account-sysmeta-", b"x-container-sysmeta-", b"x-object-sysmeta-",
                     b"x-object-transient-sysmeta-", b"x-backend-")
_TEXT_PREFIXES = tuple(p.decode("ascii") for p in INTERNAL_PREFIXES)


def is_internal(name: str) -> bool:
    """Is ``name`` a header only the proxy may set and see?"""
    return name.lower().startswith(_TEXT_PREFIXES)


def inbound(scope: Scope) -> Scope:
    """``scope`` without the internal headers a client sent."""
    headers = scope.get("headers", [])
    kept = [(k, v) for k, v in headers if not k.lower().startswith(INTERNAL_PREFIXES)]
    if len(kept) == len(headers):
        return scope
    return {**scope, "headers": kept}


def outbound(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers without the internal ones."""
    return {k: v for k, v in headers.items() if not is_internal(k)}
