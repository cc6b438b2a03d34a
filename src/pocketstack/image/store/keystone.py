"""The image service as a Keystone client: its service user's token and catalog.

This is what keystoneauth does for an OpenStack service calling another: authenticate the
service user with a password (``POST /v3/auth/tokens``, project-scoped), keep the token
until shortly before it expires, and find the other service's endpoint in the token's
catalog (type, interface, region). Nothing here knows that identity may run in the same
process: it speaks HTTP to ``auth_url``, so the image service can move to another host.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pocketstack.image.store.base import StoreUnavailable
from pocketstack.image.store.http import LazyClient

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceCredentials:
    auth_url: str
    user_name: str
    password: str = field(repr=False)
    project_name: str
    user_domain_id: str = "default"
    project_domain_id: str = "default"

    def auth_body(self) -> dict[str, Any]:
        user = {"name": self.user_name, "domain": {"id": self.user_domain_id},
                "password": self.password}
        return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                         "scope": {"project": {"name": self.project_name,
                                               "domain": {"id": self.project_domain_id}}}}}


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    expires: float  # time.monotonic() deadline
    catalog: list[dict[str, Any]]


class ServiceAuth:
    """A project-scoped token of the service user, renewed ``margin`` seconds before expiry."""

    def __init__(self, credentials: ServiceCredentials, http: LazyClient, *,
                 region: str, interface: str = "public", margin: float = 600.0) -> None:
        self.credentials = credentials
        self.http = http
        self.region = region
        self.interface = interface
        self.margin = margin
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        return (await self._current()).value

    async def endpoint(self, service_type: str) -> str:
        """The catalog URL of ``service_type`` for our interface and region."""
        token = await self._current()
        for entry in token.catalog:
            if entry.get("type") != service_type:
                continue
            for endpoint in entry.get("endpoints", []):
                region = endpoint.get("region_id") or endpoint.get("region")
                if endpoint.get("interface") == self.interface and region == self.region:
                    return str(endpoint["url"]).rstrip("/")
        raise StoreUnavailable(f"no {self.interface} {service_type} endpoint in region "
                               f"{self.region} in the service catalog")

    def invalidate(self) -> None:
        """Forget the token (a service answered 401: it was revoked or expired early)."""
        self._token = None

    async def _current(self) -> _Token:
        token = self._token
        if token is not None and token.expires - self.margin > time.monotonic():
            return token
        async with self._lock:
            token = self._token
            if token is None or token.expires - self.margin <= time.monotonic():
                token = self._token = await self._authenticate()
            return token

    async def _authenticate(self) -> _Token:
        import httpx  # here, not at the top: see `http`

        url = f"{self.credentials.auth_url.rstrip('/')}/auth/tokens"
        try:
            response = await self.http.client().post(url, json=self.credentials.auth_body())
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"identity service unreachable: {exc!r}") from exc
        if response.status_code != 201:
            LOG.warning("identity refused the image service user %r: %d",
                        self.credentials.user_name, response.status_code)
            raise StoreUnavailable("identity refused the image service's credentials")
        body = response.json()["token"]
        expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        lifetime = (expires_at - datetime.now(UTC)).total_seconds()
        return _Token(response.headers["x-subject-token"], time.monotonic() + lifetime,
                      body.get("catalog") or [])
