"""TempURL: a signed URL grants one method on one object (or on objects under a prefix)
until it expires, without a token (Swift's ``tempurl`` middleware, pre-auth).

A TempURL carries ``temp_url_sig`` and ``temp_url_expires`` (Unix time or
``%Y-%m-%dT%H:%M:%SZ``), optionally ``temp_url_prefix`` (the signature covers
``prefix:/v1/a/c/<prefix>``), ``temp_url_ip_range`` (the signature starts with
``ip=<range>``), ``filename`` and ``inline``. The signature is checked against the account's
and the container's keys (``signing``); a HEAD is allowed by a signature for HEAD, GET, POST
or PUT. Every failure is ``401 Unauthorized: Temp URL invalid``.

A valid TempURL authorizes the request by itself (``req.authorize``): an account key grants
that account, a container key only that container — which also bounds what the feature
sub-requests of the request (large object segments, for one) may reach. Before the request
goes on, headers that would let a PUT or POST point elsewhere (``X-Object-Manifest``,
``X-Symlink-Target``, ``X-Copy-From``) are refused (400), ``X-Timestamp`` and
``X-Open-Expired`` are dropped, and the query is reduced to the TempURL's own parameters.
Responses lose ``X-Object-Meta-*`` but ``X-Object-Meta-Public-*``; a successful GET or HEAD
gets Swift's ``Content-Disposition`` and an ``Expires`` header.
"""

from __future__ import annotations

import calendar
import contextlib
import ipaddress
import posixpath
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.datastructures import Headers

from pocketstack.objectstore.exceptions import HTTPBadRequest, HTTPUnauthorized, SwiftError
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.signing import (
    KeyScope,
    allowed_digests,
    authorize_within,
    hmac_hex,
    parse_signature,
    same_signature,
    signing_keys,
    tempurl_message,
)
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, release
from pocketstack.objectstore.proxy.request import Request, Response

# Headers a TempURL PUT/POST may not carry: each would make the object point at data the
# signature does not cover.
DISALLOWED_INCOMING_HEADERS = ("x-object-manifest", "x-symlink-target", "x-copy-from")
INCOMING_REMOVE_HEADERS = ("x-timestamp", "x-open-expired")
INCOMING_ALLOW_HEADERS: tuple[str, ...] = ()
OUTGOING_REMOVE_HEADERS = ("x-object-meta-*",)
OUTGOING_ALLOW_HEADERS = ("x-object-meta-public-*",)
EXPIRES_ISO8601_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
INVALID = "401 Unauthorized: Temp URL invalid\n"
HTML = "text/html; charset=UTF-8"
# A HEAD may use a signature made for any of these methods.
HEAD_SIGNED_AS = ("HEAD", "GET", "POST", "PUT")


@dataclass(frozen=True)
class TempUrlParams:
    """The TempURL parameters of a query (the first value of each, as Swift reads them)."""

    sig: str | None = None
    expires: str | None = None
    prefix: str | None = None
    filename: str | None = None
    inline: bool = False
    ip_range: str | None = None

    @classmethod
    def from_query(cls, raw: bytes) -> TempUrlParams:
        first: dict[str, str] = {}
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True,
                                     encoding="utf-8", errors="replace"):
            first.setdefault(name, value)
        return cls(sig=first.get("temp_url_sig"), expires=first.get("temp_url_expires"),
                   prefix=first.get("temp_url_prefix"), filename=first.get("filename"),
                   inline="inline" in first, ip_range=first.get("temp_url_ip_range"))


def expiry_time(value: str | None, now: float) -> int | None:
    """``temp_url_expires`` as Unix time: None when absent, 0 when unreadable or past
    (Swift's ``normalize_temp_url_expires``)."""
    if value is None:
        return None
    try:
        expires = int(value)
    except ValueError:
        try:
            expires = calendar.timegm(time.strptime(value, EXPIRES_ISO8601_FORMAT))
        except ValueError:
            expires = 0
    return 0 if expires < now else expires


