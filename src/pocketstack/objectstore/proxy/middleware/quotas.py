"""Container and account quotas (Swift's ``container_quotas`` and ``account_quotas``,
post-auth, in that order).

**Container quotas** are container metadata anyone who may POST the container sets:
``X-Container-Meta-Quota-Bytes`` and ``-Quota-Count`` (digits, else 400 ``Invalid bytes
quota.`` / ``Invalid count quota.``). An object PUT that would take the container past
either gets 413 ``Upload exceeds quota.``.

**Account quotas** are system metadata only a reseller admin (role ``ResellerAdmin``) sets,
on an account POST: ``X-Account-Quota-Bytes``, ``-Quota-Count`` and, per storage policy,
``X-Account-Quota-Bytes-Policy-<name>`` / ``-Count-Policy-<name>`` (``X-Remove-...`` or an
empty value removes one; the legacy ``X-Account-Meta-Quota-Bytes`` counts as
``X-Account-Quota-Bytes``). Anyone else sending one gets 403, the owner included; a
non-digit value is 400. They are stored as ``X-Account-Sysmeta-Quota-*`` (per policy by
index) and shown on account HEAD/GET under their public names. An object PUT that would take
the account (or the policy's share of it) past one gets 413 ``Upload exceeds quota.`` (``...
policy quota.``); a reseller admin's own uploads are not limited.

"Would take past" is Swift's arithmetic: current usage plus the request's
``Content-Length`` (0 when chunked: a chunked upload is refused only once the quota is
already reached), and one more object. A server-side copy (``COPY`` or ``X-Copy-From``)
counts the source's size (one HEAD of it) against the destination. Usage is the container's
own count (read fresh when the container has a quota) and the account's, which the
container reporter updates within a second or so, as Swift's is eventually consistent.

Both answer 413 only after the request's own authorization passed (the deferred
``authorize`` is wrapped), so a caller who may not write there still gets 401/403 and
learns nothing about the container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers

from pocketstack.objectstore.constraints import decode_utf8
from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPForbidden,
    HTTPRequestEntityTooLarge,
    SwiftError,
)
from pocketstack.objectstore.proxy.controllers.base import account_info, container_info
from pocketstack.objectstore.proxy.middleware.deferred import refuse_after_authorize
from pocketstack.objectstore.proxy.middleware.subrequests import get_response, send
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, release
from pocketstack.objectstore.proxy.request import Request, Response

TARGET_STATE = "quota_target"  # req.state: the object write both quota filters look at
QUOTA_TYPES = ("Quota-Bytes", "Quota-Count")
LEGACY = (("x-account-meta-quota-bytes", "x-account-quota-bytes"),
          ("x-remove-account-meta-quota-bytes", "x-remove-account-quota-bytes"))
HTML = "text/html; charset=UTF-8"
QUOTA_KEYS = ("x-account-sysmeta-quota-", "x-account-meta-quota-bytes")


@dataclass
class WriteTarget:
    """Where an object write lands and how many bytes it adds (for a copy, the source's
    size, asked for only when a quota needs it)."""

    account: str
    container: str
    length: int | None
    source: tuple[str, str, str] | None = None  # a copy's (account, container, object)

    async def size(self, req: Request, next: Handler) -> int:
        if self.length is None:
            self.length = 0
            if self.source is not None:
                self.length = await _source_length(req, next, *self.source)
        return self.length


def quota_value(metadata: Mapping[str, str], key: str) -> int | None:
    """A stored quota (``key`` lower-case), None when unset or not a number."""
    for name, value in metadata.items():
        if name.lower() == key:
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


def refuse_write(req: Request, target: WriteTarget, message: str) -> None:
    """413 for the object write to ``target``, once authorization allowed it."""

    def applies(checked: Request) -> bool:
        return checked.method == "PUT" and checked.obj is not None and \
            (checked.account, checked.container) == (target.account, target.container)

    refuse_after_authorize(req, HTTPRequestEntityTooLarge(message, content_type=HTML), applies)


def set_headers(req: Request, values: Mapping[str, str]) -> None:
    """Add (or replace) request headers, as wire strings."""
    names = {name.lower().encode("latin-1") for name in values}
    headers = [(k, v) for k, v in req.scope["headers"] if k not in names]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in values.items()]
    req.scope = {**req.scope, "headers": headers}
    req.headers = Headers(scope=req.scope)


def _copy_path(value: str) -> tuple[str, str] | None:
    """(container, object) of a ``Destination``/``X-Copy-From`` header, None if malformed
    (the core answers for it)."""
    path = decode_utf8(unquote_to_bytes(value.encode("latin-1")))
    if path is None:
        return None
    parts = path.lstrip("/").split("/", 1)
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def _account_header(req: Request, name: str) -> str | None:
    value = req.headers.get(name)
    if value is None:
        return req.account
    return decode_utf8(unquote_to_bytes(value.encode("latin-1")))


async def write_target(req: Request, next: Handler) -> WriteTarget | None:
    """The object write ``req`` makes (PUT, PUT + ``X-Copy-From``, COPY), else None;
    computed once per request."""
    if TARGET_STATE not in req.state:
        req.state[TARGET_STATE] = await _find_target(req, next)
    target: WriteTarget | None = req.state[TARGET_STATE]
    return target


async def _find_target(req: Request, next: Handler) -> WriteTarget | None:
    if req.obj is None or req.account is None or req.container is None:
        return None
    if req.method == "COPY" and req.headers.get("destination"):
        dest = _copy_path(req.headers["destination"])
        account = _account_header(req, "destination-account")
        if dest is None or account is None:
            return None
        return WriteTarget(account, dest[0], None, (req.account, req.container, req.obj))
    if req.method != "PUT":
        return None
    if "x-copy-from" not in req.headers:
        try:
            return WriteTarget(req.account, req.container, req.content_length or 0)
        except SwiftError:
            return None  # a bad Content-Length: the core answers 400
    source = _copy_path(req.headers["x-copy-from"])
    account = _account_header(req, "x-copy-from-account")
    if source is None or account is None:
        return None
    return WriteTarget(req.account, req.container, None, (account, *source))


async def _source_length(req: Request, next: Handler, account: str, container: str,
                         obj: str) -> int:
    """The size of a copy's source (HEAD as the caller), 0 when it cannot be had."""
    response = await send(next, req, "HEAD", f"/{req.version}/{account}/{container}/{obj}",
                          headers=_forwarded(req), source="QT")
    await release(response)
    if response.status // 100 != 2:
        return 0
    if response.content_length is not None:
        return response.content_length
    length = {k.lower(): v for k, v in response.headers.items()}.get("content-length", "")
    return int(length) if length.isdigit() else 0


