"""What a symlink is made of, read from an object's system metadata, and how to reach its
target (the symlink middleware's vocabulary; object versioning writes links too)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from pocketstack.objectstore.exceptions import HTTPConflict, SwiftError
from pocketstack.objectstore.proxy import checks
from pocketstack.objectstore.proxy.middleware import rewrite
from pocketstack.objectstore.proxy.middleware.rewrite import header
from pocketstack.objectstore.proxy.pipeline import Handler, release
from pocketstack.objectstore.proxy.request import Request, Response

MD5_OF_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"
TARGET = "X-Object-Sysmeta-Symlink-Target"
TARGET_ACCOUNT = "X-Object-Sysmeta-Symlink-Target-Account"
TARGET_ETAG = "X-Object-Sysmeta-Symlink-Target-Etag"
TARGET_BYTES = "X-Object-Sysmeta-Symlink-Target-Bytes"
SYMLOOP_EXTEND = "X-Object-Sysmeta-Symloop-Extend"
OVERRIDE_ETAG = "X-Object-Sysmeta-Container-Update-Override-Etag"
ALLOW_RESERVED = "X-Object-Sysmeta-Allow-Reserved-Names"
ObjectPath = tuple[str, str, str]
"""(account, container, object), decoded."""


@dataclass(frozen=True)
class Link:
    """A symlink's target: ``target`` is ``<container>/<object>`` and ``account`` the
    account (None: the link's own), both percent-encoded as Swift stores them."""

    target: str
    account: str | None = None
    etag: str | None = None
    bytes: str | None = None
    extends_loop: bool = False
    reserved: bool = False

    def path(self, account: str) -> ObjectPath:
        """The target as (account, container, object); ``account``: the link's own."""
        container, _, obj = unquote(self.target).partition("/")
        return (unquote(self.account) if self.account else account), container, obj

    def location(self, version: str, account: str) -> str:
        """The target's path as ``Content-Location`` and ``Location`` show it."""
        return f"/{version}/{self.account or quote(account.encode())}/{self.target}"

    def subrequest(self, origin: Request, method: str, *, account: str,
                   headers: Mapping[str, str] | None = None,
                   query: Mapping[str, str] | None = None) -> Request:
        """``origin`` (the client's request: its identity and authorization, never a
        previous hop's) sent on to the target of this link, which lives in ``account``;
        pre-authorized into the reserved namespace when the link says so (the link's own
        read was authorized)."""
        path = rewrite.object_path(origin.version, *self.path(account))
        sub = origin.subrequest(method, path, headers=headers, query=query, source="SYM")
        return rewrite.preauthorized(sub, reserved=True) if self.reserved else sub

    def sysmeta(self) -> dict[str, str]:
        values = {TARGET: self.target}
        if self.account:
            values[TARGET_ACCOUNT] = self.account
        if self.etag:
            values[TARGET_ETAG] = self.etag
        return values

    def override_etag(self, base: str | None, target_bytes: str | None) -> str:
        """The listing etag of the link: ``base`` (the empty body's md5, maybe with other
        parameters) plus the target, as Swift's symlink ``handle_put`` builds it."""
        parts = [base or MD5_OF_EMPTY, f"symlink_target={self.target}"]
        if self.account:
            parts.append(f"symlink_target_account={self.account}")
        if self.etag:
            parts += [f"symlink_target_etag={self.etag}",
                      f"symlink_target_bytes={target_bytes or 0}"]
        return "; ".join(parts)


def link_of(response: Response) -> Link | None:
    """The link a response (or the headers of an error) is about, if it is one."""
    headers = response.headers
    target = header(headers, TARGET)
    if not target:
        return None
    return Link(target=target, account=header(headers, TARGET_ACCOUNT) or None,
                etag=header(headers, TARGET_ETAG) or None,
                bytes=header(headers, TARGET_BYTES),
                extends_loop=checks.true(header(headers, SYMLOOP_EXTEND)),
                reserved=checks.true(header(headers, ALLOW_RESERVED)))


@dataclass(frozen=True)
class Resolution:
    """Where a copy source leads: the object at the end of its links."""

    path: ObjectPath
    reserved: bool = False


async def resolve_copy_source(req: Request, next: Handler, source: ObjectPath, *,
                              limit: int) -> Resolution:
    """Follow the links from a copy's source to the object it copies (HEAD of each, with
    the caller's rights; static links checked as for a GET)."""
    head = req.subrequest("HEAD", rewrite.object_path(req.version, *source),
                          query={"symlink": "get"}, source="SYM")
    response = await head_or_link(head, next)
    path, reserved, hops = source, False, 0
    while (link := link_of(response)) is not None:
        await release(response)
        if hops >= limit and not link.extends_loop:
            raise too_many(limit)
        hops += 0 if link.extends_loop else 1
        location = link.location(req.version, path[0])
        head = link.subrequest(req, "HEAD", account=path[0], query={"symlink": "get"})
        path, reserved = link.path(path[0]), link.reserved
        response = await head_or_link(head, next, location=location)
        check_etag(link, response, location)
    await release(response)
    return Resolution(path=path, reserved=reserved)


async def head_or_link(req: Request, next: Handler, *, location: str | None = None
                       ) -> Response:
    """``next(req)``; an error that names a link (a Range past a zero-byte link: 416)
    counts as the link it names; other errors get ``Content-Location``."""
    try:
        return await next(req)
    except SwiftError as exc:
        if header(exc.headers, TARGET):
            return Response(exc.status, dict(exc.headers))
        if location is not None:
            exc.headers["Content-Location"] = location
        raise


def check_etag(link: Link, response: Response, location: str) -> None:
    """409 when a static link's ETag is not the one of what it points to."""
    if not link.etag:
        return
    found = link_of(response)
    if found is not None:
        if (found.etag or header(response.headers, "etag")) != link.etag:
            raise HTTPConflict("X-Symlink-Target-Etag headers do not match",
                               content_type="text/plain",
                               headers={"Content-Location": location})
        return
    etag = header(response.headers, "etag")
    if etag and etag != link.etag:
        raise HTTPConflict(f"Object Etag {etag!r} does not match X-Symlink-Target-Etag "
                           f"header {link.etag!r}", content_type="text/plain",
                           headers={"Content-Location": location})


def too_many(limit: int) -> SwiftError:
    return HTTPConflict(f"Too many levels of symbolic links, maximum allowed is {limit}",
                        content_type="text/plain")
