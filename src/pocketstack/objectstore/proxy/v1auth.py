"""Swift's v1.0 authentication endpoint (``GET /auth/v1.0``), backed by Keystone.

Many tools still speak it: ``X-Auth-User: <project>:<user>`` and ``X-Auth-Key: <password>``
(users and projects of the Default domain) give back ``X-Storage-Url`` (the project's
account) and ``X-Auth-Token`` (a regular Keystone token).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pocketstack.identity.middleware import AuthenticationFailed
from pocketstack.objectstore.exceptions import HTTPMethodNotAllowed, HTTPUnauthorized
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.request import Request, Response

PATHS = frozenset({"/auth/v1.0", "/auth/v1.0/", "/v1.0", "/v1.0/", "/auth/v1", "/auth/v1/"})


async def handle(ctx: ProxyContext, req: Request) -> Response:
    if req.method not in ("GET", "HEAD"):
        raise HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD"})
    user = req.headers.get("x-auth-user") or req.headers.get("x-storage-user") or ""
    key = req.headers.get("x-auth-key") or req.headers.get("x-storage-pass") or ""
    project, sep, user_name = user.partition(":")
    if not sep or not project or not user_name or not key:
        raise HTTPUnauthorized()
    try:
        auth = await ctx.validator.authenticate(user_name, project, key)
    except AuthenticationFailed as exc:
        raise HTTPUnauthorized() from exc
    url = f"{ctx.storage_url_base}/v1/{ctx.settings.reseller_prefix}{auth.project_id}"
    expires = int((auth.expires_at - datetime.now(UTC)).total_seconds())
    body = json.dumps({"storage": {"default": "local", "local": url}}).encode()
    return Response(200, {"X-Storage-Url": url, "X-Auth-Token": auth.token_id,
                          "X-Storage-Token": auth.token_id,
                          "X-Auth-Token-Expires": str(max(expires, 0)),
                          "Content-Type": "application/json; charset=UTF-8"}, body)
