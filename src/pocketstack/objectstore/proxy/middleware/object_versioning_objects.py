"""Object requests under object versioning (Swift's ``ObjectContext``).

In a versioned container, every write of an object's content is a new version: the data
goes to the versions container under a version id, and the object itself becomes a static
link to it (``X-Object-Sysmeta-Versions-Symlink``), which reads follow. A DELETE writes a
delete marker version and removes the link. ``?version-id=<id>`` reads, deletes or (PUT)
makes current one version; ``null`` is the object stored outside versioning.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPInternalServerError,
    HTTPLengthRequired,
    HTTPNotFound,
    HTTPPreconditionFailed,
    HTTPServiceUnavailable,
    SwiftError,
    error_for_status,
)
from pocketstack.objectstore.proxy.checks import ALLOW_RESERVED_NAMES, true
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import container_info
from pocketstack.objectstore.proxy.controllers.container import authorize
from pocketstack.objectstore.proxy.middleware import rewrite
from pocketstack.objectstore.proxy.middleware.object_versioning_names import (
    DELETE_MARKER,
    NULL,
    VERSIONS_SYMLINK,
    parse_version_object,
    quoted,
    valid_version_id,
    version_id_of,
    version_object,
)
from pocketstack.objectstore.proxy.middleware.rewrite import header
from pocketstack.objectstore.proxy.middleware.symlink_links import (
    ALLOW_RESERVED,
    OVERRIDE_ETAG,
    SYMLOOP_EXTEND,
    TARGET_BYTES,
    TARGET_ETAG,
)
from pocketstack.objectstore.proxy.pipeline import Handler, release
from pocketstack.objectstore.proxy.request import Request, Response, split_path
from pocketstack.objectstore.storage.types import ContainerInfo
from pocketstack.objectstore.timestamp import Timestamp

NO_VERSIONS = ("The versions container does not exist. You may want to re-enable object "
               "versioning.")
EXPIRY = ("x-delete-at", "x-delete-after")
NOT_FOR_LINKS = ("etag", "x-if-delete-at", "x-symlink-target-account", "x-symlink-target-etag",
                 "x-object-manifest", "x-static-large-object", "x-object-sysmeta-slo-etag",
                 "x-object-sysmeta-slo-size", "x-copy-from", "x-copy-from-account",
                 "transfer-encoding", "expect")


@dataclass(frozen=True)
class Versioned:
    """The container's versioning state (from its system metadata)."""

    info: ContainerInfo | None
    versions: str | None
    enabled: bool


@dataclass(frozen=True)
class Stored:
    """What a version write stored: its name, id, ETag, size and type. A version that is
    itself a static link stands for its target's ETag, so that the chain of static links
    (object → version → target) checks out at every hop."""

    name: str
    version_id: str
    etag: str
    size: int
    content_type: str
    listing_etag: str | None = None
    """The version's own listing etag (e.g. a large object's ``<etag>; slo_etag=...``),
    which the link's listing entry carries on."""


