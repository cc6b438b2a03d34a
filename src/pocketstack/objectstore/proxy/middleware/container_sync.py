"""Container sync is not offered: ``X-Container-Sync-To`` is refused the way Swift refuses
it on a cluster that has no ``container-sync-realms.conf`` and an empty
``allowed_sync_hosts`` (its container server's ``validate_sync_to``), and ``/info`` has no
``container_sync`` section, so clients know not to rely on it.

Why not: syncing means a daemon that walks every container's rows and replays them, with
signed requests, to another cluster (or a realm's cluster within this one); pocketstack has
one cluster and no realms to sync with. A value that Swift would accept here and then never
act on (a URL) would only look as if it worked, so every non-empty value is a 400:

- ``//realm/cluster/account/container`` -> ``No realm key for 'realm'``
  (``Invalid X-Container-Sync-To format '...'`` when it is not four parts);
- a URL -> ``Invalid host '<host>' in X-Container-Sync-To`` (after Swift's scheme, path and
  query checks, with their own messages).

An empty value (removing the setting) passes. ``X-Container-Sync-Key`` is not stored
(nothing would use it). The refusal comes after the request's authorization, as the
container server's does: a caller who may not write the container gets 401/403.
"""

from __future__ import annotations

from urllib.parse import urlparse

from pocketstack.objectstore.exceptions import HTTPBadRequest
from pocketstack.objectstore.proxy.middleware.deferred import refuse_after_authorize
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware
from pocketstack.objectstore.proxy.request import Request, Response

HTML = "text/html; charset=UTF-8"


def sync_to_error(value: str) -> str | None:
    """Why ``value`` cannot be this cluster's ``X-Container-Sync-To`` (None: empty)."""
    stripped = value.rstrip("/")
    if not stripped:
        return None
    if stripped.startswith("//"):
        parts = stripped[2:].split("/")
        if len(parts) != 4:
            return f"Invalid X-Container-Sync-To format {value!r}"
        return f"No realm key for {parts[0]!r}"
    parsed = urlparse(stripped)
    if parsed.scheme not in ("http", "https"):
        return (f"Invalid scheme {parsed.scheme!r} in X-Container-Sync-To, must be \"//\", "
                "\"http\", or \"https\".")
    if not parsed.path:
        return "Path required in X-Container-Sync-To"
    if parsed.params or parsed.query or parsed.fragment:
        return "Params, queries, and fragments not allowed in X-Container-Sync-To"
    return f"Invalid host {parsed.hostname!r} in X-Container-Sync-To"


class ContainerSync(Middleware):
    """Not advertised (``info`` is None): it only refuses the setting."""

    name = "container_sync"

    def applies(self, req: Request) -> bool:
        return "x-container-sync-to" in req.headers

    async def handle(self, req: Request, next: Handler) -> Response:
        value = req.headers.get("x-container-sync-to")
        if value is not None and req.container is not None and req.obj is None and \
                req.method in ("PUT", "POST"):
            error = sync_to_error(value)
            if error is not None:
                container = (req.account, req.container)
                refuse_after_authorize(
                    req, HTTPBadRequest(error, content_type=HTML),
                    lambda checked: (checked.account, checked.container) == container
                    and checked.obj is None)
        return await next(req)
