"""``extract-archive``: a tar stream becomes objects, member by member (Swift's
``handle_extract_iter``).

The request path names where the archive lands: ``/v1/a`` (each member's first path
segment is its container; files at the top level are ignored), ``/v1/a/c`` or
``/v1/a/c/prefix``. A member name loses a leading ``./`` and leading slashes, so absolute
names land under the target too; every other byte of the name (``..`` included) is part of
the object's name, as in Swift, where names are opaque and never resolved. Only regular
files become objects; directories, symlinks, hard links, devices and FIFOs are skipped
without a word, sparse files are reported as failed (their data is not a plain stream).

Each member streams from the request body straight into its object PUT (a sub-request with
the caller's token, the request's ``X-Object-Meta-*``/``X-Delete-*`` headers and the
member's ``user.mime_type``/``user.meta.*`` pax xattrs): nothing is written anywhere else.
A container is created (HEAD, then PUT on 404) the first time a member needs it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

from pocketstack.objectstore.constraints import decode_utf8
from pocketstack.objectstore.exceptions import HTTPClientDisconnect, SwiftError
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.bulk_result import BulkResult, BulkStop
from pocketstack.objectstore.proxy.middleware.subrequests import send
from pocketstack.objectstore.proxy.middleware.tarstream import (
    ENCODING,
    ERRORS,
    ArchiveError,
    ByteReader,
    Member,
    TarReader,
    decompressed,
)
from pocketstack.objectstore.proxy.pipeline import Handler, release
from pocketstack.objectstore.proxy.request import Request

SOURCE = "EA"
COPIED_HEADERS = ("x-delete-at", "x-delete-after")
XATTR_PREFIXES = ("SCHILY.xattr.user.", "LIBARCHIVE.xattr.user.")
HEADER_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def member_path(name: str, base: str) -> str | None:
    """Where a member lands below the account (``container/object``), None for a file at
    the account's top level (ignored, as Swift)."""
    path = name[2:] if name.startswith("./") else name
    path = path.lstrip("/")
    if base:
        path = f"{base}/{path}"
    return path if "/" in path else None


def xattr_headers(pax: Mapping[str, str]) -> dict[str, str]:
    """Object headers from GNU/BSD tar xattrs: ``user.mime_type`` is the Content-Type,
    ``user.meta.<name>`` is ``X-Object-Meta-<name>`` (as wire strings); names that are no
    header token and values with control characters are left out."""
    headers: dict[str, str] = {}
    for key, value in pax.items():
        prefix = next((p for p in XATTR_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            continue
        attr = key[len(prefix):]
        if attr == "mime_type":
            header = "Content-Type"
        elif attr.startswith("meta.") and HEADER_TOKEN.match(attr[5:]):
            header = "X-Object-Meta-" + attr[5:]
        else:
            continue
        if not UNSAFE_VALUE.search(value):
            headers[header] = value.encode(ENCODING, ERRORS).decode("latin-1")
    return headers


class GuardedData:
    """A member's data as a PUT body. When the archive breaks off (or the client goes away)
    inside it, the PUT sees its client gone (499) and ``error`` keeps the real cause."""

    def __init__(self, data: AsyncIterator[bytes]) -> None:
        self._data = data
        self.error: Exception | None = None

    def __aiter__(self) -> GuardedData:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._data)
        except ArchiveError as exc:
            self.error = exc
            raise HTTPClientDisconnect() from exc
        except SwiftError as exc:
            self.error = exc
            raise


class Extraction:
    """One ``extract-archive`` request (``run`` is the whole job)."""

    def __init__(self, ctx: ProxyContext, req: Request, next: Handler, result: BulkResult,
                 *, body: AsyncIterator[bytes], kind: str, acceptable: bool,
                 forwarded: dict[str, str]) -> None:
        self.ctx, self.req, self.next, self.result = ctx, req, next, result
        self.body, self.kind, self.acceptable = body, kind, acceptable
        self.forwarded = forwarded
        limits = ctx.limits
        self.max_path = limits.max_object_name_length + limits.max_container_name_length + 2
        self.accessed: set[str] = set()
        self.created = 0
        parts = req.path.split("/", 3)
        self.version, self.account = parts[1], parts[2]
        self.base = (parts[3] if len(parts) > 3 else "").rstrip("/")

    async def run(self) -> None:
        if not self.acceptable:
            raise BulkStop(406)
        if self.req.content_length is None and not self.req.is_chunked:
            raise BulkStop(411)
        reader = TarReader(ByteReader(decompressed(aiter(self.body), self.kind)))
        max_failed = self.ctx.settings.bulk_max_failed_extractions
        while True:
            member = await reader.next()
            if member is None or len(self.result.errors) >= max_failed:
                break
            if member.is_file:
                await self.extract(member, reader)
        self.result.finish(empty=not self.result.counts["Number Files Created"],
                           empty_body="Invalid Tar File: No Valid Files")

    def quoted(self, path: str) -> str:
        return quote(path.encode(ENCODING, ERRORS)[:self.max_path], safe="/")

    async def extract(self, member: Member, reader: TarReader) -> None:
        path = member_path(member.name, self.base)
        if path is None:
            return
        destination = f"/{self.version}/{self.account}/{path}"
        if decode_utf8(destination) is None:
            self.result.fail(self.quoted(path), 412)
            return
        if member.size > self.ctx.limits.max_file_size:
            self.result.fail(self.quoted(path), 413)
            return
        if member.sparse:
            self.result.fail(self.quoted(path), 400)
            return
        container = path.split("/", 1)[0]
        container_failure = None
        if container not in self.accessed:
            container_failure = await self.ensure_container(container)
        status = await self.put(member, reader, destination)
        self.accessed.add(container)
        if status // 100 == 2:
            self.result.counts["Number Files Created"] += 1
            return
        if container_failure is not None:
            self.result.fail(*container_failure)
        self.result.fail(self.quoted(path), status)
        if status == 401:
            raise BulkStop(401)

    async def ensure_container(self, container: str) -> tuple[str, int] | None:
        """Create the container unless it exists; the failure to report if that failed
        (the object PUT may still work, by an ACL), 401 ends the extraction."""
        path = f"/{self.version}/{self.account}/{container}"
        status = await self.call("HEAD", path)
        if status == 404:
            status = await self.call("PUT", path)
            if status // 100 == 2:
                self.created += 1
                limit = self.ctx.settings.bulk_max_containers_per_extraction
                if self.created > limit:
                    raise BulkStop(400, f"More than {limit} containers to create from tar.")
                return None
        elif status // 100 == 2:
            return None
        if status == 401:
            raise BulkStop(401)
        return self.quoted(path), status

    async def call(self, method: str, path: str) -> int:
        response = await send(self.next, self.req, method, path,
                              headers=self.forwarded, source=SOURCE)
        await release(response)
        return response.status

    async def put(self, member: Member, reader: TarReader, destination: str) -> int:
        headers = {**self.forwarded, "Content-Length": str(member.size)}
        for name, value in self.req.headers.items():
            lower = name.lower()
            if lower in COPIED_HEADERS or (lower.startswith("x-object-meta-")
                                           and len(lower) > len("x-object-meta-")):
                headers[name] = value
        headers.update(xattr_headers(member.pax))
        data = GuardedData(reader.data())
        response = await send(self.next, self.req, "PUT", destination, headers=headers,
                              body=data, source=SOURCE)
        await release(response)
        if data.error is not None:
            raise data.error  # the archive or the client failed, not this object
        return response.status
