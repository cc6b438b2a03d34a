"""Swift's feature middlewares, one module each, and the order they run in.

``build_stack`` returns them in Swift's ``proxy-server.conf`` order, around the Keystone
authentication step::

    bulk → tempurl → formpost → [keystone auth] → staticweb → container_quotas →
    account_quotas → slo → dlo → versioned_writes → object_versioning → symlink → core

A feature module adds itself where its comment says; nothing is listed before it works,
and only listed middlewares advertise themselves in ``/info``.
"""

from __future__ import annotations

from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.authenticate import Authenticate
from pocketstack.objectstore.proxy.pipeline import Middleware


def build_stack(ctx: ProxyContext) -> list[Middleware]:
    pre_auth: list[Middleware] = []
    # pre-auth, in order: bulk, tempurl, formpost
    post_auth: list[Middleware] = []
    # post-auth, in order: staticweb, container_quotas, account_quotas, slo, dlo,
    # versioned_writes, object_versioning, symlink
    return [*pre_auth, Authenticate(ctx), *post_auth]
