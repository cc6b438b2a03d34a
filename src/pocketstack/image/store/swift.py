"""The object-storage store: image data as objects in Swift, through Swift's public API.

Each image is one object named by its id in one container (``[image] swift_container``) of
the service project's account, reached the OpenStack way: the object-store endpoint comes
from the service user's catalog (``http://host:8080/v1/AUTH_<service project id>``) and
every request carries the service user's token (see :mod:`.keystone`). Bodies stream both
ways (httpx, chunked uploads); nothing holds an image in memory.

An image of at most ``segment_size`` bytes (:data:`SEGMENT_SIZE`, 200 MiB, Glance's
``swift_store_large_object_chunk_size``) is one object. A larger one is a static large
object behind the same name: its bytes go to segments ``<image id>/<upload id>/<n>`` in
``<container>_segments``, each at most ``segment_size``, and the image's object becomes the
SLO manifest. The size is not known when an upload starts, so the first part is written
as the image's object; once more bytes follow, it is copied (server side) to the first
segment and replaced by the manifest at the end. Reads go through the manifest (object
storage streams the segments, ranges included); a delete removes the manifest and its
segments (``?multipart-manifest=delete``). An upload that fails leaves neither.
Location form: ``swift://<container>/<object>``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pocketstack.image.store.base import DataNotFound, Stored, StoreFull, StoreUnavailable
from pocketstack.image.store.http import LazyClient
from pocketstack.image.store.keystone import ServiceAuth
from pocketstack.image.store.segments import Segmenter

if TYPE_CHECKING:  # imported where a request is made (see `http`)
    import httpx

LOG = logging.getLogger(__name__)
MAX_OBJECT_SIZE = 5 * 1024 ** 3
SEGMENT_SIZE = 200 * 1024 ** 2
MAX_SEGMENTS = 1000  # object storage's slo_max_manifest_segments (Swift's default)


class SwiftStore:
    kind = "swift"
    max_size: int | None

    def __init__(self, auth: ServiceAuth, http: LazyClient, *, container: str,
                 name: str = "swift", chunk_size: int = 65536,
                 segment_size: int = SEGMENT_SIZE) -> None:
        if not 0 < segment_size <= MAX_OBJECT_SIZE:
            raise ValueError(f"segment_size must be within 1..{MAX_OBJECT_SIZE}")
        self.auth = auth
        self.http = http
        self.container = container
        self.segments_container = f"{container}_segments"
        self.name = name
        self.chunk_size = chunk_size
        self.segment_size = segment_size
        self.max_size = segment_size * MAX_SEGMENTS
        self._ready: set[str] = set()

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

    async def _request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                       params: Mapping[str, str] | None = None, content: bytes | None = None
                       ) -> httpx.Response:
        """One request with the service token and a body of bytes at most; a 401
        re-authenticates and retries once (the token may have been revoked before it
        expired)."""
        import httpx

        for attempt in (1, 2):
            sent = {**(headers or {}), "X-Auth-Token": await self.auth.token()}
            try:
                response = await self.http.client().request(
                    method, url, headers=sent, params=params, content=content)
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"object storage unreachable: {exc!r}") from exc
            if response.status_code != 401 or attempt == 2:
                break
            self.auth.invalidate()
        return response

    # -- contract ------------------------------------------------------------------------------
    async def _ensure_container(self, container: str) -> None:
        if container in self._ready:
            return
        response = await self._request("PUT", await self._url(container=container))
        if response.status_code not in (201, 202):
            raise StoreUnavailable(f"cannot create container {container}: "
                                   f"{response.status_code}")
        self._ready.add(container)

    def location_for(self, image_id: str) -> str:
        return f"swift://{quote(self.container, safe='')}/{quote(image_id, safe='')}"

    async def put(self, image_id: str, chunks: AsyncIterator[bytes]) -> Stored:
        await self._ensure_container(self.container)
        source = Segmenter(chunks, self.segment_size)
        first = source.part()
        etag = await self._upload(self.container, image_id, first)
        try:
            more = await source.more()
        except BaseException:
            await self._discard(image_id, [])
            raise
        if not more:
            return Stored(self.location_for(image_id), etag)
        await self._put_large(image_id, source, first.size, etag or "")
        return Stored(self.location_for(image_id), None)  # its ETag is not the bytes' MD5

    async def _upload(self, container: str, obj: str, body: AsyncIterable[bytes]
                      ) -> str | None:
        """PUT one object from a stream; its ETag."""
        import httpx

        url = await self._url(obj, container)
        headers = {"X-Auth-Token": await self.auth.token(),
                   "Content-Type": "application/octet-stream"}
        try:
            response = await self.http.client().put(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"object storage unreachable: {exc!r}") from exc
        status = response.status_code
        if status == 201:
            return response.headers.get("etag", "").strip('"') or None
        if status == 401:
            self.auth.invalidate()
        elif status == 404:
            self._ready.discard(container)
        elif status in (413, 507):
            raise StoreFull(f"object storage refused the image data ({status})")
        raise StoreUnavailable(f"object storage refused the image data ({status})")

    async def _put_large(self, image_id: str, source: Segmenter, first_size: int,
                         first_etag: str) -> None:
        """The rest of a large image as segments, then its manifest (see the module
        docstring); on any failure, nothing of it is left."""
        prefix = f"{image_id}/{uuid.uuid4().hex}"
        written: list[str] = []
        try:
            await self._ensure_container(self.segments_container)
            written.append(f"{prefix}/{0:08d}")
            await self._copy_first(image_id, written[0])
            manifest = [self._entry(written[0], first_etag, first_size)]
            while await source.more():
                if len(manifest) >= MAX_SEGMENTS:
                    raise StoreFull(f"an image may have at most {MAX_SEGMENTS} segments")
                written.append(f"{prefix}/{len(manifest):08d}")
                part = source.part()
                etag = await self._upload(self.segments_container, written[-1], part)
                manifest.append(self._entry(written[-1], etag or "", part.size))
            await self._put_manifest(image_id, manifest)
        except BaseException:
            await self._discard(image_id, written)
            raise

    def _entry(self, name: str, etag: str, size: int) -> dict[str, Any]:
        return {"path": f"/{self.segments_container}/{name}", "etag": etag, "size_bytes": size}

    async def _copy_first(self, image_id: str, name: str) -> None:
        destination = f"{quote(self.segments_container, safe='')}/{quote(name)}"
        response = await self._request("COPY", await self._url(image_id),
                                       headers={"Destination": destination})
        if response.status_code != 201:
            raise StoreUnavailable(f"object storage cannot copy {image_id} "
                                   f"({response.status_code})")

    async def _put_manifest(self, image_id: str, manifest: list[dict[str, Any]]) -> None:
        response = await self._request(
            "PUT", await self._url(image_id), params={"multipart-manifest": "put"},
            headers={"Content-Type": "application/octet-stream"},
            content=json.dumps(manifest).encode("utf-8"))
        if response.status_code == 413:
            raise StoreFull("object storage refused the image's manifest (413)")
        if response.status_code != 201:
            raise StoreUnavailable(f"object storage refused the manifest of {image_id} "
                                   f"({response.status_code}): {response.text[:200]}")

    async def _discard(self, image_id: str, segments: list[str]) -> None:
        """Best effort: remove what a failed upload wrote (its own error is what counts)."""
        targets = [(self.container, image_id)] + [(self.segments_container, s)
                                                  for s in segments]
        for container, obj in targets:
            try:
                await self._request("DELETE", await self._url(obj, container))
            except Exception as exc:  # noqa: BLE001 - the upload's failure is re-raised
                LOG.warning("cannot remove %s/%s after a failed upload: %s", container,
                            obj, exc)

    async def open(self, location: str, *, offset: int = 0,
                   length: int | None = None) -> HttpReader:
        import httpx

        container, obj = self._parse(location)
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        url = await self._url(obj, container)
        for attempt in (1, 2):
            http = self.http.client()
            request = http.build_request(
                "GET", url, headers={**headers, "X-Auth-Token": await self.auth.token()})
            try:
                response = await http.send(request, stream=True)
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
        url = await self._url(obj, container)
        head = await self._request("HEAD", url)
        if head.status_code == 404:
            return
        if head.headers.get("x-static-large-object", "").lower() == "true":
            response = await self._request("DELETE", url, params={"multipart-manifest":
                                                                    "delete"},
                                           headers={"Accept": "application/json"})
            if response.status_code == 200 and _report_ok(response):
                return
        else:
            response = await self._request("DELETE", url)
            if response.status_code in (204, 404):
                return
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
        import httpx

        try:
            async for chunk in self.response.aiter_raw(self.chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"object storage read failed: {exc!r}") from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self.response.aclose()


def _report_ok(response: httpx.Response) -> bool:
    """Did a ``?multipart-manifest=delete`` delete everything (its report says 200)?"""
    try:
        report = response.json()
    except ValueError:
        return False
    return str(report.get("Response Status", "")).startswith("200")
