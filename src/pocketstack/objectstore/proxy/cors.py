"""Cross-origin requests (Swift's CORS): preflight ``OPTIONS`` and the headers added to
actual responses, driven by each container's ``X-Container-Meta-Access-Control-*``
metadata and the cluster-wide ``cors_allow_origin`` setting."""

from __future__ import annotations

from pocketstack.objectstore.exceptions import HTTPUnauthorized
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import container_info
from pocketstack.objectstore.proxy.request import Request, Response

ALLOWED_METHODS = "DELETE, GET, HEAD, OPTIONS, POST, PUT"
ACCOUNT_METHODS = "GET, HEAD, OPTIONS, POST"
EXPOSED = ("cache-control", "content-language", "content-type", "expires", "last-modified",
           "pragma", "etag", "x-timestamp", "x-trans-id", "x-openstack-request-id")


async def _allowed_origins(ctx: ProxyContext, req: Request) -> tuple[set[str], dict[str, str]]:
    meta: dict[str, str] = {}
    if req.container is not None:
        info = await container_info(ctx, req.account or "", req.container)
        if info is not None:
            meta = {k.lower(): v for k, v in info.metadata.items()}
    origins = set(ctx.settings.cors_allow_origin)
    origins.update(meta.get("x-container-meta-access-control-allow-origin", "").split())
    return origins, meta


def _origin_ok(origin: str, origins: set[str]) -> bool:
    return "*" in origins or origin in origins


async def preflight(ctx: ProxyContext, req: Request) -> Response:
    """Swift's controller ``OPTIONS``: 200 with ``Allow``; a CORS preflight on a container
    or object is checked against its allowed origins (401 if not allowed); accounts have
    no CORS settings, so a preflight there is just answered 200."""
    origin = req.headers.get("origin")
    method = req.headers.get("access-control-request-method")
    if req.container is None:
        return Response(200, {"Allow": ACCOUNT_METHODS})
    if not origin:
        return Response(200, {"Allow": ALLOWED_METHODS})
    if method not in ALLOWED_METHODS.split(", "):
        raise HTTPUnauthorized()
    origins, meta = await _allowed_origins(ctx, req)
    if not _origin_ok(origin, origins):
        raise HTTPUnauthorized()
    headers = {"Allow": ALLOWED_METHODS, "Access-Control-Allow-Methods": ALLOWED_METHODS,
               "Access-Control-Allow-Origin": "*" if "*" in origins else origin}
    requested = req.headers.get("access-control-request-headers")
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
    max_age = meta.get("x-container-meta-access-control-max-age")
    if max_age:
        headers["Access-Control-Max-Age"] = max_age
    return Response(200, headers)


async def decorate(ctx: ProxyContext, req: Request, response: Response) -> Response:
    origin = req.headers.get("origin")
    if not origin or req.container is None:
        return response
    origins, meta = await _allowed_origins(ctx, req)
    if not _origin_ok(origin, origins):
        return response
    exposed = set(EXPOSED)
    exposed.update(h.lower() for h in response.headers
                   if h.lower().startswith(("x-object-meta-", "x-container-meta-")))
    extra = meta.get("x-container-meta-access-control-expose-headers", "")
    exposed.update(h.strip().lower() for h in extra.split(",") if h.strip())
    response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
    response.headers["Access-Control-Expose-Headers"] = ", ".join(sorted(exposed))
    return response
