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
from pocketstack.objectstore.proxy.middleware.bulk import BulkDelete, BulkUpload
from pocketstack.objectstore.proxy.middleware.container_sync import ContainerSync
from pocketstack.objectstore.proxy.middleware.dlo import DynamicLargeObject
from pocketstack.objectstore.proxy.middleware.formpost import FormPost
from pocketstack.objectstore.proxy.middleware.object_versioning import ObjectVersioning
from pocketstack.objectstore.proxy.middleware.quotas import AccountQuotas, ContainerQuotas
from pocketstack.objectstore.proxy.middleware.slo import StaticLargeObject
from pocketstack.objectstore.proxy.middleware.staticweb import StaticWeb
from pocketstack.objectstore.proxy.middleware.symlink import Symlink
from pocketstack.objectstore.proxy.middleware.tempurl import TempURL
from pocketstack.objectstore.proxy.middleware.versioned_writes import VersionedWrites
from pocketstack.objectstore.proxy.pipeline import Middleware


def build_stack(ctx: ProxyContext) -> list[Middleware]:
    pre_auth: list[Middleware] = []
    # pre-auth, in order: bulk, tempurl, formpost
    pre_auth += [BulkUpload(ctx), BulkDelete(ctx)]
    pre_auth += [TempURL(ctx), FormPost(ctx)]
    post_auth: list[Middleware] = []
    # post-auth, in order: staticweb, container_quotas, account_quotas, slo, dlo,
    # versioned_writes, object_versioning, symlink
    # (container_sync only refuses X-Container-Sync-To, after authorization: not offered)
    post_auth += [ContainerSync(ctx), StaticWeb(ctx)]
    post_auth += [ContainerQuotas(ctx), AccountQuotas(ctx)]
    post_auth += [StaticLargeObject(ctx), DynamicLargeObject(ctx)]
    post_auth += [VersionedWrites(ctx), ObjectVersioning(ctx), Symlink(ctx)]
    return [*pre_auth, Authenticate(ctx), *post_auth]