class HeaderFilter:
    """Swift's remove/allow header lists: names, or prefixes ending in ``*``; an allowed
    name is never removed."""

    def __init__(self, remove: tuple[str, ...], allow: tuple[str, ...]) -> None:
        self._remove = [p.lower() for p in remove]
        self._allow = [p.lower() for p in allow]

    @staticmethod
    def _matches(patterns: list[str], name: str) -> bool:
        return any(name.startswith(p[:-1]) if p.endswith("*") else name == p
                   for p in patterns)

    def removes(self, name: str) -> bool:
        lower = name.lower()
        return not self._matches(self._allow, lower) and self._matches(self._remove, lower)


@dataclass(frozen=True)
class Target:
    """What a TempURL names: ``obj`` is empty for a container root (staticweb only)."""

    account: str
    container: str
    obj: str

    def signed_path(self, prefix: str | None) -> str | None:
        """The path the signature covers; None when the object is outside the prefix."""
        base = f"/v1/{self.account}/{self.container}/"
        if prefix is None:
            return base + self.obj
        if not self.obj.startswith(prefix):
            return None
        return f"prefix:{base}{prefix}"


@dataclass(frozen=True)
class Grant:
    """A verified TempURL: what it names, the key's scope, its expiry and signature."""

    target: Target
    scope: KeyScope
    expires: int
    signature: str


def disposition(kind: str, filename: str) -> str:
    """Swift's ``Content-Disposition`` with an RFC 6266 ``filename*``."""
    raw = filename.encode("utf-8", "surrogateescape")
    return f"{kind}; filename=\"{quote(raw, safe=' /')}\"; filename*=UTF-8''{quote(raw)}"


def _invalid(req: Request) -> SwiftError:
    return HTTPUnauthorized(None if req.method == "HEAD" else INVALID, content_type=HTML)


def _pop_header(headers: dict[str, str], name: str) -> str | None:
    found = None
    for key in [k for k in headers if k.lower() == name]:
        found = headers.pop(key)
    return found


def _ip_allowed(ip_range: str, client: str) -> bool:
    try:
        return ipaddress.ip_address(client) in ipaddress.ip_network(ip_range)
    except ValueError:
        return False