class VersionedObjects:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    # -- without a version id -------------------------------------------------------------------
    async def put(self, req: Request, next: Handler, state: Versioned) -> Response:
        """Keep the client's data as a new version and make the object a link to it."""
        if not state.enabled or state.versions is None:
            return await next(req)
        await authorize(self.ctx, req, state.info)
        await self._copy_current(req, next, state.versions)
        stored = await self._write_version(req, next, state.versions)
        return await self._link(req, next, state.versions, stored)

    async def delete(self, req: Request, next: Handler, state: Versioned) -> Response:
        """Keep the current data, write a delete marker version, remove the object."""
        if not state.enabled or state.versions is None:
            return await next(req)
        await authorize(self.ctx, req, state.info)
        await self._copy_current(req, next, state.versions)
        version_id = version_id_of(Timestamp.now())
        marker = version_object(req.obj or "", version_id)
        put = rewrite.preauthorized(req.subrequest(
            "PUT", _path(req, state.versions, marker), body=b"", source="OV",
            headers={"Content-Type": DELETE_MARKER, "Content-Length": "0"}), reserved=True)
        _check(await rewrite.call(next, put))
        try:
            response = await next(req)
        except SwiftError as exc:
            if exc.status == 404:
                exc.headers["X-Object-Version-Id"] = version_id
            raise
        response.headers["X-Object-Version-Id"] = version_id
        return response

    async def post(self, req: Request, next: Handler, state: Versioned) -> Response:
        """A POST to the object's link applies to the version it points to too."""
        response = await next(req)
        if response.status != 307 or not true(header(response.headers, VERSIONS_SYMLINK)):
            return response
        location = unquote(header(response.headers, "location") or "")
        try:
            _, account, container, obj = split_path(location)
        except SwiftError:
            return response
        if (account, container) != (req.account, state.versions) or obj is None:
            return response
        await release(response)
        post = rewrite.with_headers(rewrite.moved(req, "POST", location), drop=EXPIRY)
        return await next(rewrite.preauthorized(post, reserved=True))

    async def read(self, req: Request, next: Handler, state: Versioned) -> Response:
        """GET/HEAD: the current version, with its id (``null`` outside versioning)."""
        try:
            response = await next(req)
        except SwiftError as exc:
            exc.headers.update(_version_headers(req, exc.headers, state.versions or ""))
            raise
        response.headers.update(_version_headers(req, response.headers, state.versions or ""))
        return response

    # -- with a version id ----------------------------------------------------------------------
    async def with_version_id(self, req: Request, next: Handler, state: Versioned,
                              version_id: str) -> Response:
        if req.method == "POST":
            raise HTTPBadRequest("POST to a specific version is not allowed")
        if state.versions is None and version_id != NULL:
            raise HTTPBadRequest("version-aware operations require that the container is "
                                 "versioned")
        if not valid_version_id(version_id):
            raise HTTPBadRequest("Invalid version parameter")
        if req.method == "DELETE":
            return await self._delete_version(req, next, state, version_id)
        if req.method == "PUT":
            return await self._make_current(req, next, state, version_id)
        if req.method not in ("GET", "HEAD"):
            return await next(req)
        if version_id == NULL:
            return await _read_null(req, next)
        return await _read_version(req, next, state.versions or "", version_id)

    async def _delete_version(self, req: Request, next: Handler, state: Versioned,
                              version_id: str) -> Response:
        """Delete one version; the current one takes its link along (no other version
        becomes current, as in Swift)."""
        if version_id == NULL:
            return await next(req)
        versions = state.versions or ""
        current = await _current_link(req, next)
        wanted = f"{versions}/{version_object(req.obj or '', version_id)}"
        current_id = NULL
        if current is not None and current != wanted:
            current_id = parse_version_object(current.partition("/")[2])[1] or NULL
        elif current == wanted:
            _check(await rewrite.call(next, rewrite.with_query(req, {})))
        gone = _reserved(rewrite.moved(req, "DELETE", _path(req, versions, wanted.partition(
            "/")[2])))
        ids = {"X-Object-Version-Id": version_id, "X-Object-Current-Version-Id": current_id}
        try:
            response = await next(gone)
        except SwiftError as exc:
            exc.headers.update(ids)
            raise
        response.headers.update(ids)
        return response

    async def _make_current(self, req: Request, next: Handler, state: Versioned,
                            version_id: str) -> Response:
        """``PUT ?version-id=<id>``: the object links to that version again."""
        if not valid_version_id(version_id, allow_null=False):
            raise HTTPBadRequest("Invalid version parameter")
        req = await _zero_body(req)
        versions = state.versions or ""
        name = version_object(req.obj or "", version_id)
        head = rewrite.preauthorized(req.subrequest(
            "HEAD", _path(req, versions, name), query={"symlink": "get"}, source="OV"),
            reserved=True)
        found = await rewrite.call(next, head)
        if found.status == 404:
            if await container_info(self.ctx, req.account or "", versions) is None:
                raise HTTPInternalServerError(NO_VERSIONS, content_type="text/plain")
            raise HTTPNotFound("The specified version does not exist",
                               content_type="text/plain")
        _check(found)
        etag = header(found.headers, TARGET_ETAG) or header(found.headers, "etag") or ""
        stored = Stored(name, version_id, etag,
                        rewrite.length_of(found), header(found.headers, "content-type") or "",
                        header(found.headers, OVERRIDE_ETAG))
        return await self._link(req, next, versions, stored)

    # -- the steps ---------------------------------------------------------------------------
    async def _copy_current(self, req: Request, next: Handler, versions: str) -> None:
        """An object stored before versioning was enabled becomes a version first."""
        get = rewrite.preauthorized(req.subrequest(
            "GET", req.path, headers={"X-Newest": "true"}, query={"symlink": "get"},
            source="OV"))
        source = await rewrite.call(next, get)
        if source.status == 404 or true(header(source.headers, VERSIONS_SYMLINK)):
            await release(source)
            return
        if source.status // 100 != 2:
            await release(source)
            _check(source)
        stamp = header(source.headers, "x-timestamp") or Timestamp.now().internal
        name = version_object(req.obj or "", version_id_of(stamp))
        put = rewrite.preauthorized(rewrite.copy_request(
            req, _path(req, versions, name), source, source_name="OV", reserved=True))
        _check_write(await rewrite.call(next, put))

    async def _write_version(self, req: Request, next: Handler, versions: str) -> Stored:
        """The client's PUT (its body, or the copy it asks for) as a new version."""
        version_id = version_id_of(Timestamp.now())
        name = version_object(req.obj or "", version_id)
        path = _path(req, versions, name)
        data = rewrite.with_headers(rewrite.moved(req, "PUT", path), drop=EXPIRY)
        try:
            response = await next(rewrite.authorized_except(data, req.account or "", versions))
        except SwiftError as exc:
            if exc.status == 404:
                raise HTTPInternalServerError(NO_VERSIONS, content_type="text/plain") from exc
            raise
        await release(response)
        head = rewrite.preauthorized(req.subrequest(
            "HEAD", path, query={"symlink": "get"}, source="OV"), reserved=True)
        found = await rewrite.call(next, head)
        _check(found)
        size = header(found.headers, "x-object-sysmeta-slo-size")
        copied = {k: v for k, v in response.headers.items()
                  if k.lower().startswith("x-copied-from")}
        req.state["ov_copied"] = copied
        etag = header(found.headers, TARGET_ETAG) or header(response.headers, "etag") or ""
        return Stored(name, version_id, etag,
                      int(size) if size and size.isdigit() else rewrite.length_of(found),
                      header(found.headers, "content-type") or "",
                      header(found.headers, OVERRIDE_ETAG))

    async def _link(self, req: Request, next: Handler, versions: str, stored: Stored
                    ) -> Response:
        """Make the object a static link to ``stored`` (Swift's
        ``_put_symlink_to_version``)."""
        link = rewrite.with_headers(rewrite.moved(req, "PUT", req.path), {
            "X-Symlink-Target": quoted(f"{versions}/{stored.name}"),
            TARGET_ETAG: stored.etag, TARGET_BYTES: str(stored.size),
            "Content-Type": stored.content_type, VERSIONS_SYMLINK: "true",
            SYMLOOP_EXTEND: "true", ALLOW_RESERVED: "true", ALLOW_RESERVED_NAMES: "true",
            "Content-Length": "0"}, drop=NOT_FOR_LINKS)
        carried = _carried_params(stored.listing_etag)
        if carried and not header(req.headers, OVERRIDE_ETAG):
            link = rewrite.with_headers(link, {OVERRIDE_ETAG: carried})
        link = rewrite.with_query(rewrite.with_body(link, b""), {})
        response = await next(link)
        response.headers.update(req.state.pop("ov_copied", {}))
        response.headers["ETag"] = stored.etag
        response.headers["X-Object-Version-Id"] = stored.version_id
        return response