def _forwarded(req: Request) -> dict[str, str]:
    return {name: req.headers[name] for name in ("x-newest",) if name in req.headers}


class ContainerQuotas(Middleware):
    name = "container_quotas"

    def info(self) -> dict[str, Any]:
        return {}

    def applies(self, req: Request) -> bool:
        if req.container is None:
            return False
        return req.method in ("PUT", "POST") if req.obj is None else req.method in ("PUT", "COPY")

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.container is None:
            return await next(req)
        if req.obj is None:
            if req.method in ("PUT", "POST"):
                self.validate(req)
            return await next(req)
        target = await write_target(req, next)
        if target is not None and await self.exceeded(req, next, target):
            refuse_write(req, target, "Upload exceeds quota.")
        return await next(req)

    @staticmethod
    def validate(req: Request) -> None:
        for header, what in (("x-container-meta-quota-bytes", "bytes"),
                             ("x-container-meta-quota-count", "count")):
            value = req.headers.get(header)
            if value and not value.isdigit():
                raise HTTPBadRequest(f"Invalid {what} quota.", content_type=HTML)

    async def exceeded(self, req: Request, next: Handler, target: WriteTarget) -> bool:
        info = await container_info(self.ctx, target.account, target.container)
        if info is None:
            return False  # the core answers 404
        quota_bytes = quota_value(info.metadata, "x-container-meta-quota-bytes")
        quota_count = quota_value(info.metadata, "x-container-meta-quota-count")
        if quota_bytes is None and quota_count is None:
            return False
        usage = await container_usage(req, next, target)
        if usage is None:
            return False
        used, count = usage
        length = await target.size(req, next)
        return (quota_bytes is not None and quota_bytes < used + length) \
            or (quota_count is not None and quota_count < count + 1)


async def _pre_authorized(_: Request) -> None:
    return None


async def container_usage(req: Request, next: Handler, target: WriteTarget
                          ) -> tuple[int, int] | None:
    """(bytes used, object count) of the target container as a HEAD through the rest of
    the pipeline tells them, pre-authorized (Swift's ``get_container_info``): current
    figures, and what later middlewares add (object versioning counts the versions)."""
    sub = req.subrequest("HEAD", f"/{req.version}/{target.account}/{target.container}",
                         source="CQ")
    sub.authorize = _pre_authorized
    response = await get_response(next, sub)
    await release(response)
    if response.status // 100 != 2:
        return None
    headers = {k.lower(): v for k, v in response.headers.items()}
    used = headers.get("x-container-bytes-used", "0")
    count = headers.get("x-container-object-count", "0")
    return (int(used) if used.isdigit() else 0, int(count) if count.isdigit() else 0)


