"""Version discovery and Glance's version negotiation (an ASGI middleware).

    GET /            300 Multiple Choices, the versions list (keystoneauth starts here)
    GET /versions    200, the same list
    /v2.N/...        served as /v2/... (any v2 minor version Glance accepts)
    /vX/... /foo     300, the versions list (Glance answers unknown versions so)

Unauthenticated, as in Glance. Each version links to ``<scheme>://<host>/v2/``.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Receive, Scope, Send

CURRENT = "2.9"
SUPPORTED = ("2.8", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")
_ALLOWED = re.compile(r"^v2(\.[0-9])?$")


def versions(base_url: str) -> dict[str, list[dict[str, object]]]:
    href = f"{base_url.rstrip('/')}/v2/"

    def version(number: str, status: str) -> dict[str, object]:
        return {"id": f"v{number}", "status": status,
                "links": [{"rel": "self", "href": href}]}

    return {"versions": [version(CURRENT, "CURRENT"),
                         *(version(v, "SUPPORTED") for v in SUPPORTED)]}


def _base_url(scope: Scope) -> str:
    host = ""
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


class VersionNegotiation:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        first, _, rest = path.lstrip("/").partition("/")
        if first == "versions":
            await self._versions(scope, send, 200)
        elif _ALLOWED.match(first):
            if first != "v2":
                scope = {**scope, "path": f"/v2/{rest}" if rest or path.endswith("/")
                         else "/v2", "raw_path": None}
            await self.app(scope, receive, send)
        else:
            await self._versions(scope, send, 300)

    @staticmethod
    async def _versions(scope: Scope, send: Send, status: int) -> None:
        body = json.dumps(versions(_base_url(scope))).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})
