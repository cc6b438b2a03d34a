"""``bulk-delete``: many paths deleted in one request (Swift's ``handle_delete_iter``).

The body is ``text/plain``: one URL-encoded ``/container/object`` or ``/container`` per
line, at most ``bulk_max_deletes_per_request`` of them (413 otherwise), each relative to
the request's account whatever the request path is. Objects go first, then containers
(which must be empty by then), ``DELETE_CONCURRENCY`` at a time, each a DELETE sub-request
with the caller's token. 2xx counts as deleted, 404 as not found; anything else is an error
(``bulk_max_failed_deletes`` of them end the request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from urllib.parse import quote, unquote_to_bytes

from pocketstack.objectstore.constraints import decode_utf8
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.bulk_result import BulkResult, BulkStop
from pocketstack.objectstore.proxy.middleware.subrequests import send
from pocketstack.objectstore.proxy.pipeline import Handler, release
from pocketstack.objectstore.proxy.request import Request

SOURCE = "BD"
DELETE_CONCURRENCY = 2  # Swift's ``delete_concurrency`` default


def decode_name(line: bytes) -> str:
    """One line of the body as a name: stripped, percent-decoded, UTF-8 (invalid bytes kept
    as surrogates, for the UTF-8 check to refuse)."""
    return unquote_to_bytes(line.strip()).decode("utf-8", "surrogateescape")


def is_object_path(name: str) -> bool:
    return "/" in name.strip("/")


class Deletion:
    """One ``bulk-delete`` request (``run`` is the whole job)."""

    def __init__(self, ctx: ProxyContext, req: Request, next: Handler, result: BulkResult,
                 *, body: AsyncIterator[bytes], acceptable: bool,
                 forwarded: dict[str, str]) -> None:
        self.ctx, self.req, self.next, self.result = ctx, req, next, result
        self.body, self.acceptable, self.forwarded = body, acceptable, forwarded
        limits = ctx.limits
        self.max_path = limits.max_object_name_length + limits.max_container_name_length + 2
        parts = req.path.split("/", 3)
        self.version, self.account = parts[1], parts[2]

    async def run(self) -> None:
        if not self.acceptable:
            raise BulkStop(406)
        content_type = self.req.headers.get("content-type")
        if content_type and not content_type.startswith("text/plain"):
            raise BulkStop(406)
        names = await self.read_names()
        objects = [n for n in names if n and is_object_path(n)]
        containers = [n for n in names if n and not is_object_path(n)]
        for group in (objects, containers):
            await self.delete_group(group)
        counts = self.result.counts
        self.result.finish(empty=not (counts["Number Deleted"] or counts["Number Not Found"]),
                           empty_body="Invalid bulk delete.")

    async def read_names(self) -> list[str]:
        """The body's names (411 without a length, 413 past the limit, 400 for a line
        longer than any path could be)."""
        if self.req.content_length is None and not self.req.is_chunked:
            raise BulkStop(411)
        limit = self.ctx.settings.bulk_max_deletes_per_request
        names: list[str] = []
        rest = b""
        async for chunk in self.body:
            *lines, rest = (rest + chunk).split(b"\n")
            names.extend(decode_name(line) for line in lines)
            if len(names) > limit:
                raise BulkStop(413, f"Maximum Bulk Deletes: {limit} per request")
            if max(map(len, [rest, *lines])) > self.max_path * 2:
                raise BulkStop(400, "Invalid File Name")
        last = decode_name(rest)
        if last:
            names.append(last)
        if len(names) > limit:
            raise BulkStop(413, f"Maximum Bulk Deletes: {limit} per request")
        return names

    async def delete_group(self, names: Sequence[str]) -> None:
        max_failed = self.ctx.settings.bulk_max_failed_deletes
        for start in range(0, len(names), DELETE_CONCURRENCY):
            batch = names[start:start + DELETE_CONCURRENCY]
            statuses = await asyncio.gather(*(self.delete(name) for name in batch))
            for name, status in zip(batch, statuses, strict=True):
                self.count(name, status)
            if len(self.result.errors) >= max_failed:
                raise BulkStop(400, "Max delete failures exceeded")

    async def delete(self, name: str) -> int:
        path = f"/{self.version}/{self.account}/{name.lstrip('/')}"
        if decode_utf8(path) is None:
            return 412
        response = await send(self.next, self.req, "DELETE", path,
                              headers=self.forwarded,
                              source=SOURCE)
        await release(response)
        return response.status

    def count(self, name: str, status: int) -> None:
        counts = self.result.counts
        if status // 100 == 2:
            counts["Number Deleted"] += 1
        elif status == 404:
            counts["Number Not Found"] += 1
        else:
            self.result.fail(quote(name.encode("utf-8", "surrogateescape"), safe="/"), status)
