"""/v1/{account}: HEAD, GET (container listing), POST (metadata, account ACL).

Accounts are created on first use (Swift's ``account_autocreate``): before that, the owner
sees an empty account. PUT and DELETE are operator actions Swift disables by default
(``allow_account_management = false``): 405.
"""

from __future__ import annotations

from dataclasses import replace

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.exceptions import (
    HTTPForbidden,
    HTTPMethodNotAllowed,
    HTTPNotFound,
    SwiftError,
    error_for_status,
)
from pocketstack.objectstore.proxy import acl, checks, listing
from pocketstack.objectstore.proxy.auth import (
    ACCOUNT_ACL_META,
    PROJECT_DOMAIN_HEADER,
    PROJECT_DOMAIN_META,
    is_owner,
    project_domain_meta,
    remember_account,
)
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers.base import (
    account_info,
    forget_account,
    read_first,
    remember_account_info,
    summarize,
    write_all,
)
from pocketstack.objectstore.proxy.metadata import (
    entity_metadata,
    user_metadata,
    without_owner_headers,
)
from pocketstack.objectstore.proxy.quorum import best_status
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.types import AccountInfo, Subdir
from pocketstack.objectstore.timestamp import Timestamp

ALLOW = "GET, HEAD, POST"
RESERVED_END = "\x00\U0010ffff"  # above every name of the reserved namespace


async def handle(ctx: ProxyContext, req: Request) -> Response:
    if req.method in ("GET", "HEAD"):
        return await get_or_head(ctx, req)
    if req.method == "POST":
        return await post(ctx, req)
    raise HTTPMethodNotAllowed(headers={"Allow": ALLOW})


async def _authorize(ctx: ProxyContext, req: Request, *, fresh: bool = False
                     ) -> AccountInfo | None:
    info = await account_info(ctx, req.account or "", fresh=fresh)
    await _authorize_with(req, info)
    return info


async def _authorize_with(req: Request, info: AccountInfo | None) -> None:
    """Run the deferred authorization with the account's ACLs (``info``) at hand."""
    remember_account(req, info)
    assert req.authorize is not None
    await req.authorize(req)


async def get_or_head(ctx: ProxyContext, req: Request) -> Response:
    account = req.account or ""
    # The format first, to anyone (Swift's listing_formats runs before auth); bad
    # parameters are the account server's answer, told only once authorized.
    fmt = listing.listing_media_type(req.query.get("format"), req.headers.get("accept"))
    refused: SwiftError | ConstraintError | None = None
    params: listing.ListingParams | None = None
    try:
        params = listing.listing_params(req.scope.get("query_string", b""), target="account",
                                        limits=ctx.limits)
    except (SwiftError, ConstraintError) as exc:
        refused = exc
    rows: list[listing.ContainerRow | listing.SubdirRow] = []
    failed: SwiftError | None = None  # the replicas' answer, told once authorized
    if req.method == "GET" and params is not None:
        # The page brings the account's info (its ACLs too), from the same snapshot: one
        # storage read, then the request is authorized, as for a container listing.
        try:
            info, rows = await _read_page(ctx, req, params)
        except SwiftError as exc:
            info, failed = None, exc
        else:
            remember_account_info(ctx, account, info)
        await _authorize_with(req, info)
    else:
        info = await _authorize(ctx, req, fresh=True)  # stats: from the replicas
    if failed is not None:
        raise failed
    if refused is not None:
        raise refused
    if info is None and not is_owner(req):
        raise HTTPNotFound()
    headers = account_headers(ctx, info, owner=is_owner(req))
    body, ctype = listing.render_account_listing(account, rows, fmt)
    headers["Content-Type"] = ctype
    status = listing.listing_status(body)
    if req.method == "HEAD":
        return Response(204, headers)
    return Response(status, headers, body if status == 200 else b"")


async def _read_page(ctx: ProxyContext, req: Request, params: listing.ListingParams
                     ) -> tuple[AccountInfo | None, list[listing.ContainerRow | listing.SubdirRow]]:
    """The account's info and one page of its containers; (None, []) when it does not
    exist."""
    account = req.account or ""
    if not checks.allows_reserved_names(req):
        params = _without_reserved(params)
    ring = ctx.account_ring
    part = ring.get_part(account)
    outcome = await read_first(ctx, ring, part, lambda node, dev: node.list_containers(
        dev, part, account, limit=params.limit, marker=params.marker,
        end_marker=params.end_marker, prefix=params.prefix, delimiter=params.delimiter,
        reverse=params.reverse))
    if outcome.status == 404:
        return None, []
    if not outcome.ok:
        raise error_for_status(outcome.status)
    rows: list[listing.ContainerRow | listing.SubdirRow] = []
    for entry in outcome.value.entries:
        if isinstance(entry, Subdir):
            rows.append(listing.SubdirRow(subdir=entry.name))
        else:
            policy = ctx.policies.by_index.get(entry.storage_policy_index)
            rows.append(listing.ContainerRow(
                name=entry.name, count=entry.object_count, bytes=entry.bytes_used,
                last_modified=entry.put_timestamp.isoformat,
                storage_policy=policy.name if policy is not None else None))
    return outcome.value.info, rows


