"""Symlinks (Swift's ``symlink`` middleware): objects that name another object.

A symlink is a zero-byte object written with ``X-Symlink-Target: <container>/<object>``
(and ``X-Symlink-Target-Account``); the target is kept in system metadata
(``X-Object-Sysmeta-Symlink-Target``, percent-encoded as Swift stores it) and in the
container listing's etag parameters (``<md5 of "">; symlink_target=c/o``, via the container
update override), from which JSON listings show ``symlink_path`` (and ``symlink_etag``,
``symlink_bytes`` for static links). Behaviour, as Swift's:

- ``GET``/``HEAD`` follow links (at most ``symloop_max`` in a row, else 409 "Too many levels
  of symbolic links"); the answer carries ``Content-Location`` (the target's path), errors
  too. Each hop is a sub-request with the caller's identity: reading the target needs read
  rights on it. ``?symlink=get`` reads the link itself (``X-Symlink-Target`` & co. shown).
- A static link (``X-Symlink-Target-Etag``) is checked at PUT (the target must exist, 409,
  and match) and at every read (409 when the target changed).
- ``POST`` applies to the link and answers 307 with the target as ``Location``.
- ``COPY`` / ``X-Copy-From`` copy the target; with ``?symlink=get`` the link itself.

Links written by object versioning carry ``X-Object-Sysmeta-Symloop-Extend`` (not counted
against the limit) and ``X-Object-Sysmeta-Allow-Reserved-Names`` (its target is in the
reserved namespace and is read pre-authorized: the link's own read was authorized).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote

from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPPreconditionFailed,
    SwiftError,
)
from pocketstack.objectstore.proxy import checks
from pocketstack.objectstore.proxy.middleware import rewrite
from pocketstack.objectstore.proxy.middleware.rewrite import header
from pocketstack.objectstore.proxy.middleware.symlink_links import (
    ALLOW_RESERVED,
    MD5_OF_EMPTY,
    OVERRIDE_ETAG,
    TARGET,
    TARGET_ACCOUNT,
    TARGET_BYTES,
    TARGET_ETAG,
    Link,
    check_etag,
    head_or_link,
    link_of,
    resolve_copy_source,
    too_many,
)
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, release
from pocketstack.objectstore.proxy.request import Request, Response

CLIENT_HEADERS = {TARGET: "X-Symlink-Target", TARGET_ACCOUNT: "X-Symlink-Target-Account",
                  TARGET_ETAG: "X-Symlink-Target-Etag", TARGET_BYTES: "X-Symlink-Target-Bytes"}
FORM_ERROR = "X-Symlink-Target header must be of the form <container name>/<object name>"
POST_MESSAGE = ("The requested POST was applied to a symlink. POST directly to the target "
                "to apply requested metadata.")


class Symlink(Middleware):
    name = "symlink"

    def info(self) -> dict[str, Any] | None:
        return {"symloop_max": self.ctx.settings.symloop_max, "static_links": True}

    def applies(self, req: Request) -> bool:
        return req.obj is not None or req.container is not None and req.method == "GET"

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.obj is None:
            if req.container is not None and req.method == "GET":
                return await self._listing(req, next)
            return await next(req)
        symlink_get = req.query.get("symlink") == "get"
        if req.method in ("GET", "HEAD"):
            if symlink_get:
                return _as_client_headers(await next(req))
            return await self.follow(req, next)
        if req.method == "PUT" and "x-symlink-target" in req.headers:
            return await self._put(req, next)
        if req.method == "COPY" or (req.method == "PUT" and "x-copy-from" in req.headers):
            return await self._copy(req, next, symlink_get)
        if req.method == "POST":
            return await _post(req, next)
        return await next(req)

    # -- reads --------------------------------------------------------------------------------
    async def follow(self, req: Request, next: Handler) -> Response:
        """``req``'s answer, through every symlink on the way (Swift's
        ``_recursive_get_head``)."""
        response = await head_or_link(req, next)
        link, hops, location, account = link_of(response), 0, None, req.account or ""
        while link is not None:
            await release(response)
            if hops >= self.ctx.settings.symloop_max and not link.extends_loop:
                raise too_many(self.ctx.settings.symloop_max)
            hops += 0 if link.extends_loop else 1
            location = link.location(req.version, account)
            sub = link.subrequest(req, req.method, account=account,
                                  headers=dict(req.headers.items()))
            account = link.path(account)[0]
            response = await head_or_link(sub, next, location=location)
            check_etag(link, response, location)
            link = link_of(response)
        if location is not None:
            response.headers["Content-Location"] = location
        return response

    # -- writes -------------------------------------------------------------------------------
    async def _put(self, req: Request, next: Handler) -> Response:
        if "x-copy-from" in req.headers or not await _zero_body(req):
            raise HTTPBadRequest("Symlink requests require a zero byte body",
                                 content_type="text/plain")
        if req.content_length is None:  # a chunked body, read already: it was empty
            req = rewrite.with_body(req, b"")
        link = parse_target(req)
        preset = header(req.headers, TARGET_ETAG)  # object versioning's links: trusted
        if preset and not link.etag:
            link = replace(link, etag=preset)
        sysmeta = link.sysmeta()
        if preset:
            sysmeta[TARGET_BYTES] = header(req.headers, TARGET_BYTES) or "0"
        elif link.etag:
            sysmeta.update(await self._static_target(req, next, link))
        elif not req.headers.get("content-type"):
            sysmeta["Content-Type"] = "application/symlink"
        base = sysmeta.get(OVERRIDE_ETAG) or header(req.headers, OVERRIDE_ETAG)
        sysmeta[OVERRIDE_ETAG] = link.override_etag(base, sysmeta.get(TARGET_BYTES))
        drop = ("x-symlink-target", "x-symlink-target-account", "x-symlink-target-etag",
                "x-symlink-target-bytes")
        return await next(rewrite.with_headers(req, sysmeta, drop=drop))

    async def _static_target(self, req: Request, next: Handler, link: Link
                             ) -> dict[str, str]:
        """Check a static link's target (it exists, its ETag is the link's); the sysmeta
        and defaults the link keeps from it (Swift's ``_validate_etag_and_update_sysmeta``)."""
        location = link.location(req.version, req.account or "")
        head = link.subrequest(req, "HEAD", account=req.account or "",
                               query={"symlink": "get"})
        try:
            target = await self._head_static(req, head, next, link, location)
        except SwiftError as exc:
            if exc.status == 404:
                raise HTTPConflict("X-Symlink-Target does not exist", content_type="text/plain",
                                   headers={"Content-Location": location}) from exc
            raise
        check_etag(link, target, location)
        slo_etag = header(target.headers, "x-object-sysmeta-slo-etag")
        extra = {TARGET_BYTES: header(target.headers, "x-object-sysmeta-slo-size")
                 or str(rewrite.length_of(target))}
        if slo_etag:
            extra[OVERRIDE_ETAG] = f"{MD5_OF_EMPTY}; slo_etag={slo_etag}"
        if not req.headers.get("content-type"):
            extra["Content-Type"] = header(target.headers, "content-type") or ""
        return extra

    async def _head_static(self, req: Request, head: Request, next: Handler, first: Link,
                           location: str) -> Response:
        """HEAD the target of a static link, through static links only (a dynamic link
        counts as the zero-byte object it is); ``req`` is the client's PUT."""
        response = await head_or_link(head, next, location=location)
        account, hops = first.path(req.account or "")[0], 0
        while (link := link_of(response)) is not None and link.etag:
            if hops >= self.ctx.settings.symloop_max:
                raise too_many(self.ctx.settings.symloop_max)
            hops += 1
            await release(response)
            location = link.location(req.version, account)
            sub = link.subrequest(req, "HEAD", account=account, query={"symlink": "get"})
            account = link.path(account)[0]
            response = await head_or_link(sub, next, location=location)
            check_etag(link, response, location)
        return response

    async def _copy(self, req: Request, next: Handler, symlink_get: bool) -> Response:
        """A copy reads through links to the object (unless ``?symlink=get``, which copies
        the link itself, retargeted to ``X-Symlink-Target-Account`` when given)."""
        put = rewrite.copy_as_put(req) if req.method == "COPY" else req
        source = rewrite.copy_source(put)
        if symlink_get:
            if "x-symlink-target-account" not in put.headers:
                return await next(req)
            return await next(await self._retarget(put, next, source))
        found = await resolve_copy_source(put, next, source,
                                          limit=self.ctx.settings.symloop_max)
        if found.path == source:
            return await next(req)
        account, container, obj = found.path
        moved = rewrite.with_headers(put, {
            "X-Copy-From": quote(f"/{container}/{obj}".encode()),
            "X-Copy-From-Account": quote(account.encode())})
        if found.reserved:
            moved = rewrite.reserved_source(moved)
        response = await next(moved)
        response.headers["X-Copied-From"] = quote(f"{source[1]}/{source[2]}".encode())
        response.headers["X-Copied-From-Account"] = quote(source[0].encode())
        return response

    async def _retarget(self, put: Request, next: Handler, source: tuple[str, str, str]
                        ) -> Request:
        """A copy of a link made to point into ``X-Symlink-Target-Account``."""
        account = rewrite.path_account(put.headers["x-symlink-target-account"])
        head = put.subrequest("HEAD", rewrite.object_path(put.version, *source),
                              query={"symlink": "get"}, source="SYM")
        response = await next(head)
        link = link_of(response)
        if link is None:
            return rewrite.with_headers(put, drop=("x-symlink-target-account",))
        moved = Link(account=quote(account.encode()), target=link.target, etag=link.etag,
                     bytes=link.bytes)
        sysmeta = moved.sysmeta()
        if link.etag:
            sysmeta[TARGET_BYTES] = link.bytes or "0"
        sysmeta[OVERRIDE_ETAG] = moved.override_etag(None, link.bytes)
        return rewrite.with_headers(put, sysmeta, drop=("x-symlink-target-account",))

    # -- listings ------------------------------------------------------------------------------
    async def _listing(self, req: Request, next: Handler) -> Response:
        """JSON listings show each link's target (``symlink_path``, and ``symlink_etag``
        and ``symlink_bytes`` for static links); other formats just lose the etag's
        parameters. A listing without links passes through untouched."""
        response = await next(req)
        media = rewrite.listing_format(req)  # the core accepted it: no error here
        body = response.body
        if response.status != 200 or media == "text/plain" or \
                not isinstance(body, bytes) or b"symlink_target=" not in body:
            return response
        if media != "application/json":
            response, rows = await rewrite.json_listing(req, next)
        else:
            rows = rewrite.json_rows(body)
        for row in rows:
            listed_target(row, req.version, req.account or "")
        return rewrite.render_listing(req, response, rows, media)


def listed_target(row: dict[str, Any], version: str, account: str) -> None:
    """Move a listing row's link parameters (in its hash) to Swift's JSON keys."""
    if "hash" not in row:
        return
    etag, _, params = str(row["hash"]).partition(";")
    kept, target = [etag.strip()], None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key == "symlink_target":
            target = value
        elif key == "symlink_target_account":
            account = unquote(value)
        elif key == "symlink_target_etag":
            row["symlink_etag"] = value
        elif key == "symlink_target_bytes":
            row["symlink_bytes"] = int(value) if value.isdigit() else 0
        elif key:
            kept.append(f"{key}={value}")
    row["hash"] = "; ".join(kept)
    if target:
        row["symlink_path"] = f"/{version}/{quote(account.encode())}/{target}"


# -- helpers -----------------------------------------------------------------------------------
def parse_target(req: Request) -> Link:
    """The link a PUT asks for, validated as Swift's
    ``_validate_and_prep_request_headers``."""
    raw = req.headers["x-symlink-target"]
    if unquote(raw).startswith("/"):
        raise HTTPPreconditionFailed(FORM_ERROR, content_type="text/plain")
    # only object versioning's own links may point into the reserved namespace
    container, obj = rewrite.path_header(raw, "X-Symlink-Target",
                                         reserved=checks.true(header(req.headers,
                                                                     ALLOW_RESERVED)))
    account = None
    if "x-symlink-target-account" in req.headers:
        account = rewrite.path_account(req.headers["x-symlink-target-account"])
    if (account or req.account, container, obj) == (req.account, req.container, req.obj):
        raise HTTPBadRequest("Symlink cannot target itself", content_type="text/plain")
    etag = (req.headers.get("x-symlink-target-etag") or "").strip()
    if etag.startswith('"') and etag.endswith('"') and len(etag) > 1:
        etag = etag[1:-1]
    if any(c in etag for c in ';"\\'):
        raise HTTPBadRequest("Bad X-Symlink-Target-Etag format", content_type="text/plain")
    return Link(account=quote(account.encode()) if account else None,
                target=quote(f"{container}/{obj}".encode()), etag=etag or None)


async def _zero_body(req: Request) -> bool:
    length = req.content_length
    if length is not None:
        return length == 0
    async for chunk in req.body():
        if chunk:
            return False
    return True


def _as_client_headers(response: Response) -> Response:
    """A link read with ``?symlink=get``: its system metadata shown as ``X-Symlink-*``
    (and kept, for the middlewares that copy the link as it is; the gatekeeper drops it)."""
    for sysmeta, client in CLIENT_HEADERS.items():
        value = header(response.headers, sysmeta)
        if value is not None:
            response.headers[client] = value
    return response


async def _post(req: Request, next: Handler) -> Response:
    """A POST applies to the link (the object server cannot know better), then answers
    307 towards the target."""
    if "x-symlink-target" in req.headers:
        raise HTTPBadRequest("A PUT request is required to set a symlink target",
                             content_type="text/plain")
    response = await next(req)
    link = link_of(response)
    if response.status // 100 != 2 or link is None:
        return response
    await release(response)
    headers = {k: v for k, v in response.headers.items()
               if k.lower().startswith("x-object-sysmeta-")}
    headers["Location"] = link.location(req.version, req.account or "")
    if link.etag:
        headers["X-Symlink-Target-Etag"] = link.etag
    headers["Content-Type"] = "text/plain; charset=UTF-8"
    return Response(307, headers, POST_MESSAGE.encode())