# -- helpers -----------------------------------------------------------------------------------
def _carried_params(listing_etag: str | None) -> str | None:
    """A version's listing etag with its own parameters (``slo_etag``), not those of a
    link it may be (the object's link adds its own); None when nothing is left to carry."""
    if not listing_etag or ";" not in listing_etag:
        return None
    etag, *params = (p.strip() for p in listing_etag.split(";"))
    kept = [p for p in params if p and not p.startswith("symlink_")]
    return "; ".join([etag, *kept]) if kept else None


def _path(req: Request, container: str, obj: str) -> str:
    return rewrite.object_path(req.version, req.account or "", container, obj)


def _reserved(req: Request) -> Request:
    """``req`` allowed into the reserved namespace, still authorized as the caller (only an
    owner passes there: the versions container has no ACLs)."""
    return rewrite.with_headers(req, {ALLOW_RESERVED_NAMES: "true"})


def _check(response: Response) -> None:
    """Swift's ``_check_response_error``: 404 is 412, another client error stays itself, a
    server error is 503."""
    if response.status // 100 == 2:
        return
    if response.status == 404:
        raise HTTPPreconditionFailed()
    if response.status // 100 == 4:
        body = response.body if isinstance(response.body, bytes) else b""
        raise error_for_status(response.status, body.decode("utf-8", "replace") or None,
                               headers=rewrite.without(response.headers, ("content-length",)))
    raise HTTPServiceUnavailable()


