"""Bulk operations: many objects in one request (Swift's ``bulk`` middleware, pre-auth).

``PUT /v1/<account>[/<container>[/<prefix>]]?extract-archive=tar|tar.gz|tar.bz2`` creates
one object per regular file of the archive (``bulk_extract``); ``POST`` or ``DELETE`` with
``?bulk-delete`` deletes the newline-separated, URL-encoded ``/container[/object]`` paths
of its body (``bulk_delete``). Each item is a sub-request with the caller's token, so the
rest of the pipeline (Keystone, ACLs, quotas) treats it like a request of its own.

The answer is ``200 OK`` at once and the outcome comes in the body (``bulk_result``). The
work runs in a task beside the response: every ``YIELD_FREQUENCY`` seconds without a
result the body gets a space (the XML declaration first), and the result follows a blank
line, as Swift's ``yield_frequency`` heartbeats. The body is read once before the answer
starts, so a client that waits for ``100 Continue`` gets it.

``/info``: ``bulk_upload`` (``max_containers_per_extraction``, ``max_failed_extractions``)
and ``bulk_delete`` (``max_deletes_per_request``, ``max_failed_deletes``), one section per
middleware.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any

from pocketstack.objectstore.exceptions import HTTPBadRequest, SwiftError
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.listing import best_match
from pocketstack.objectstore.proxy.middleware import bulk_delete, bulk_extract
from pocketstack.objectstore.proxy.middleware.bulk_result import (
    ACCEPTABLE_FORMATS,
    XML_DECLARATION,
    BulkResult,
    BulkStop,
    render,
)
from pocketstack.objectstore.proxy.middleware.tarstream import ArchiveError
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware
from pocketstack.objectstore.proxy.request import Request, Response

LOG = logging.getLogger(__name__)
YIELD_FREQUENCY = 10.0  # seconds between heartbeats (Swift's ``yield_frequency``)
ARCHIVE_KINDS = {"tar": "", "tar.gz": "gz", "tar.bz2": "bz2"}
HTML = "text/html; charset=UTF-8"
Work = Callable[[], Awaitable[None]]


def result_media_type(req: Request) -> str | None:
    """The result's format by ``Accept`` (None: nothing acceptable, an invalid header
    counting as none, as Swift)."""
    try:
        return best_match(req.headers.get("accept"), ACCEPTABLE_FORMATS)
    except ValueError:
        return None


class Prefetched:
    """The request body with its first chunk read ahead: reading is what lets the server
    send ``100 Continue``, which it cannot do once the answer has started. A failure of
    that first read comes out of the first ``__anext__``."""

    def __init__(self, req: Request) -> None:
        self._source = req.body()
        self._first: bytes | None = None
        self._error: SwiftError | None = None
        self._ended = False

    async def start(self) -> None:
        try:
            self._first = await anext(self._source)
        except StopAsyncIteration:
            self._ended = True
        except SwiftError as exc:
            self._error = exc

    def __aiter__(self) -> Prefetched:
        return self

    async def __anext__(self) -> bytes:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self._ended:
            raise StopAsyncIteration
        return await anext(self._source)


async def run_bulk(work: Work, result: BulkResult) -> None:
    """Run ``work``; whatever ends it early becomes the result's status."""
    try:
        await work()
    except BulkStop as stop:
        result.stop(stop.status, stop.body)
    except ArchiveError as exc:
        result.stop(400, f"Invalid Tar File: {exc}")
    except SwiftError as exc:  # the client's body went away, stalled, or was refused
        result.stop(exc.status, exc.body or "")
    except Exception:
        LOG.exception("Error in bulk %s.", result.root)
        result.stop(500)


def respond(work: Work, result: BulkResult, media_type: str | None, *,
            frequency: float = YIELD_FREQUENCY) -> Response:
    """``200 OK`` whose body is the heartbeats and then the rendered result."""
    task = asyncio.create_task(run_bulk(work, result))

    async def cancel() -> None:
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    headers = {"Content-Type": media_type or HTML}
    return Response(200, headers, stream_result(task, result, media_type, frequency),
                    on_close=cancel)


async def stream_result(task: asyncio.Task[None], result: BulkResult, media_type: str | None,
                        frequency: float) -> AsyncIterator[bytes]:
    xml = media_type is not None and media_type.endswith("/xml")
    heartbeat, separator = (XML_DECLARATION if xml else b" "), b""
    while True:
        done, _ = await asyncio.wait({task}, timeout=frequency)
        if done:
            break
        yield heartbeat
        heartbeat, separator = b" ", b"\r\n\r\n"
    yield separator + render(result, media_type)


def forwarded_headers(req: Request, agent: str) -> dict[str, str]:
    """What each sub-request carries of the caller's: its tokens and user agent."""
    headers = {"User-Agent": f"{req.headers.get('user-agent', '')} {agent}".strip()}
    token = req.headers.get("x-auth-token") or req.headers.get("x-storage-token")
    if token:
        headers["X-Auth-Token"] = token
    service_token = req.headers.get("x-service-token")
    if service_token:
        headers["X-Service-Token"] = service_token
    return headers


class BulkUpload(Middleware):
    """``?extract-archive=`` on a PUT."""

    name = "bulk_upload"

    def __init__(self, ctx: ProxyContext, *, frequency: float = YIELD_FREQUENCY) -> None:
        super().__init__(ctx)
        self.frequency = frequency

    def info(self) -> dict[str, Any]:
        settings = self.ctx.settings
        return {"max_containers_per_extraction": settings.bulk_max_containers_per_extraction,
                "max_failed_extractions": settings.bulk_max_failed_extractions}

    def applies(self, req: Request) -> bool:
        return req.method == "PUT" and "extract-archive" in req.query

    async def handle(self, req: Request, next: Handler) -> Response:
        kind_name = req.query.get("extract-archive")
        if kind_name is None or req.method != "PUT":
            return await next(req)
        kind = ARCHIVE_KINDS.get(kind_name.lower().strip("."))
        if kind is None:
            raise HTTPBadRequest("Unsupported archive format", content_type=HTML)
        media_type = result_media_type(req)
        body = Prefetched(req)
        await body.start()
        result = BulkResult.for_extract()
        job = bulk_extract.Extraction(self.ctx, req, next, result, body=body, kind=kind,
                                      acceptable=media_type is not None,
                                      forwarded=forwarded_headers(req, "BulkExpand"))
        return respond(job.run, result, media_type, frequency=self.frequency)


class BulkDelete(Middleware):
    """``?bulk-delete`` on a POST or DELETE."""

    name = "bulk_delete"

    def __init__(self, ctx: ProxyContext, *, frequency: float = YIELD_FREQUENCY) -> None:
        super().__init__(ctx)
        self.frequency = frequency

    def info(self) -> dict[str, Any]:
        settings = self.ctx.settings
        return {"max_deletes_per_request": settings.bulk_max_deletes_per_request,
                "max_failed_deletes": settings.bulk_max_failed_deletes}

    def applies(self, req: Request) -> bool:
        return req.method in ("POST", "DELETE") and "bulk-delete" in req.query

    async def handle(self, req: Request, next: Handler) -> Response:
        if "bulk-delete" not in req.query or req.method not in ("POST", "DELETE"):
            return await next(req)
        media_type = result_media_type(req)
        body = Prefetched(req)
        await body.start()
        result = BulkResult.for_delete()
        job = bulk_delete.Deletion(self.ctx, req, next, result, body=body,
                                   acceptable=media_type is not None,
                                   forwarded=forwarded_headers(req, "BulkDelete"))
        return respond(job.run, result, media_type, frequency=self.frequency)