class AccountQuotas(Middleware):
    name = "account_quotas"

    def info(self) -> dict[str, Any]:
        return {}

    def applies(self, req: Request) -> bool:
        if req.account is None:
            return False
        return req.container is None or req.obj is not None and req.method in ("PUT", "COPY")

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.account is None:
            return await next(req)
        if req.container is None:
            return await self.handle_account(req, next)
        target = await write_target(req, next)
        if target is None or self.is_reseller(req):
            return await next(req)
        message = await self.exceeded(req, next, target)
        if message is not None:
            refuse_write(req, target, message)
        return await next(req)

    def is_reseller(self, req: Request) -> bool:
        return req.auth is not None and req.auth.has_role(self.ctx.settings.reseller_admin_role)

    async def handle_account(self, req: Request, next: Handler) -> Response:
        if req.method in ("POST", "PUT"):
            self.translate(req)
        response = await next(req)
        if req.method in ("GET", "HEAD") and response.status // 100 == 2:
            info = await account_info(self.ctx, req.account or "")
            if info is not None:
                response.headers.update(self.shown(info.metadata))
        return response

    def requested(self, req: Request) -> dict[str, str | None]:
        """sysmeta header -> the quota a request sets ("" removes, None: not named)."""
        headers = {k.lower(): v for k, v in req.headers.items()}
        for legacy, current in LEGACY:
            if legacy in headers and not headers.get(current):
                headers[current] = headers[legacy]
        wanted: dict[str, str | None] = {}
        for quota in QUOTA_TYPES:
            tails = [(f"X-Account-Sysmeta-{quota}", f"account-{quota}".lower())]
            tails += [(f"X-Account-Sysmeta-{quota}-Policy-{p.index}",
                       f"account-{quota}-policy-{p.name}".lower()) for p in self.ctx.policies]
            for sysmeta, tail in tails:
                value = headers.get(f"x-{tail}")
                wanted[sysmeta] = "" if headers.get(f"x-remove-{tail}") else value
        return wanted

    def translate(self, req: Request) -> None:
        """A reseller's quota headers become sysmeta; anyone else's are refused."""
        wanted = self.requested(req)
        if not any(value is not None for value in wanted.values()):
            return
        if not self.is_reseller(req):
            raise HTTPForbidden()
        if any(value and not value.isdigit() for value in wanted.values()):
            raise HTTPBadRequest()
        set_headers(req, {k: v for k, v in wanted.items() if v is not None})

    def shown(self, metadata: Mapping[str, str]) -> dict[str, str]:
        """The stored quotas under their public names (for everyone who sees the account)."""
        stored = {k.lower(): v for k, v in metadata.items() if v}
        shown: dict[str, str] = {}
        for quota in QUOTA_TYPES:
            value = stored.get(f"x-account-sysmeta-{quota}".lower())
            if value:
                shown[f"X-Account-{quota}"] = value
            for policy in self.ctx.policies:
                value = stored.get(f"x-account-sysmeta-{quota}-policy-{policy.index}".lower())
                if value:
                    shown[f"X-Account-{quota}-Policy-{policy.name}"] = value
        return shown

    async def exceeded(self, req: Request, next: Handler, target: WriteTarget
                       ) -> str | None:
        """Which quota the write would break (its message), None if none."""
        info = await account_info(self.ctx, target.account)
        if info is None or not any(k.lower().startswith(QUOTA_KEYS) and v
                                   for k, v in info.metadata.items()):
            return None
        info = await account_info(self.ctx, target.account, fresh=True)  # current usage
        if info is None:
            return None
        meta = info.metadata
        quota_bytes = quota_value(meta, "x-account-sysmeta-quota-bytes")
        if quota_bytes is None:
            quota_bytes = quota_value(meta, "x-account-meta-quota-bytes")
        quota_count = quota_value(meta, "x-account-sysmeta-quota-count")
        length = await target.size(req, next)
        if quota_bytes is not None and quota_bytes < info.bytes_used + length:
            return "Upload exceeds quota."
        if quota_count is not None and quota_count < info.object_count + 1:
            return "Upload exceeds quota."
        return await self.policy_exceeded(target, length, meta, info.policy_stats)

    async def policy_exceeded(self, target: WriteTarget, length: int, meta: Mapping[str, str],
                              policy_stats: Mapping[int, Any]) -> str | None:
        container = await container_info(self.ctx, target.account, target.container)
        if container is None:
            return None
        index = container.storage_policy_index
        stats = policy_stats.get(index)
        used = stats.bytes_used if stats is not None else 0
        count = stats.object_count if stats is not None else 0
        quota_bytes = quota_value(meta, f"x-account-sysmeta-quota-bytes-policy-{index}")
        quota_count = quota_value(meta, f"x-account-sysmeta-quota-count-policy-{index}")
        if (quota_bytes is not None and quota_bytes < used + length) or \
                (quota_count is not None and quota_count < count + 1):
            return "Upload exceeds policy quota."
        return None
