"""``DELETE ?multipart-manifest=delete``: a static large object with all its segments.

As Swift's ``handle_multipart_delete`` (through its bulk deleter): the manifest is read
as the caller and everything is deleted in Swift's order, breadth first (a manifest's
direct segments, then the manifest, then the segments of each nested manifest it listed,
and that manifest); the answer is a 200 whose body reports the outcome in
the ``Accept``-ed format (``Number Deleted``, ``Number Not Found``, ``Response Status``,
``Response Body``, ``Errors``: ``[name, status]`` for each failure), with a space every
``YIELD_FREQUENCY`` seconds while it runs. An object that is not an SLO is not deleted
(``Not an SLO manifest``). Segments are deleted in order, one at a time.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pocketstack.objectstore.exceptions import (
    EXPLANATIONS,
    HTTPBadRequest,
    HTTPInternalServerError,
    HTTPNotFound,
    HTTPUnauthorized,
    SwiftError,
)
from pocketstack.objectstore.proxy.middleware.segments import call, forwarded
from pocketstack.objectstore.proxy.middleware.slo_get import is_slo
from pocketstack.objectstore.proxy.middleware.slo_manifest import report_body
from pocketstack.objectstore.proxy.middleware.slo_put import (
    YIELD_FREQUENCY,
    report_media,
    status_line,
)
from pocketstack.objectstore.proxy.pipeline import Handler, read_body, release
from pocketstack.objectstore.proxy.request import Request, Response

if TYPE_CHECKING:
    from pocketstack.objectstore.proxy.middleware.slo import StaticLargeObject

MAX_FAILED_DELETES = 1000
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass
class Doomed:
    """One object to delete (``/container/object``), or why it cannot be."""

    name: str
    sub_slo: bool = False
    error: tuple[int, str] | None = None
    version_id: str | None = None
    """The manifest's own version (``?version-id``), for the top manifest only."""

    @property
    def query(self) -> dict[str, str]:
        return {} if self.version_id is None else {"version-id": self.version_id}


@dataclass
class Tally:
    deleted: int = 0
    not_found: int = 0
    failed_status: int = 400
    errors: list[list[str]] = field(default_factory=list)


async def delete_manifest(slo: StaticLargeObject, req: Request, next: Handler) -> Response:
    """As eventlet sends Swift's answer, the head goes out with the first byte of the
    body: the report when the work is done within ``YIELD_FREQUENCY`` seconds (a client
    that reads only the status then knows the segments are gone), else the first space of
    the heartbeat."""
    media = report_media(req)
    task = asyncio.ensure_future(_delete(slo, req, next))
    try:
        done, _ = await asyncio.wait({task}, timeout=YIELD_FREQUENCY)
    except asyncio.CancelledError:
        task.cancel()
        raise
    headers = {"Content-Type": media}
    if done:
        fields, errors = task.result()
        return Response(200, headers, report_body(media, fields, errors, "delete"))
    first = XML_DECLARATION if media.endswith("/xml") else b" "
    return Response(200, headers, _beating(task, media, first))


async def _beating(task: asyncio.Future[Any], media: str, first: bytes
                   ) -> AsyncIterator[bytes]:
    """``first``, then a space every ``YIELD_FREQUENCY`` seconds until ``task`` is done,
    then its report."""
    try:
        yield first
        while not task.done():
            await asyncio.wait({task}, timeout=YIELD_FREQUENCY)
            if not task.done():
                yield b" "
        fields, errors = task.result()
    finally:
        if not task.done():
            task.cancel()
    yield b"\r\n\r\n" + report_body(media, fields, errors, "delete")


async def _delete(slo: StaticLargeObject, req: Request, next: Handler
                  ) -> tuple[dict[str, Any], list[list[str]]]:
    tally = Tally()
    fields: dict[str, Any] = {"Response Status": "200 OK", "Response Body": ""}
    try:
        async for doomed in _doomed(slo, req, next):
            await _delete_one(req, next, doomed, tally)
            if len(tally.errors) >= MAX_FAILED_DELETES:
                raise HTTPBadRequest("Max delete failures exceeded")
        if tally.errors:
            fields["Response Status"] = status_line(tally.failed_status)
        elif not (tally.deleted or tally.not_found):
            fields.update({"Response Status": status_line(400),
                           "Response Body": "Invalid bulk delete."})
    except SwiftError as exc:
        fields.update({"Response Status": status_line(exc.status),
                       "Response Body": exc.body or ""})
    fields.update({"Number Deleted": tally.deleted, "Number Not Found": tally.not_found})
    return fields, tally.errors


async def _delete_one(req: Request, next: Handler, doomed: Doomed, tally: Tally) -> None:
    if doomed.error is not None:
        if doomed.error[0] == 404:
            tally.not_found += 1
        else:
            tally.errors.append([quote(doomed.name), doomed.error[1]])
        return
    path = f"/{req.version}/{req.account}/{doomed.name.lstrip('/')}"
    response = await call(next, req.subrequest("DELETE", path, headers=forwarded(req),
                                               query=doomed.query, source="SLO"))
    await release(response)
    if response.status // 100 == 2:
        tally.deleted += 1
    elif response.status == 404:
        tally.not_found += 1
    else:
        if response.status // 100 == 5:
            tally.failed_status = 502
        tally.errors.append([quote(doomed.name), status_line(response.status)])


async def _doomed(slo: StaticLargeObject, req: Request, next: Handler
                  ) -> AsyncIterator[Doomed]:
    """Every segment and manifest, in Swift's order (``get_segments_to_delete_iter``)."""
    queue = deque([Doomed(f"/{req.container}/{req.obj}", sub_slo=True,
                          version_id=req.query.get("version-id"))])
    limit = slo.ctx.settings.slo_max_manifest_segments * 10
    while queue:
        if len(queue) > limit:
            raise HTTPBadRequest("Too many buffered slo segments to delete.")
        doomed = queue.popleft()
        if not doomed.sub_slo:
            yield doomed
            continue
        try:
            queue.extend(await _segments_of(slo, req, next, doomed))
        except SwiftError as exc:
            doomed.error = (exc.status, exc.body or EXPLANATIONS.get(exc.status, ("", ""))[0])
        doomed.sub_slo = False
        queue.append(doomed)


async def _segments_of(slo: StaticLargeObject, req: Request, next: Handler, doomed: Doomed
                       ) -> list[Doomed]:
    path = f"/{req.version}/{req.account}/{doomed.name.lstrip('/')}"
    sub = req.subrequest("GET", path, headers=forwarded(req),
                         query={"multipart-manifest": "get", **doomed.query}, source="SLO")
    response = await call(next, sub)
    if response.status // 100 == 2 and is_slo(response.headers):
        try:
            items = json.loads(await read_body(response, slo.manifest_read_limit))
            return [Doomed(str(i["name"]), sub_slo=bool(i.get("sub_slo")))
                    for i in items if "data" not in i]
        except (ValueError, KeyError, TypeError) as exc:
            raise HTTPInternalServerError("Unable to load SLO manifest") from exc
    await release(response)
    if response.status // 100 == 2:
        raise HTTPBadRequest("Not an SLO manifest")
    if response.status == 404:
        raise HTTPNotFound("SLO manifest not found")
    if response.status == 401:
        raise HTTPUnauthorized("401 Unauthorized")
    raise HTTPInternalServerError("Unable to load SLO manifest or segment.")