class TempURL(Middleware):
    name = "tempurl"

    def __init__(self, ctx: ProxyContext) -> None:
        super().__init__(ctx)
        self.methods = tuple(m.upper() for m in ctx.settings.tempurl_methods)
        self.digests = allowed_digests(ctx.settings.tempurl_allowed_digests)
        self.incoming = HeaderFilter(INCOMING_REMOVE_HEADERS, INCOMING_ALLOW_HEADERS)
        self.outgoing = HeaderFilter(OUTGOING_REMOVE_HEADERS, OUTGOING_ALLOW_HEADERS)

    def info(self) -> dict[str, Any]:
        return {"methods": list(self.methods),
                "incoming_remove_headers": list(INCOMING_REMOVE_HEADERS),
                "incoming_allow_headers": list(INCOMING_ALLOW_HEADERS),
                "outgoing_remove_headers": list(OUTGOING_REMOVE_HEADERS),
                "outgoing_allow_headers": list(OUTGOING_ALLOW_HEADERS),
                **self.digests.info()}

    def applies(self, req: Request) -> bool:
        raw = req.scope.get("query_string", b"")  # "%": a parameter name may be escaped
        return req.method != "OPTIONS" and (b"temp_url_" in raw or b"%" in raw)

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.method == "OPTIONS":
            return await next(req)
        params = TempUrlParams.from_query(req.scope.get("query_string", b""))
        expires = expiry_time(params.expires, time.time())
        if params.sig is None and expires is None:
            return await next(req)
        grant = await self.verify(req, params, expires)
        self._refuse_disallowed_headers(req)
        self._rewrite(req, params, grant)
        response = await next(req)
        return await self._finish(req, response, params, grant)

    async def verify(self, req: Request, params: TempUrlParams, expires: int | None
                     ) -> Grant:
        """The grant of a valid TempURL; 401 for anything else."""
        if not params.sig or not expires:
            raise _invalid(req)
        try:
            digest, signature = parse_signature(params.sig)
        except ValueError as exc:
            raise _invalid(req) from exc
        if digest not in self.digests.allowed:
            raise _invalid(req)
        target = self._target(req, root=req.method in ("GET", "HEAD") and params.prefix == "")
        if target is None:
            raise _invalid(req)
        if params.ip_range and not _ip_allowed(params.ip_range, req.remote_addr):
            raise _invalid(req)
        keys = await signing_keys(self.ctx, target.account, target.container)
        path = target.signed_path(params.prefix)
        if not keys or path is None:
            raise _invalid(req)
        methods = HEAD_SIGNED_AS if req.method == "HEAD" else (req.method,)
        for method in methods:
            message = tempurl_message(method, expires, path, params.ip_range)
            for key in keys:
                if same_signature(signature, hmac_hex(key.secret, message, digest)):
                    return Grant(target, key.scope, expires, signature)
        raise _invalid(req)

    def _target(self, req: Request, *, root: bool) -> Target | None:
        """The object (or, with ``root``, container) a TempURL may name: one of the
        configured methods on a ``/v1`` path."""
        if req.method not in self.methods or req.version != "v1":
            return None
        if req.account is None or req.container is None:
            return None
        obj = req.obj or ""
        if not obj.strip("/") and not root:
            return None
        return Target(req.account, req.container, obj)

    @staticmethod
    def _refuse_disallowed_headers(req: Request) -> None:
        if req.method in ("GET", "HEAD", "OPTIONS"):
            return
        for name in req.headers:
            if name.lower() in DISALLOWED_INCOMING_HEADERS:
                shown = name.title()
                raise HTTPBadRequest(f"The header {shown!r} is not allowed in this tempurl",
                                     content_type=HTML)

    def _rewrite(self, req: Request, params: TempUrlParams, grant: Grant) -> None:
        """Drop the configured incoming headers, keep only the TempURL's own query
        parameters, and authorize the request within the key's scope."""
        query = {"temp_url_sig": grant.signature, "temp_url_expires": params.expires or ""}
        if params.prefix is not None:
            query["temp_url_prefix"] = params.prefix
        if params.filename:
            query["filename"] = params.filename
        if params.inline:
            query["inline"] = ""  # staticweb keeps it on the URLs it generates
        # in place: the server marks a body that breaks off in this very scope (http1)
        req.scope["headers"] = [(k, v) for k, v in req.scope["headers"]
                                if not self.incoming.removes(k.decode("latin-1"))]
        req.scope["query_string"] = urlencode(query).encode("ascii")
        req.headers = Headers(scope=req.scope)
        req.query = query
        target = grant.target
        req.authorize = authorize_within(
            target.account, target.container if grant.scope is KeyScope.CONTAINER else None)

    async def _finish(self, req: Request, response: Response, params: TempUrlParams,
                      grant: Grant) -> Response:
        response.headers = {k: v for k, v in response.headers.items()
                            if not self.outgoing.removes(k)}
        if req.method not in ("GET", "HEAD") or not 200 <= response.status < 300:
            return response
        inline = params.inline
        generator = _pop_header(dict(response.headers), "x-backend-content-generator")
        if generator == "staticweb":
            inline = True
        elif not grant.target.obj:  # a container root is only for staticweb's pages
            await release(response)
            raise _invalid(req)
        existing = _pop_header(response.headers, "content-disposition")
        if inline:
            value = disposition("inline", params.filename) if params.filename else "inline"
        elif params.filename:
            value = disposition("attachment", params.filename)
        elif existing:
            value = existing
        else:
            value = disposition("attachment", posixpath.basename(req.path.rstrip("/")))
        response.headers["Content-Disposition"] = value.replace("\n", "%0A")
        _pop_header(response.headers, "expires")
        # (no Expires header for a date past what the platform can print)
        with contextlib.suppress(OverflowError, OSError, ValueError):
            response.headers["Expires"] = formatdate(grant.expires, usegmt=True)
        return response
