"""The Keystone step of the pipeline: every request not already authorized by a pre-auth
middleware (a TempURL or FormPost signature) gets its token turned into an identity and
Swift's deferred authorization attached (``proxy/auth.py``)."""

from __future__ import annotations

from pocketstack.objectstore.proxy.auth import KeystoneAuth
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware
from pocketstack.objectstore.proxy.request import Request, Response


class Authenticate(Middleware):
    name = "keystoneauth"

    def __init__(self, ctx: ProxyContext) -> None:
        super().__init__(ctx)
        self.auth = KeystoneAuth(ctx)

    def applies(self, req: Request) -> bool:
        return req.authorize is None

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.authorize is None:
            await self.auth.authenticate(req)
        return await next(req)
