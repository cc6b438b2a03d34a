"""/v1/{account}/{container}: PUT, HEAD, GET (object listing), POST, DELETE.

A container lives on the container ring's replicas, each its own SQLite database; its
account learns about it (for the account listing and stats) right after each change.
"""

from __future__ import annotations

from collections.abc import Sequence

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPMethodNotAllowed,
    HTTPNotFound,
    SwiftError,
    error_for_status,
)
from pocketstack.objectstore.proxy import acl, checks, listing
from pocketstack.objectstore.proxy.auth import is_owner, project_domain_meta, remember_account
from pocketstack.objectstore.proxy.context import Policy, ProxyContext
from pocketstack.objectstore.proxy.controllers.account import ensure_account
from pocketstack.objectstore.proxy.controllers.base import (
    account_info,
    container_info,
    forget_account,
    forget_container,
    held_for_anonymous,
    read_first,
    remember_container_info,
    summarize,
    write_all,
)
from pocketstack.objectstore.proxy.metadata import (
    CONTAINER_STORED,
    entity_metadata,
    user_metadata,
    without_owner_headers,
)
from pocketstack.objectstore.proxy.quorum import best_status
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.types import (
    AccountInfo,
    ContainerInfo,
    ListedObject,
    ListingQuery,
    RenderedListing,
    Subdir,
)
from pocketstack.objectstore.timestamp import Timestamp

ALLOW = "DELETE, GET, HEAD, POST, PUT"


async def handle(ctx: ProxyContext, req: Request) -> Response:
    handler = {"GET": get_or_head, "HEAD": get_or_head, "PUT": put, "POST": post,
               "DELETE": delete}.get(req.method)
    if handler is None:
        raise HTTPMethodNotAllowed(headers={"Allow": ALLOW})
    return await handler(ctx, req)


async def authorize(ctx: ProxyContext, req: Request, info: ContainerInfo | None
                    ) -> AccountInfo | None:
    """Run the deferred authorization with the account and container ACLs at hand; the
    account's info (None: it does not exist yet). No account replica answering is 503,
    told to an anonymous caller only once authorized (`held_for_anonymous`)."""
    account, unavailable = await held_for_anonymous(req, account_info(ctx, req.account or ""))
    remember_account(req, account)
    if info is not None:
        req.state["read_acl"] = info.metadata.get("X-Container-Read", "")
        req.state["write_acl"] = info.metadata.get("X-Container-Write", "")
    assert req.authorize is not None
    await req.authorize(req)
    if unavailable is not None:
        raise unavailable
    return account


# -- reads -------------------------------------------------------------------------------------
async def get_or_head(ctx: ProxyContext, req: Request) -> Response:
    account, container = req.account or "", req.container or ""
    # The format first, to anyone (Swift's listing_formats runs before auth); bad
    # parameters are the container server's answer, told only once authorized.
    fmt = listing.listing_media_type(req.query.get("format"), req.headers.get("accept"))
    refused: SwiftError | ConstraintError | None = None
    params: listing.ListingParams | None = None
    try:
        params = listing.listing_params(req.scope.get("query_string", b""),
                                        target="container", limits=ctx.limits)
    except (SwiftError, ConstraintError) as exc:
        refused = exc
    entries: Sequence[ListedObject | Subdir] = ()
    rendered: RenderedListing | None = None
    failed: SwiftError | None = None  # the replicas' answer, told once authorized
    if req.method == "GET" and params is not None:
        # The page brings the container's info, from the same snapshot: authorized
        # after it is read, as Swift's proxy authorizes after its backend GET.
        try:
            info, rendered, entries = await _read_page(ctx, req, params, fmt)
        except SwiftError as exc:
            info, failed = None, exc
        else:
            remember_container_info(ctx, account, container, info)
    else:  # from the replicas, not the cache: counts change with every object write
        info = await container_info(ctx, account, container, fresh=True)
    await authorize(ctx, req, info)
    if failed is not None:
        raise failed
    if info is None:
        raise HTTPNotFound()
    if refused is not None:
        raise refused
    headers = container_headers(ctx, info, owner=is_owner(req))
    headers["Content-Type"] = listing.content_type_of(fmt)
    if req.method == "HEAD":
        return Response(204, headers)
    body = rendered.json if rendered is not None else \
        listing.render_stored_listing(container, entries, fmt)[0]
    status = listing.listing_status(body)
    return Response(status, headers, body if status == 200 else b"")