def _check_write(response: Response) -> None:
    if response.status == 404:
        raise HTTPInternalServerError(NO_VERSIONS, content_type="text/plain")
    _check(response)


async def _zero_body(req: Request) -> Request:
    """A ``PUT ?version-id`` carries no data (411 without a length, 400 with data)."""
    length = req.content_length
    if length is None and not req.is_chunked:
        raise HTTPLengthRequired()
    empty = length == 0
    if length is None:
        empty = not any([chunk async for chunk in req.body()])
    if not empty:
        raise HTTPBadRequest("PUT version-id requests require a zero byte body",
                             content_type="text/plain")
    return rewrite.with_body(req, b"")


async def _current_link(req: Request, next: Handler) -> str | None:
    """``<versions container>/<version object>`` the object links to (None: no object, or
    not a version link)."""
    head = rewrite.preauthorized(req.subrequest(
        "HEAD", req.path, headers={"X-Newest": "true"}, query={"symlink": "get"},
        source="OV"))
    found = await rewrite.call(next, head)
    if found.status == 404:
        return None
    _check(found)
    target = header(found.headers, "x-symlink-target")
    if not target or not true(header(found.headers, VERSIONS_SYMLINK)):
        return None
    return unquote(target)


async def _read_null(req: Request, next: Handler) -> Response:
    """``?version-id=null``: the object itself, unless it is a version's link (404)."""
    response = await next(req)
    if response.status // 100 == 2:
        location = unquote(header(response.headers, "content-location") or "")
        if "\x00versions\x00" in location:
            await release(response)
            raise HTTPNotFound()
        response.headers["X-Object-Version-Id"] = NULL
    return response


async def _read_version(req: Request, next: Handler, versions: str, version_id: str
                        ) -> Response:
    """GET/HEAD of one version (404 for a delete marker)."""
    path = _path(req, versions, version_object(req.obj or "", version_id))
    response = await next(_reserved(rewrite.moved(req, req.method, path)))
    ctype = header(response.headers, "content-type")
    if ctype == DELETE_MARKER:
        await release(response)
        raise HTTPNotFound(headers={"X-Object-Version-Id": version_id,
                                    "Content-Type": DELETE_MARKER})
    if response.status // 100 == 2:
        response.headers["X-Object-Version-Id"] = version_id
    return response


def _version_headers(req: Request, headers: dict[str, str], versions: str
                     ) -> dict[str, str]:
    """``X-Object-Version-Id`` of what a read answered, and its ``Content-Location`` (or
    ``X-Symlink-Target``) named by version id rather than by hidden container."""
    out = {"X-Object-Version-Id": NULL}
    location = unquote(header(headers, "content-location") or "")
    parts = location.split("/", 4)
    if len(parts) == 5 and parts[2] == req.account and parts[3] == versions:
        version_id = parse_version_object(parts[4])[1]
        if version_id is not None:
            out["X-Object-Version-Id"] = version_id
            out["Content-Location"] = quoted(
                f"/{req.version}/{req.account}/{req.container}/{req.obj}") + \
                f"?version-id={version_id}"
    target = unquote(header(headers, "x-symlink-target") or "")
    container, _, obj = target.partition("/")
    if target and container == versions:
        version_id = parse_version_object(obj)[1]
        if version_id is not None:
            out["X-Object-Version-Id"] = version_id
            out["X-Symlink-Target"] = quote(f"{req.container}/{req.obj}".encode()) + \
                f"?version-id={version_id}"
    return out
