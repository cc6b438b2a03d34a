"""Plain object reads: a GET or HEAD that the feature pipeline would only pass on.

Most reads of a cloud ask for one whole object with its owner's token and nothing else:
no query, no Range, no condition, no X-Newest, no Origin. For such a request every
filter of the pipeline (``pipeline.py``) either does not apply or only looks at the
object's metadata on its way back (SLO, DLO, symlinks), and the container's ACLs are not
consulted (the owner may read). `PlainReads` recognises it from the ASGI scope alone and
answers it with the object controller's own steps (``obj.place``,
``obj.plain_get_or_head``), without building a `Request` or entering the pipeline: a
fifth of a small GET's Python calls (docs/performance.md, "Plain object reads").

It answers only what it can vouch for and hands everything else back (``None``):

- a header other than the few in `PLAIN_HEADERS` (Range, If-*, X-Newest, Origin,
  X-Service-Token, X-Web-Mode...; the internal headers a client may not send are gone
  already, removed by the gatekeeper for either path), a query string, a path that is not
  ``/v1/<account>/<container>/<object>``;
- a token that is missing, invalid, limited by access rules, or not the account owner's
  (ACLs, reseller prefixes with service roles);
- a container the info cache does not hold (the full path fetches and caches it), one
  that does not exist, or one with object versioning;
- an object whose metadata a filter acts on (`acted_on`): the response is released and
  the full path reads it again.

A read that fails (404, 503) is not handed back: it raises what the full path raises for
the same request, as the controller is the same. ``tests/unit/objectstore/proxy/
test_plain_read.py`` sends the same requests to the app with and without this lane and
compares the answers, and pins the pipeline's filters: a new filter must be checked here.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Scope

from pocketstack.objectstore import constraints
from pocketstack.objectstore.exceptions import SwiftError
from pocketstack.objectstore.proxy.auth import KeystoneAuth
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers import obj
from pocketstack.objectstore.proxy.controllers.base import cached_container_info
from pocketstack.objectstore.proxy.middleware.object_versioning import versioning_of
from pocketstack.objectstore.proxy.pipeline import release
from pocketstack.objectstore.proxy.request import Response, decode_path, split_path

# Headers that change nothing about a read's answer (the connection's manners, the
# client's name, an Accept an object GET ignores) and the token.
PLAIN_HEADERS = frozenset({b"host", b"user-agent", b"accept", b"accept-encoding",
                           b"connection", b"x-auth-token"})
# Object metadata a filter acts on when it reads the response: SLO and DLO manifests, and
# every system metadata (symlinks; anything a future filter stores about an object).
ACTED_ON = ("x-object-sysmeta-", "x-object-manifest", "x-static-large-object")


def acted_on(metadata: Mapping[str, str]) -> bool:
    return any(name.lower().startswith(ACTED_ON) for name in metadata)


class PlainReads:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.auth = KeystoneAuth(ctx)

    async def answer(self, scope: Scope) -> Response | None:
        """The response to a plain read, or None: not one (the pipeline answers it)."""
        method = scope["method"]
        if method not in ("GET", "HEAD") or scope.get("query_string"):
            return None
        token = None
        for name, value in scope["headers"]:
            if name not in PLAIN_HEADERS:
                return None
            if name == b"x-auth-token" and token is None:
                token = value
        if not token:
            return None
        place = self._place(scope)
        if place is None:
            return None
        path, account, container, name = place
        ctx = self.ctx
        auth = await self.auth.identify(token.decode("latin-1"))
        if auth is None or not auth.allows("object-store", method, path) or \
                not self.auth.owns(auth, account, None):
            return None
        known, info = cached_container_info(ctx, account, container)
        if not known or info is None:
            return None
        if ctx.settings.allow_object_versioning and versioning_of(info).versions is not None:
            return None
        here = obj.place(ctx, account, container, name, info)
        found, response = await obj.plain_get_or_head(ctx, here, method)
        if acted_on(found.metadata):
            await release(response)
            return None
        return response

    def _place(self, scope: Scope) -> tuple[str, str, str, str] | None:
        """(path, account, container, object) of an object path with a valid version and
        account name, else None."""
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            path = decode_path(raw)
            version, account, container, name = split_path(path)
            if account is None or container is None or name is None or \
                    not constraints.valid_api_version(version, limits=self.ctx.limits):
                return None
            constraints.check_account_name(account, limits=self.ctx.limits)
        except (SwiftError, constraints.ConstraintError):
            return None  # the full path gives its answer
        return path, account, container, name