async def _read_page(ctx: ProxyContext, req: Request, params: listing.ListingParams, fmt: str
                     ) -> tuple[ContainerInfo | None, RenderedListing | None,
                                Sequence[ListedObject | Subdir]]:
    """(info, the page as the database wrote it, or its rows); (None, None, ()) when the
    container does not exist. A JSON page without a delimiter is asked of the node first
    (`storage.listing_json`); a node that declines is asked for the rows."""
    account, container = req.account or "", req.container or ""
    ring = ctx.container_ring
    part = ring.get_part(account, container)
    if fmt == "application/json" and not params.delimiter and params.path is None:
        query = ListingQuery(params.limit, params.marker, params.end_marker, params.prefix,
                             reverse=params.reverse)
        outcome = await read_first(ctx, ring, part, lambda node, dev: node.list_objects_json(
            dev, part, account, container, query))
        if outcome.status == 404:
            return None, None, ()
        if not outcome.ok:
            raise error_for_status(outcome.status)
        if outcome.value is not None:
            return outcome.value.info, outcome.value, ()
    outcome = await read_first(ctx, ring, part, lambda node, dev: node.list_objects(
        dev, part, account, container, limit=params.limit, marker=params.marker,
        end_marker=params.end_marker, prefix=params.prefix, delimiter=params.delimiter,
        path=params.path, reverse=params.reverse))
    if outcome.status == 404:
        return None, None, ()
    if not outcome.ok:
        raise error_for_status(outcome.status)
    return outcome.value.info, None, outcome.value.entries


def container_headers(ctx: ProxyContext, info: ContainerInfo, *, owner: bool
                      ) -> dict[str, str]:
    policy = ctx.policies.get(info.storage_policy_index)
    headers = {"X-Container-Object-Count": str(info.object_count),
               "X-Container-Bytes-Used": str(info.bytes_used),
               "X-Timestamp": info.created_at.normal,
               "X-Put-Timestamp": info.put_timestamp.normal,
               "Last-Modified": info.put_timestamp.http_date,
               "X-Storage-Policy": policy.name, "Accept-Ranges": "bytes"}
    headers.update(user_metadata(info.metadata, "container"))
    if owner:
        for name in ("X-Container-Read", "X-Container-Write"):
            if info.metadata.get(name):
                headers[name] = info.metadata[name]
    return headers if owner else without_owner_headers(headers)


# -- writes ------------------------------------------------------------------------------------
def _metadata(ctx: ProxyContext, req: Request) -> dict[str, str]:
    metadata = entity_metadata(req, "container", stored=CONTAINER_STORED)
    checks.metadata(ctx, req, "container")
    for name in ("X-Container-Read", "X-Container-Write"):
        if metadata.get(name):
            try:
                metadata[name] = acl.clean_acl(name, metadata[name])
            except ValueError as exc:
                raise HTTPBadRequest(str(exc)) from exc
    return metadata


def _policy(ctx: ProxyContext, req: Request) -> Policy | None:
    name = req.headers.get("x-storage-policy")
    if not name:  # absent or empty: the default policy (or the container's own)
        return None
    policy = ctx.policies.by_name(name)
    if policy is None:
        raise HTTPBadRequest(f'Invalid X-Storage-Policy "{name}"')
    return policy


