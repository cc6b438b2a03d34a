"""Refusals that wait for the request's own authorization (Swift's quota middlewares wrap
``swift.authorize`` the same way): a caller who may not do the request hears 401/403, and
only one who may hears why it is refused anyway, so a refusal never tells a stranger
anything about a container."""

from __future__ import annotations

from collections.abc import Callable

from pocketstack.objectstore.proxy.request import Request


def refuse_after_authorize(req: Request, error: Exception,
                           applies: Callable[[Request], bool]) -> None:
    """Make ``req``'s deferred authorization raise ``error`` once it has allowed a request
    that ``applies`` picks (the request itself, or what the core derives from it: a copy's
    destination PUT). Sub-requests inherit it, as they inherit ``swift.authorize``."""
    original = req.authorize

    async def authorize(checked: Request) -> None:
        if original is not None:
            await original(checked)
        if applies(checked):
            raise error

    req.authorize = authorize