def _without_reserved(params: listing.ListingParams) -> listing.ListingParams:
    """Listing bounds that skip the reserved namespace (names starting with NUL, e.g. the
    hidden containers of object versioning): they sort before every other name, so a
    marker past them all hides them without breaking pagination (Swift's account server
    does the same with ``allow_reserved=False``)."""
    if params.reverse:
        return replace(params, end_marker=max(params.end_marker, RESERVED_END))
    return replace(params, marker=max(params.marker, RESERVED_END))


def account_headers(ctx: ProxyContext, info: AccountInfo | None, *, owner: bool
                    ) -> dict[str, str]:
    now = Timestamp.now()
    headers = {"X-Account-Container-Count": str(info.container_count if info else 0),
               "X-Account-Object-Count": str(info.object_count if info else 0),
               "X-Account-Bytes-Used": str(info.bytes_used if info else 0),
               "X-Timestamp": (info.created_at if info else now).normal,
               "X-Put-Timestamp": (info.put_timestamp if info else now).normal,
               "Accept-Ranges": "bytes"}
    if info is None:
        return headers
    for index, stats in info.policy_stats.items():
        name = ctx.policies.get(index).name
        prefix = f"X-Account-Storage-Policy-{name}-"
        headers[prefix + "Container-Count"] = str(stats.container_count)
        headers[prefix + "Object-Count"] = str(stats.object_count)
        headers[prefix + "Bytes-Used"] = str(stats.bytes_used)
    headers.update(user_metadata(info.metadata, "account"))
    if info.metadata.get(PROJECT_DOMAIN_META):
        headers[PROJECT_DOMAIN_HEADER] = info.metadata[PROJECT_DOMAIN_META]
    stored_acl = _shown_account_acl(info.metadata.get(ACCOUNT_ACL_META, ""))
    if owner and stored_acl:
        headers["X-Account-Access-Control"] = stored_acl
    return headers if owner else without_owner_headers(headers)


def _shown_account_acl(stored: str) -> str | None:
    """The stored ACL as owners see it: nothing for an empty one (``{}``), as Swift's
    ``add_acls_from_sys_metadata``."""
    try:
        parsed = acl.parse_account_acl(stored) if stored else None
    except acl.AccountAclError:
        return None
    return None if parsed is None or parsed.is_empty else acl.format_account_acl(parsed)


async def post(ctx: ProxyContext, req: Request) -> Response:
    info = await _authorize(ctx, req, fresh=True)
    metadata = entity_metadata(req, "account")
    checks.metadata(ctx, req, "account")
    checks.metadata_total(ctx, info.metadata if info else {}, metadata, "account")
    if "x-account-access-control" in req.headers:
        if not is_owner(req):
            raise HTTPForbidden()
        metadata[ACCOUNT_ACL_META] = _clean_account_acl(req.headers["x-account-access-control"])
    domain = project_domain_meta(ctx.settings, req, info)
    metadata.update(domain)
    account = req.account or ""
    if info is None:
        await ensure_account(ctx, account, metadata=domain)
    ring = ctx.account_ring
    part = ring.get_part(account)
    timestamp = Timestamp.now()
    outcomes = await write_all(ctx, ring, part, lambda node, dev: node.post_account(
        dev, part, account, timestamp=timestamp, metadata=metadata), success=204)
    forget_account(ctx, account)
    status = summarize(outcomes, ring.replica_count)
    if status // 100 != 2:
        raise error_for_status(status)
    return Response(204, {"Content-Type": "text/html; charset=UTF-8"})


def _clean_account_acl(value: str) -> str:
    if not value.strip():
        return ""
    return acl.format_account_acl(acl.parse_account_acl(value))


async def ensure_account(ctx: ProxyContext, account: str, *,
                         metadata: dict[str, str] | None = None) -> None:
    """Create the account on first use, with ``metadata`` (idempotent: an existing account
    is left as is)."""
    if await account_info(ctx, account) is not None:
        return
    ring = ctx.account_ring
    part = ring.get_part(account)
    timestamp = Timestamp.now()
    outcomes = await write_all(ctx, ring, part, lambda node, dev: node.put_account(
        dev, part, account, timestamp=timestamp, metadata=metadata), success=201)
    forget_account(ctx, account)
    status = best_status([o.status for o in outcomes], ring.replica_count)
    if status // 100 != 2 and status != 409:
        raise error_for_status(status)
