"""Legacy object versioning (Swift's ``versioned_writes``): ``X-Versions-Location`` (stack
mode) and ``X-History-Location`` (history mode).

A container names another container of its account as its versions location (kept in
``X-Container-Sysmeta-Versions-Location`` and ``-Mode``). Then, as Swift's middleware:

- a ``PUT`` (and a ``COPY`` onto it) over an existing object first copies that object to
  ``<versions>/<len(name) as 3 hex digits><name>/<its X-Timestamp>``;
- a ``DELETE`` in history mode copies the current object too, and writes a delete marker
  (``application/x-deleted;swift_versions_deleted=1``) after it;
- a ``DELETE`` in stack mode removes the object and moves the newest copy back in its place
  (a delete marker on top means: delete the object and the marker, restoring the version
  under it).

The caller is authorized on the versioned container once; the reads and writes in the
versions container are the proxy's own (pre-authorized), so a user with write access to the
versioned container needs none on the versions container. ``X-Versions-Location`` and
``X-History-Location`` exclude each other (400), and object versioning (``X-Versions-Enabled``)
excludes both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote_to_bytes

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPInternalServerError,
    HTTPPreconditionFailed,
    HTTPServiceUnavailable,
)
from pocketstack.objectstore.proxy.controllers.base import container_info
from pocketstack.objectstore.proxy.controllers.container import authorize
from pocketstack.objectstore.proxy.middleware import rewrite
from pocketstack.objectstore.proxy.middleware.rewrite import header
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, release
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.types import ContainerInfo
from pocketstack.objectstore.timestamp import Timestamp

LOCATION = "X-Container-Sysmeta-Versions-Location"
MODE = "X-Container-Sysmeta-Versions-Mode"
NEW_VERSIONS_CONTAINER = "X-Container-Sysmeta-Versions-Container"
DELETE_MARKER = "application/x-deleted;swift_versions_deleted=1"


class VersionedWrites(Middleware):
    name = "versioned_writes"

    def info(self) -> dict[str, Any] | None:
        if not self.ctx.settings.allow_versioned_writes:
            return None
        return {"allowed_flags": ["x-versions-location", "x-history-location"]}

    def applies(self, req: Request) -> bool:
        if req.container is None:
            return False
        return req.obj is None or req.method in ("PUT", "DELETE", "COPY")

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.container is None:
            return await next(req)
        if req.obj is None:
            if req.method in ("PUT", "POST"):
                req = await self._configure(req)
            response = await next(req)
            if req.method in ("GET", "HEAD") and response.status // 100 == 2:
                await self._show_location(req, response)
            return response
        if req.method not in ("PUT", "DELETE", "COPY"):
            return await next(req)
        target = rewrite.copy_as_put(req) if req.method == "COPY" else req
        location, mode = await self._location(target)
        if location is None:
            return await next(req)
        if req.method == "DELETE":
            if mode == "history":
                return await self._delete_push(req, next, location)
            return await self._delete_pop(req, next, location)
        await self._copy_current(target, next, location)
        return await next(req)

    # -- the container's setting --------------------------------------------------------------
    async def _configure(self, req: Request) -> Request:
        """The sysmeta a container PUT/POST sets or removes (Swift's ``container_request``)."""
        versions, history = req.headers.get("x-versions-location"), \
            req.headers.get("x-history-location")
        if versions is not None and history is not None:
            if versions and history:
                raise HTTPBadRequest("Only one of x-versions-location or x-history-location "
                                     "may be specified", content_type="text/plain")
            if not history:
                history = None
            else:
                versions = None
        removing = any(req.headers.get(h) for h in ("x-remove-versions-location",
                                                    "x-remove-history-location"))
        drop = ("x-versions-location", "x-history-location", "x-remove-versions-location",
                "x-remove-history-location")
        value, mode = (versions, "stack") if versions is not None else (history, "history")
        if value:
            await self._check_settable(req)
            if "/" in value:
                raise HTTPPreconditionFailed("Container name cannot contain slashes")
            return rewrite.with_headers(req, {LOCATION: value, MODE: mode}, drop=drop)
        if value is not None or removing:
            return rewrite.with_headers(req, {LOCATION: "", MODE: ""}, drop=drop)
        return req

    async def _check_settable(self, req: Request) -> None:
        if not self.ctx.settings.allow_versioned_writes:
            raise HTTPPreconditionFailed("Versioned Writes is disabled",
                                         content_type="text/plain")
        info = await container_info(self.ctx, req.account or "", req.container or "")
        if info is not None and info.metadata.get(NEW_VERSIONS_CONTAINER):
            raise HTTPBadRequest("Cannot set a versions or history location on a container "
                                 "that uses object versioning (X-Versions-Enabled).",
                                 content_type="text/plain")

    async def _show_location(self, req: Request, response: Response) -> None:
        info = await container_info(self.ctx, req.account or "", req.container or "")
        location = info.metadata.get(LOCATION) if info is not None else None
        if location:
            name = "X-History-Location" if info is not None and \
                info.metadata.get(MODE) == "history" else "X-Versions-Location"
            response.headers[name] = location

    async def _location(self, req: Request) -> tuple[str | None, str]:
        """The versions container of ``req``'s container (None: not versioned), and the
        mode; the caller is authorized for ``req`` on the container first."""
        if not self.ctx.settings.allow_versioned_writes:
            return None, ""
        info = await container_info(self.ctx, req.account or "", req.container or "")
        stored = info.metadata.get(LOCATION) if info is not None else None
        if not stored or info is None:
            return None, ""
        await _authorize(self, req, info)
        return location_name(stored), info.metadata.get(MODE) or "stack"

    # -- PUT and DELETE -----------------------------------------------------------------------
    async def _copy_current(self, req: Request, next: Handler, location: str) -> None:
        """Copy the object ``req`` is about to replace to the versions container."""
        source = await _get_source(req, next, _path(req, req.container or "", req.obj or ""))
        if source is None:
            return
        stamp = header(source.headers, "x-timestamp") or Timestamp.now().internal
        name = version_name(req.obj or "", Timestamp(stamp).internal)
        await _put_version(req, next, _path(req, location, name), source)

    async def _delete_push(self, req: Request, next: Handler, location: str) -> Response:
        """History mode: keep the current object and a delete marker, then delete."""
        await self._copy_current(req, next, location)
        marker = version_name(req.obj or "", Timestamp.now().internal)
        put = rewrite.preauthorized(req.subrequest(
            "PUT", _path(req, location, marker), source="VW", body=b"",
            headers={"Content-Type": DELETE_MARKER, "Content-Length": "0"}))
        _check(await rewrite.call(next, put))
        return await next(req)

    async def _delete_pop(self, req: Request, next: Handler, location: str) -> Response:
        """Stack mode: delete the object, and move its newest version back in its place."""
        versions = _newest_first(req, next, location, version_prefix(req.obj or ""))
        async for row in versions:
            if row["content_type"] == DELETE_MARKER:
                return await self._delete_marker(req, next, location, row, versions)
            restored = await _restore(req, next, _path(req, location, row["name"]))
            if restored:
                return await next(_deleting(req, _path(req, location, row["name"])))
        return await next(req)

    async def _delete_marker(self, req: Request, next: Handler, location: str,
                             marker: dict[str, Any], older: AsyncIterator[dict[str, Any]]
                             ) -> Response:
        """The newest version is a delete marker: with an object in place, delete just it;
        else restore the newest version under the marker, then delete the marker."""
        head = rewrite.preauthorized(req.subrequest(
            "HEAD", req.path, headers={"X-Newest": "true"}, source="VW"))
        current = await rewrite.call(next, head)
        await release(current)
        if current.status != 404:
            _check(current)
            return await next(req)
        async for row in older:
            if row["content_type"] == DELETE_MARKER:
                break
            path = _path(req, location, row["name"])
            if await _restore(req, next, path):
                gone = await rewrite.call(next, _deleting(req, path))
                await release(gone)
                if gone.status != 404:
                    _check(gone)
                break
        return await next(_deleting(req, _path(req, location, marker["name"])))


def location_name(stored: str) -> str:
    """The container a stored location names: the header's bytes (a wire string),
    percent-decoded, as UTF-8; up to a slash (Swift's ``wsgi_unquote(...).split('/')``)."""
    try:
        raw = unquote_to_bytes(stored.encode("latin-1"))
    except UnicodeEncodeError:
        raw = stored.encode("utf-8")
    return raw.decode("utf-8", "replace").split("/")[0]


def version_prefix(obj: str) -> str:
    """``<length of the name in UTF-8 bytes, 3 hex digits><name>/``."""
    return f"{len(obj.encode('utf-8')):03x}{obj}/"


def version_name(obj: str, timestamp: str) -> str:
    return version_prefix(obj) + timestamp


async def _authorize(self: VersionedWrites, req: Request, info: ContainerInfo) -> None:
    """Authorize the client's write on the versioned container before any sub-request."""
    await authorize(self.ctx, req, info)


def _path(req: Request, container: str, obj: str) -> str:
    return rewrite.object_path(req.version, req.account or "", container, obj)


def _check(response: Response) -> None:
    """Swift's ``_check_response_error``: a client error is 412, a server error 503."""
    if response.status // 100 == 2:
        return
    if response.status // 100 == 4:
        raise HTTPPreconditionFailed()
    raise HTTPServiceUnavailable()


def _deleting(req: Request, path: str) -> Request:
    """The client's DELETE redirected to a version (pre-authorized: ``req`` was)."""
    return rewrite.preauthorized(req.subrequest("DELETE", path, source="VW"))


async def _get_source(req: Request, next: Handler, path: str) -> Response | None:
    """The object at ``path`` itself (a link as the link), None when there is none."""
    get = rewrite.preauthorized(req.subrequest(
        "GET", path, headers={"X-Newest": "true"}, query={"symlink": "get"}, source="VW"))
    source = await rewrite.call(next, get)
    if source.status == 404:
        await release(source)
        return None
    if source.status // 100 != 2:
        await release(source)
    _check(source)
    return source


async def _put_version(req: Request, next: Handler, path: str, source: Response) -> None:
    """Write ``source`` (a GET answer, streamed) at ``path`` with its metadata."""
    put = rewrite.preauthorized(rewrite.copy_request(req, path, source, source_name="VW"))
    try:
        _check(await rewrite.call(next, put))
    finally:
        await release(source)


async def _restore(req: Request, next: Handler, version: str) -> bool:
    """Copy a version back to the object (False when the version is gone)."""
    source = await _get_source(req, next, version)
    if source is None:
        return False
    await _put_version(req, next, req.path, source)
    return True


async def _newest_first(req: Request, next: Handler, location: str, prefix: str
                        ) -> AsyncIterator[dict[str, Any]]:
    """The versions of the object, newest first, page by page (none when the versions
    container does not exist)."""
    marker = ""
    while True:
        query = {"prefix": prefix, "reverse": "on", "format": "json", "marker": marker}
        listing = rewrite.preauthorized(req.subrequest(
            "GET", f"/{req.version}/{req.account}/{location}", query=query, source="VW"))
        response = await rewrite.call(next, listing)
        if response.status == 404:
            return
        if response.status // 100 == 4:
            raise HTTPPreconditionFailed()
        if response.status // 100 != 2:
            raise HTTPInternalServerError()
        rows = rewrite.json_rows(await rewrite.read_all(response))
        if not rows:
            return
        for row in rows:
            yield row
        marker = rows[-1]["name"]
