"""The object-storage store: image data as objects in Swift, through Swift's public API.

Each image is one object named by its id in one container (``[image] swift_container``) of
the service project's account, reached the OpenStack way: the object-store endpoint comes
from the service user's catalog (``http://host:8080/v1/AUTH_<service project id>``) and
every request carries the service user's token (see :mod:`.keystone`). Bodies stream both
ways (httpx, chunked uploads); nothing holds an image in memory.

Swift keeps objects up to 5 GiB (:data:`MAX_OBJECT_SIZE`); larger images need segments
and a static large object manifest, which would live here behind the same location.
Location form: ``swift://<container>/<object>``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import quote, unquote, urlsplit

import httpx

from pocketstack.image.store.base import DataNotFound, Stored, StoreFull, StoreUnavailable
from pocketstack.image.store.keystone import ServiceAuth

LOG = logging.getLogger(__name__)
MAX_OBJECT_SIZE = 5 * 1024 ** 3


class SwiftStore:
    kind = "swift"
    max_size: int | None = MAX_OBJECT_SIZE

    def __init__(self, auth: ServiceAuth, http: httpx.AsyncClient, *, container: str,
                 name: str = "swift", chunk_size: int = 65536) -> None:
        self.auth = auth
        self.http = http
        self.container = container
        self.name = name
        self.chunk_size = chunk_size
        self._container_ready = False

    # -- urls ----------------------------------------------------------------------------------
    async def _url(self, obj: str | None = None, container: str | None = None) -> str:
        base = await self.auth.endpoint("object-store")
        url = f"{base}/{quote(container or self.container, safe='')}"
        return url if obj is None else f"{url}/{quote(obj, safe='')}"

    def _parse(self, location: str) -> tuple[str, str]:
        parts = urlsplit(location)
        obj = unquote(parts.path.lstrip("/"))
        if parts.scheme != "swift" or not parts.netloc or not obj:
            raise DataNotFound(location)
        return unquote(parts.netloc), obj

    async def _request(self, method: str, url: str) -> httpx.Response:
        """One bodiless request with the service token; a 401 re-authenticates and retries
        once (the token may have been revoked before it expired)."""
        for attempt in (1, 2):
            headers = {"X-Auth-Token": await self.auth.token()}
            try:
                response = await self.http.request(method, url, headers=headers)
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"object storage unreachable: {exc!r}") from exc
            if response.status_code != 401 or attempt == 2:
                break
            self.auth.invalidate()
        return response

    # -- contract ------------------------------------------------------------------------------
    async def _ensure_container(self) -> None:
        if self._container_ready:
            return
        response = await self._request("PUT", await self._url())
        if response.status_code not in (201, 202):
            raise StoreUnavailable(f"cannot create container {self.container}: "
                                   f"{response.status_code}")
        self._container_ready = True

    def location_for(self, image_id: str) -> str:
        return f"swift://{quote(self.container, safe='')}/{quote(image_id, safe='')}"

    async def put(self, image_id: str, chunks: AsyncIterator[bytes]) -> Stored:
        await self._ensure_container()
        url = await self._url(image_id)
        headers = {"X-Auth-Token": await self.auth.token(),
                   "Content-Type": "application/octet-stream"}
        try:
            response = await self.http.put(url, content=chunks, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"object storage unreachable: {exc!r}") from exc
        status = response.status_code
        if status == 201:
            return Stored(self.location_for(image_id),
                          response.headers.get("etag", "").strip('"') or None)
        if status == 401:
            self.auth.invalidate()
        elif status == 404:
            self._container_ready = False
        elif status in (413, 507):
            raise StoreFull(f"object storage refused the image data ({status})")
        raise StoreUnavailable(f"object storage refused the image data ({status})")

    async def open(self, location: str, *, offset: int = 0,
                   length: int | None = None) -> HttpReader:
        container, obj = self._parse(location)
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        url = await self._url(obj, container)
        for attempt in (1, 2):
            request = self.http.build_request(
                "GET", url, headers={**headers, "X-Auth-Token": await self.auth.token()})
            try:
                response = await self.http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"object storage unreachable: {exc!r}") from exc
            if response.status_code in (200, 206):
                return HttpReader(response, self.chunk_size)
            await response.aclose()
            if response.status_code == 404:
                raise DataNotFound(location)
            if response.status_code != 401 or attempt == 2:
                break
            self.auth.invalidate()
        raise StoreUnavailable(f"object storage cannot read {location} "
                               f"({response.status_code})")

    async def delete(self, location: str) -> None:
        try:
            container, obj = self._parse(location)
        except DataNotFound:
            return
        response = await self._request("DELETE", await self._url(obj, container))
        if response.status_code not in (204, 404):
            raise StoreUnavailable(f"object storage cannot delete {location} "
                                   f"({response.status_code})")

    async def close(self) -> None:
        await self.http.aclose()


class HttpReader:
    """The body of one object GET, chunk by chunk; closes the response when done."""

    def __init__(self, response: httpx.Response, chunk_size: int) -> None:
        self.response = response
        self.chunk_size = chunk_size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.aiter_raw(self.chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"object storage read failed: {exc!r}") from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self.response.aclose()