async def put(ctx: ProxyContext, req: Request) -> Response:
    account, container = req.account or "", req.container or ""
    checks.container_name(ctx, container, req=req)
    metadata = _metadata(ctx, req)
    policy = _policy(ctx, req)
    existing = await container_info(ctx, account, container)
    account_meta = await authorize(ctx, req, existing)
    if not is_owner(req):
        metadata = without_owner_headers(metadata)
    checks.metadata_total(ctx, existing.metadata if existing else {}, metadata, "container")
    if existing is not None and policy is not None and \
            existing.storage_policy_index != policy.index:
        raise HTTPConflict("Container already exists with a different storage policy")
    if account_meta is None:
        await ensure_account(ctx, account,
                             metadata=project_domain_meta(ctx.settings, req, None))
    index = policy.index if policy else (existing.storage_policy_index if existing
                                         else ctx.policies.default.index)
    ring = ctx.container_ring
    part = ring.get_part(account, container)
    timestamp = Timestamp.now()
    outcomes = await write_all(ctx, ring, part, lambda node, dev: node.put_container(
        dev, part, account, container, timestamp=timestamp, policy_index=index,
        metadata=metadata))
    forget_container(ctx, account, container)
    status = best_status([201 if o.ok and o.value else 202 if o.ok else o.status
                          for o in outcomes], ring.replica_count)
    if status // 100 != 2:
        raise error_for_status(status)
    await report_to_account(ctx, account, container)
    return Response(status, {"Content-Type": "text/html; charset=UTF-8"})


async def post(ctx: ProxyContext, req: Request) -> Response:
    account, container = req.account or "", req.container or ""
    metadata = _metadata(ctx, req)
    info = await container_info(ctx, account, container, fresh=True)
    await authorize(ctx, req, info)
    if info is None:
        raise HTTPNotFound()
    if not is_owner(req):
        metadata = without_owner_headers(metadata)
    checks.metadata_total(ctx, info.metadata, metadata, "container")
    ring = ctx.container_ring
    part = ring.get_part(account, container)
    timestamp = Timestamp.now()
    outcomes = await write_all(ctx, ring, part, lambda node, dev: node.post_container(
        dev, part, account, container, timestamp=timestamp, metadata=metadata), success=204)
    forget_container(ctx, account, container)
    status = summarize(outcomes, ring.replica_count)
    if status // 100 != 2:
        raise error_for_status(status)
    return Response(204, {"Content-Type": "text/html; charset=UTF-8"})


async def delete(ctx: ProxyContext, req: Request) -> Response:
    account, container = req.account or "", req.container or ""
    info = await container_info(ctx, account, container)
    await authorize(ctx, req, info)
    if info is None:
        raise HTTPNotFound()
    ring = ctx.container_ring
    part = ring.get_part(account, container)
    timestamp = Timestamp.now()
    outcomes = await write_all(ctx, ring, part, lambda node, dev: node.delete_container(
        dev, part, account, container, timestamp=timestamp), success=204)
    forget_container(ctx, account, container)
    status = summarize(outcomes, ring.replica_count)
    if status == 409:
        raise HTTPConflict("There was a conflict when trying to complete your request.")
    if status // 100 != 2:
        raise error_for_status(status)
    await report_to_account(ctx, account, container, deleted=info, deleted_at=timestamp)
    return Response(204, {"Content-Type": "text/html; charset=UTF-8"})


async def report_to_account(ctx: ProxyContext, account: str, container: str, *,
                            deleted: ContainerInfo | None = None,
                            deleted_at: Timestamp | None = None) -> None:
    """Tell the account's replicas the container's current state (Swift's container
    server does this after PUT/DELETE; object changes are batched by the reporter).
    ``deleted``/``deleted_at``: the container as it was, and when it was deleted."""
    if deleted is not None and deleted_at is not None:
        put_ts, delete_ts, count, used = deleted.put_timestamp, deleted_at, 0, 0
        index = deleted.storage_policy_index
    else:
        info = await container_info(ctx, account, container, fresh=True)
        if info is None:
            return
        put_ts, delete_ts = info.put_timestamp, info.delete_timestamp
        count, used, index = info.object_count, info.bytes_used, info.storage_policy_index
    ring = ctx.account_ring
    part = ring.get_part(account)
    await write_all(ctx, ring, part, lambda node, dev: node.update_account_listing(
        dev, part, account, container, put_timestamp=put_ts, delete_timestamp=delete_ts,
        object_count=count, bytes_used=used, policy_index=index))
    forget_account(ctx, account)
