"""Object versioning (Swift's ``object_versioning``): ``X-Versions-Enabled`` and version ids.

``PUT``/``POST`` of a container with ``X-Versions-Enabled: true`` enables it: the versions
container ``\\x00versions\\x00<container>`` (reserved namespace, invisible to clients, same
storage policy) is made and named in ``X-Container-Sysmeta-Versions-Container``; the flag is
``X-Container-Sysmeta-Versions-Enabled`` (``false`` suspends versioning and keeps every
version). Object requests are ``object_versioning_objects``' and listings
``object_versioning_listing``'s. Container reads show ``X-Versions-Enabled`` and count the
versions' bytes in ``X-Container-Bytes-Used``; a container is deleted only once no version
is left (409), with its versions container. A container using legacy versioning
(``X-Versions-Location``/``X-History-Location``) cannot enable it (400).

Versions need symlinks: the ``symlink`` middleware follows the links this one writes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPInternalServerError,
    HTTPServiceUnavailable,
)
from pocketstack.objectstore.proxy import listing as listings
from pocketstack.objectstore.proxy.checks import ALLOW_RESERVED_NAMES, true
from pocketstack.objectstore.proxy.controllers.base import cached_container_info, container_info
from pocketstack.objectstore.proxy.controllers.container import authorize
from pocketstack.objectstore.proxy.middleware import rewrite
from pocketstack.objectstore.proxy.middleware.object_versioning_listing import (
    plain_listing,
    versions_listing,
)
from pocketstack.objectstore.proxy.middleware.object_versioning_names import (
    CLIENT_ENABLED,
    ENABLED,
    LEGACY_LOCATION,
    VERSIONS_CONTAINER,
    quoted,
    valid_version_id,
    version_object,
    versions_container,
)
from pocketstack.objectstore.proxy.middleware.object_versioning_objects import (
    Versioned,
    VersionedObjects,
)
from pocketstack.objectstore.proxy.middleware.rewrite import header
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, release
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.types import ContainerInfo

LEGACY_REFUSED = ("Cannot enable object versioning on a container that is already using "
                  "the legacy versioned writes feature.")


def _container_row(row: dict[str, Any]) -> listings.ContainerRow | listings.SubdirRow:
    if "subdir" in row:
        return listings.SubdirRow(subdir=str(row["subdir"]))
    return listings.ContainerRow(name=str(row["name"]), count=int(row["count"]),
                                 bytes=int(row["bytes"]),
                                 last_modified=str(row["last_modified"]),
                                 storage_policy=row.get("storage_policy"))


def versioning_of(info: ContainerInfo | None) -> Versioned:
    stored = info.metadata.get(VERSIONS_CONTAINER) if info is not None else None
    versions = unquote(stored).split("/")[0] if stored else None
    enabled = info is not None and true(info.metadata.get(ENABLED))
    return Versioned(info, versions, enabled)


class ObjectVersioning(Middleware):
    name = "object_versioning"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objects = VersionedObjects(self.ctx)

    def info(self) -> dict[str, Any] | None:
        return {} if self.ctx.settings.allow_object_versioning else None

    def applies(self, req: Request) -> bool:
        if not self.ctx.settings.allow_object_versioning:
            return False
        if req.obj is not None and req.method in ("GET", "HEAD") and \
                "version-id" not in req.query:
            # a plain read of an object in a container known not to be versioned: `_object`
            # would only pass it on (unknown: ask, `handle` looks the container up)
            known, info = cached_container_info(self.ctx, req.account or "",
                                                req.container or "")
            if known and versioning_of(info).versions is None:
                return False
        return req.container is not None or req.method == "GET"

    async def handle(self, req: Request, next: Handler) -> Response:
        if not self.ctx.settings.allow_object_versioning:
            return await next(req)
        if req.container is None:
            return await self._account(req, next) if req.method == "GET" else await next(req)
        if req.obj is None:
            return await self._container(req, next)
        return await self._object(req, next)

    async def _state(self, account: str, container: str) -> Versioned:
        return versioning_of(await container_info(self.ctx, account, container))

    # -- objects -------------------------------------------------------------------------------
    async def _object(self, req: Request, next: Handler) -> Response:
        if req.method == "COPY" or (req.method == "PUT" and "x-copy-from" in req.headers):
            return await self._copy(req, next)
        version_id = req.query.get("version-id")
        try:
            state = await self._state(req.account or "", req.container or "")
        except HTTPServiceUnavailable:
            if req.method in ("GET", "HEAD") and not version_id:
                return await next(req)  # the controller answers (401 to an anonymous caller)
            raise
        if version_id:
            return await self.objects.with_version_id(req, next, state, version_id)
        if state.versions is None:
            return await next(req)
        handler = {"PUT": self.objects.put, "DELETE": self.objects.delete,
                   "POST": self.objects.post, "GET": self.objects.read,
                   "HEAD": self.objects.read}.get(req.method)
        return await (handler(req, next, state) if handler else next(req))

    async def _copy(self, req: Request, next: Handler) -> Response:
        """A copy (as Swift's ``copy`` middleware sees it, a PUT at the destination) from a
        version (``?version-id``) or into a versioned container."""
        version_id = req.query.get("version-id")
        put = rewrite.copy_as_put(req) if req.method == "COPY" else req
        if version_id:
            put = await self._from_version(put, version_id)
        state = await self._state(put.account or "", put.container or "")
        if state.enabled and state.versions is not None:
            return await self.objects.put(put, next, state)
        return await next(put if version_id else req)

    async def _from_version(self, put: Request, version_id: str) -> Request:
        """The copy's source made the version ``version_id`` of the source object."""
        account, container, obj = rewrite.copy_source(put)
        put = rewrite.with_query(put, {k: v for k, v in put.query.items()
                                       if k != "version-id"})
        if version_id == "null":
            return put
        source = await self._state(account, container)
        if source.versions is None:
            raise HTTPBadRequest("version-aware operations require that the container is "
                                 "versioned")
        if not valid_version_id(version_id):
            raise HTTPBadRequest("Invalid version parameter")
        path = quoted(f"/{source.versions}/{version_object(obj, version_id)}")
        return rewrite.with_headers(put, {"X-Copy-From": path, "X-Copy-From-Account": account,
                                          ALLOW_RESERVED_NAMES: "true"})

    # -- accounts ------------------------------------------------------------------------------
    async def _account(self, req: Request, next: Handler) -> Response:
        """An account listing counts each container's versions in its bytes (Swift's
        ``AccountContext``); plain listings show names only and pass untouched."""
        media = rewrite.listing_format(req) if req.query.get("format") or \
            req.headers.get("accept") else "text/plain"
        if media == "text/plain":
            return await next(req)
        response, rows = await rewrite.json_listing(req, next)
        if response.status != 200:
            return response
        hidden = await self._versions_bytes(req, next) if rows else {}
        for row in rows:
            if "name" in row and row["name"] in hidden:
                row["bytes"] = int(row["bytes"]) + hidden[row["name"]]
        body, ctype = listings.render_account_listing(
            req.account or "", [_container_row(r) for r in rows], media)
        headers = {**rewrite.without(response.headers, ("content-length",)),
                   "Content-Type": ctype}
        return Response(200, headers, body)

    async def _versions_bytes(self, req: Request, next: Handler) -> dict[str, int]:
        """container -> bytes of its versions, for the containers of this listing page."""
        prefix = versions_container(req.query.get("prefix", ""))
        query = {"format": "json", "prefix": prefix}
        for key in ("marker", "end_marker"):
            if req.query.get(key):
                query[key] = versions_container(req.query[key])
        for key in ("limit", "reverse"):
            if req.query.get(key):
                query[key] = req.query[key]
        sub = rewrite.preauthorized(req.subrequest(
            "GET", f"/{req.version}/{req.account}", query=query, headers={
                ALLOW_RESERVED_NAMES: "true"}, source="OV"))
        found = await rewrite.call(next, sub)
        if found.status != 200:
            await release(found)
            return {}
        rows = rewrite.json_rows(await rewrite.read_all(found))
        prefix_len = len(versions_container(""))
        return {str(r["name"])[prefix_len:]: int(r["bytes"]) for r in rows if "name" in r}

    # -- containers ----------------------------------------------------------------------------
    async def _container(self, req: Request, next: Handler) -> Response:
        if req.method in ("PUT", "POST") and CLIENT_ENABLED in req.headers:
            return await self._enable(req, next)
        if req.method == "DELETE":
            return await self._delete(req, next)
        if req.method not in ("GET", "HEAD"):
            return await next(req)
        state = await self._state(req.account or "", req.container or "")
        if req.method == "GET" and "versions" in req.query:
            response = await versions_listing(req, next, state.versions)
        elif state.versions is None:
            return await next(req)
        elif req.method == "GET":
            response = await plain_listing(req, next, state.versions)
        else:
            response = await next(req)
        if response.status // 100 == 2:
            await self._show(req, next, response)
        return response

    async def _show(self, req: Request, next: Handler, response: Response) -> None:
        """``X-Versions-Enabled``, and the versions' bytes in the bytes used."""
        state = await self._state(req.account or "", req.container or "")
        if state.info is None:
            return
        if state.info.metadata.get(ENABLED):
            response.headers["X-Versions-Enabled"] = state.info.metadata[ENABLED]
        used = header(response.headers, "x-container-bytes-used")
        if state.versions is None or used is None:
            return
        head = await rewrite.call(next, self._versions_request(req, "HEAD", state.versions))
        await release(head)
        extra = header(head.headers, "x-container-bytes-used") or "0"
        if head.status // 100 == 2 and used.isdigit() and extra.isdigit():
            response.headers = rewrite.without(response.headers, ("x-container-bytes-used",))
            response.headers["X-Container-Bytes-Used"] = str(int(used) + int(extra))

    def _versions_request(self, req: Request, method: str, versions: str,
                          headers: dict[str, str] | None = None) -> Request:
        return rewrite.preauthorized(req.subrequest(
            method, f"/{req.version}/{req.account}/{versions}", headers=headers,
            source="OV"), reserved=True)

    async def _enable(self, req: Request, next: Handler) -> Response:
        """Turn versioning on (making the versions container) or off."""
        info = await container_info(self.ctx, req.account or "", req.container or "")
        await authorize(self.ctx, req, info)
        if info is not None and info.metadata.get(LEGACY_LOCATION):
            raise HTTPBadRequest(LEGACY_REFUSED)
        enabled = true(req.headers[CLIENT_ENABLED])
        sysmeta = {ENABLED: str(enabled)}
        versions = versions_container(req.container or "")
        if enabled:
            policy = self._policy(req, info)
            made = await rewrite.call(next, self._versions_request(
                req, "PUT", versions, {"X-Storage-Policy": policy} if policy else None))
            await release(made)
            if made.status // 100 != 2 and made.status != 409:
                raise HTTPInternalServerError("Error enabling object versioning")
            sysmeta[VERSIONS_CONTAINER] = quoted(versions)
        try:
            return await next(rewrite.with_headers(req, sysmeta, drop=(CLIENT_ENABLED,)))
        except Exception:
            if enabled:
                gone = await rewrite.call(next, self._versions_request(req, "DELETE", versions))
                await release(gone)
            raise

    def _policy(self, req: Request, info: ContainerInfo | None) -> str | None:
        """The versions container's storage policy: its container's."""
        if info is not None:
            return self.ctx.policies.get(info.storage_policy_index).name
        return req.headers.get("x-storage-policy") if req.method == "PUT" else None

    async def _delete(self, req: Request, next: Handler) -> Response:
        """A versioned container goes only without versions, and takes its versions
        container along."""
        info = await container_info(self.ctx, req.account or "", req.container or "")
        state = versioning_of(info)
        if state.versions is None:
            return await next(req)
        await authorize(self.ctx, req, info)
        head = await rewrite.call(next, self._versions_request(req, "HEAD", state.versions))
        await release(head)
        count = header(head.headers, "x-container-object-count") or "0"
        if head.status // 100 == 2 and count.isdigit() and int(count) > 0:
            raise HTTPConflict("Delete all versions before deleting container.")
        if head.status // 100 != 2 and head.status != 404:
            raise HTTPInternalServerError("Error deleting versioned container")
        gone = await rewrite.call(next, self._versions_request(req, "DELETE", state.versions))
        await release(gone)
        if gone.status // 100 != 2 and gone.status != 404:
            raise HTTPInternalServerError("Error deleting versioned container")
        return await next(req)
