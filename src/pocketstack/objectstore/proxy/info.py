"""``GET /info``: what this cluster implements, and only that (clients and Swift's own
functional tests decide what to try from it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pocketstack.objectstore.proxy.auth import reseller_prefixes
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.pipeline import Middleware

SWIFT_VERSION = "2.35.0"


def swift_info(ctx: ProxyContext, stack: Sequence[Middleware] = ()) -> dict[str, Any]:
    swift: dict[str, Any] = {
        "version": SWIFT_VERSION,
        "strict_cors_mode": ctx.settings.strict_cors_mode,
        "policies": [_policy(p.name, p.default) for p in ctx.policies],
        "allow_account_management": False,
        "account_autocreate": True,
        **ctx.limits.as_info(),
    }
    prefixes = reseller_prefixes(ctx.settings)
    info: dict[str, Any] = {
        "swift": swift,
        "keystoneauth": {"reseller_prefix": ctx.settings.reseller_prefix,
                         "reseller_prefixes": list(prefixes),
                         "service_roles": {p: list(r) for p, r in prefixes.items() if r}},
        "tempauth": {"account_acls": True}}
    for middleware in stack:  # each feature advertises itself, under Swift's section name
        section = middleware.info()
        if section is not None:
            info[middleware.name] = section
    return info


def _policy(name: str, default: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "aliases": name}
    if default:
        entry["default"] = True
    return entry
