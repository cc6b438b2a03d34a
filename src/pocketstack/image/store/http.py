"""The one HTTP client of the swift store and its service auth, made on first use.

httpx and what it brings (its command line's rich and pygments, httpcore) and a client's
TLS context cost about a tenth of a second: `pocketstack up` does not spend it before it
serves. The image service's first request to identity or object storage does, once; that
request waits for a service token from identity anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


class LazyClient:
    """An ``httpx.AsyncClient`` with ``timeout`` seconds, made when first asked for."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
