"""/v2/images/{id}/file (upload, download) and /v2/images/{id}/stage: image data, streamed.

Uploads pass the request body to the service chunk by chunk as it arrives; downloads send
the store's chunks as they arrive (:class:`DataResponse`), with Glance's headers:
``Content-MD5`` (the image's md5) and, for a ``Range``, 206 and ``Content-Range``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from pocketstack.image.api.common import Ctx, declared_size, no_content, require_octet_stream
from pocketstack.image.exceptions import IncompleteUpload
from pocketstack.image.service import ranges
from pocketstack.image.service.data import Download
from pocketstack.image.store import StoreError

router = APIRouter(prefix="/v2/images/{image_id}")
LOG = logging.getLogger(__name__)


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:
        raise IncompleteUpload() from exc


@router.put("/file")
async def upload(ctx: Ctx, request: Request, image_id: str) -> Response:
    require_octet_stream(request)
    image = await ctx.image_for("upload_image", image_id)
    await ctx.hub.data.upload(image, _body(request), declared_size(request))
    return no_content()


@router.put("/stage")
async def stage(ctx: Ctx, request: Request, image_id: str) -> Response:
    require_octet_stream(request)
    image = await ctx.image_for("stage_image", image_id)
    await ctx.hub.data.stage(image, _body(request), declared_size(request))
    return no_content()


@router.get("/file", response_model=None)
async def download(ctx: Ctx, request: Request, image_id: str) -> Response:
    image = await ctx.image_for("download_image", image_id)
    wanted = None
    if image.size is not None and image.location is not None:
        wanted = ranges.requested(request.headers.get("range"),
                                  request.headers.get("content-range"), image.size)
    found = await ctx.hub.data.download(ctx.caller, image, wanted)
    if found is None:
        return no_content()
    headers = {"Content-Type": "application/octet-stream",
               "Content-Length": str(found.length)}
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    if found.range is not None:
        headers["Content-Range"] = found.range.content_range()
    return DataResponse(found, headers, image_id)


class DataResponse(Response):
    """Sends a store reader's chunks; always closes the reader. A client that goes away
    or a store that fails once the headers are out ends the body early, as it must."""

    def __init__(self, download: Download, headers: dict[str, str], image_id: str) -> None:
        self.download = download
        self.status_code = 206 if download.range is not None else 200
        self.background = None
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                            for k, v in headers.items()]
        self.image_id = image_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            async for chunk in self.download.reader:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
            if sent == self.download.length:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                LOG.warning("image %s: the store sent %d of %d bytes", self.image_id, sent,
                            self.download.length)
        except OSError:
            LOG.info("image %s: the client went away after %d bytes", self.image_id, sent)
        except StoreError as exc:
            LOG.warning("image %s: the store failed after %d bytes: %s", self.image_id, sent,
                        exc)
        finally:
            await self.download.reader.aclose()
