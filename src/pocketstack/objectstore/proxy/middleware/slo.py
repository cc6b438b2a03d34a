"""Static large objects (Swift's ``slo`` middleware).

An SLO is a manifest object listing its segments (other objects, ranges of them, or
inline data) with their sizes and ETags; a GET streams their concatenation. What each
request does:

    PUT    ?multipart-manifest=put      check the segments, store the manifest (slo_put)
    GET    (HEAD)                       the large object (slo_get); ?multipart-manifest=get
                                        the manifest; ?part-number=N one segment
    DELETE ?multipart-manifest=delete   the segments, then the manifest (slo_delete)
    COPY / PUT X-Copy-From              the concatenation, or the manifest (large_copy)
    POST   with Content-Type            keeps the listing's size (``;swift_bytes=N``)
    GET    of a container (JSON/XML)    ``slo_etag`` beside each manifest's ``hash``

``X-Static-Large-Object`` is reserved: any other request carrying it is a 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pocketstack.objectstore.constraints import clean_content_type
from pocketstack.objectstore.exceptions import HTTPBadRequest, SwiftError
from pocketstack.objectstore.proxy.middleware.large_copy import copy_large_object
from pocketstack.objectstore.proxy.middleware.segments import forwarded, header, rewrite
from pocketstack.objectstore.proxy.middleware.slo_delete import delete_manifest
from pocketstack.objectstore.proxy.middleware.slo_get import get_or_head, is_slo
from pocketstack.objectstore.proxy.middleware.slo_manifest import SLO_SIZE
from pocketstack.objectstore.proxy.middleware.slo_put import YIELD_FREQUENCY, put_manifest
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, release
from pocketstack.objectstore.proxy.request import Request, Response

RESERVED = ("X-Static-Large-Object is a reserved header. To create a static large object "
            "add query param multipart-manifest=put.")
# A stored manifest holds what the client sent plus what the proxy learned of each segment.
MANIFEST_READ_FACTOR = 4
XML_HASH = re.compile(r"<hash>([^<;]*)((?:;[^<]*)?)</hash>(.*?)</object>", re.S)


class StaticLargeObject(Middleware):
    name = "slo"

    def info(self) -> dict[str, Any]:
        settings = self.ctx.settings
        return {"max_manifest_segments": settings.slo_max_manifest_segments,
                "max_manifest_size": settings.slo_max_manifest_size,
                "min_segment_size": settings.slo_min_segment_size,
                "yield_frequency": YIELD_FREQUENCY, "allow_async_delete": False}

    @property
    def manifest_read_limit(self) -> int:
        return self.ctx.settings.slo_max_manifest_size * MANIFEST_READ_FACTOR + 65536

    def applies(self, req: Request) -> bool:
        return req.obj is not None or req.container is not None and req.method == "GET"

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.obj is None:
            if req.container is not None and req.method == "GET":
                return await self._listing(req, next)
            return await next(req)
        multipart = req.query.get("multipart-manifest")
        if req.method == "PUT" and multipart == "put":
            return await put_manifest(self, req, next)
        if req.method == "DELETE" and multipart == "delete":
            return await delete_manifest(self, req, next)
        if req.method in ("GET", "HEAD"):
            return await get_or_head(self, req, next)
        if "x-static-large-object" in req.headers:
            raise HTTPBadRequest(RESERVED)
        if req.method in ("COPY", "PUT"):
            copied = await copy_large_object(
                req, next, is_mine=is_slo, serve=lambda sub: self.handle(sub, next),
                max_file_size=self.ctx.limits.max_file_size)
            if copied is not None:
                return copied
        if req.method == "POST" and req.headers.get("content-type"):
            return await next(await self._keep_listed_size(req, next))
        return await next(req)

    async def _keep_listed_size(self, req: Request, next: Handler) -> Request:
        """A POST that changes a manifest's Content-Type keeps ``;swift_bytes=<size>`` on
        it, so that its container listing still shows the large object's size (Swift's
        object server keeps it from the data file)."""
        headers = await self._stored_headers(req, next)
        size = header(headers, SLO_SIZE)
        if not is_slo(headers) or not size:
            return req
        content_type = clean_content_type(req.headers["content-type"])
        return rewrite(req, headers={"Content-Type": f"{content_type};swift_bytes={size}"})

    async def _stored_headers(self, req: Request, next: Handler) -> dict[str, str]:
        sub = req.subrequest("HEAD", req.path, headers=forwarded(req),
                             query={"multipart-manifest": "get"}, source="SLO")
        try:
            response = await next(sub)
        except SwiftError:  # the POST itself will answer (404, 403...)
            return {}
        await release(response)
        return dict(response.headers)

    async def _listing(self, req: Request, next: Handler) -> Response:
        """A container listing with each manifest's ``slo_etag`` beside its ``hash`` (the
        manifest's own ETag), as Swift's ``handle_container_listing``."""
        response = await next(req)
        body = response.body
        if response.status != 200 or not isinstance(body, bytes) or b"slo_etag=" not in body:
            return response
        media = (header(response.headers, "Content-Type") or "").split(";")[0].strip()
        if media == "application/json":
            response.body = _json_listing(body)
        elif media.endswith("/xml"):
            response.body = _xml_listing(body)
        return response


def split_hash(value: str) -> tuple[str, dict[str, str]]:
    """``"<etag>; k=v; ..."`` (a listing hash with parameters) -> (etag, params)."""
    etag, *params = value.split(";")
    pairs = (p.strip().partition("=") for p in params if p.strip())
    return etag.strip(), {k: v for k, _, v in pairs}


def _join_hash(etag: str, params: dict[str, str]) -> str:
    return etag + "".join(f"; {k}={v}" for k, v in params.items())


def _json_listing(body: bytes) -> bytes:
    try:
        entries = json.loads(body)
    except ValueError:
        return body
    for entry in entries:
        if not isinstance(entry, dict) or "hash" not in entry:
            continue
        etag, params = split_hash(str(entry["hash"]))
        if "slo_etag" in params:
            entry["slo_etag"] = f'"{params.pop("slo_etag")}"'
            entry["hash"] = _join_hash(etag, params)
    return json.dumps(entries).encode("ascii")


def _xml_listing(body: bytes) -> bytes:
    def fix(match: re.Match[str]) -> str:
        etag, params = split_hash(match.group(1) + match.group(2))
        slo_etag = params.pop("slo_etag", None)
        rest = match.group(3)
        if slo_etag is None:
            return match.group(0)
        return (f"<hash>{_join_hash(etag, params)}</hash>{rest}"
                f"<slo_etag>\"{slo_etag}\"</slo_etag></object>")

    return XML_HASH.sub(fix, body.decode("utf-8")).encode("utf-8")

