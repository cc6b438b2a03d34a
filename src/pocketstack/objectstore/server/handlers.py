"""One handler per StorageNode operation, and the route table (with `replication`'s and
`recon`'s routes).

Each handler parses its `Call`, makes one call on the `LocalNode` and renders the result
with `storage.wire`; failures are raised and rendered once by `app`. ``ROUTES`` maps
``(kind, segments after the kind, method)`` to the handler: adding an operation is one
function and one entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final

from starlette.responses import Response
from starlette.types import ASGIApp

from pocketstack.objectstore.server.app import Call, FrameStream, Handler, RouteKey
from pocketstack.objectstore.server.recon import RECON_ROUTES
from pocketstack.objectstore.server.replication import REPLICATION_ROUTES
from pocketstack.objectstore.storage import wire
from pocketstack.objectstore.storage.types import (
    DEFAULT_LISTING_LIMIT,
    AsyncPending,
    ContainerUpdate,
    ListingQuery,
)


def _json(document: bytes, status: int = 200) -> Response:
    return Response(document, status, media_type=wire.JSON_MEDIA_TYPE)


def _info(document: bytes) -> Response:
    """A HEAD answer: the document travels in the ``X-Backend-Info`` header."""
    return Response(headers={wire.INFO_HEADER: document.decode("ascii")})


def _no_content() -> Response:
    return Response(status_code=204)


def _object(call: Call) -> tuple[str, int, str, str, str]:
    return call.device, call.partition, call.args[2], call.args[3], call.args[4]


def _policy(call: Call) -> int:
    return call.policy() or 0


# -- objects: /objects/<dev>/<part>/<account>/<container>/<object> ---------------------


async def put_object(call: Call) -> ASGIApp:
    info = await call.node.put_object(
        *_object(call),
        policy=_policy(call),
        timestamp=call.timestamp(),
        metadata=call.metadata() or {},
        body=call.request.stream(),
        content_length=call.content_length(),
    )
    return _json(wire.encode(info), 201)


async def get_object(call: Call) -> ASGIApp:
    info, body = await call.node.get_object(
        *_object(call), policy=_policy(call), ranges=call.ranges()
    )
    headers = {wire.INFO_HEADER: wire.encode(info).decode("ascii")}
    if body.ranges is not None:
        headers[wire.RANGES_HEADER] = wire.encode_ranges(body.ranges)
    return FrameStream(aiter(body), headers=headers, close=body.aclose)


async def head_object(call: Call) -> ASGIApp:
    return _info(wire.encode(await call.node.head_object(*_object(call), policy=_policy(call))))


async def post_object(call: Call) -> ASGIApp:
    info = await call.node.post_object(
        *_object(call),
        policy=_policy(call),
        timestamp=call.timestamp(),
        metadata=call.metadata() or {},
    )
    return _json(wire.encode(info))


async def delete_object(call: Call) -> ASGIApp:
    existed = await call.node.delete_object(
        *_object(call), policy=_policy(call), timestamp=call.timestamp()
    )
    return _json(wire.dumps({"existed": existed}))


# -- containers: /containers/<dev>/<part>/<account>/<container>[/<object>] -------------


def _container(call: Call) -> tuple[str, int, str, str]:
    return call.device, call.partition, call.args[2], call.args[3]


async def put_container(call: Call) -> ASGIApp:
    created = await call.node.put_container(
        *_container(call),
        timestamp=call.timestamp(),
        policy_index=call.policy(default=None),
        metadata=call.metadata(),
    )
    return _json(wire.dumps({"created": created}), 201 if created else 202)


async def head_container(call: Call) -> ASGIApp:
    return _info(wire.encode(await call.node.head_container(*_container(call))))


async def post_container(call: Call) -> ASGIApp:
    await call.node.post_container(
        *_container(call), timestamp=call.timestamp(), metadata=call.metadata() or {}
    )
    return _no_content()


async def delete_container(call: Call) -> ASGIApp:
    await call.node.delete_container(*_container(call), timestamp=call.timestamp())
    return _no_content()


def _listing_query(call: Call) -> ListingQuery:
    query = call.query
    return ListingQuery(
        limit=int(query.get("limit", DEFAULT_LISTING_LIMIT)),
        marker=query.get("marker", ""),
        end_marker=query.get("end_marker", ""),
        prefix=query.get("prefix"),
        delimiter=query.get("delimiter"),
        path=query.get("path"),
        reverse=query.get("reverse") == "true",
    )


async def list_objects(call: Call) -> ASGIApp:
    q = _listing_query(call)
    if call.query.get("rendered") == "json":  # list_objects_json: the page, or 204
        rendered = await call.node.list_objects_json(*_container(call), q)
        if rendered is None:
            return _no_content()
        return Response(rendered.json, media_type=wire.JSON_MEDIA_TYPE,
                        headers={wire.INFO_HEADER: wire.encode(rendered.info).decode("ascii")})
    listing = await call.node.list_objects(
        *_container(call),
        limit=q.limit,
        marker=q.marker,
        end_marker=q.end_marker,
        prefix=q.prefix,
        delimiter=q.delimiter,
        path=q.path,
        reverse=q.reverse,
    )
    return _json(wire.encode_listing(listing))


async def update_container_listing(call: Call) -> ASGIApp:
    row = wire.from_doc(wire.ObjectRowUpdate, await call.document())
    await call.node.update_container_listing(
        *_object(call),
        timestamp=row.timestamp,
        size=row.size,
        content_type=row.content_type,
        etag=row.etag,
        deleted=row.deleted,
        policy_index=row.policy_index,
    )
    return _no_content()


# -- accounts: /accounts/<dev>/<part>/<account>[/<container>] --------------------------


def _account(call: Call) -> tuple[str, int, str]:
    return call.device, call.partition, call.args[2]


async def put_account(call: Call) -> ASGIApp:
    created = await call.node.put_account(
        *_account(call), timestamp=call.timestamp(), metadata=call.metadata()
    )
    return _json(wire.dumps({"created": created}), 201 if created else 202)


async def head_account(call: Call) -> ASGIApp:
    return _info(wire.encode(await call.node.head_account(*_account(call))))


async def post_account(call: Call) -> ASGIApp:
    await call.node.post_account(
        *_account(call), timestamp=call.timestamp(), metadata=call.metadata() or {}
    )
    return _no_content()


async def delete_account(call: Call) -> ASGIApp:
    await call.node.delete_account(*_account(call), timestamp=call.timestamp())
    return _no_content()


async def list_containers(call: Call) -> ASGIApp:
    q = _listing_query(call)
    listing = await call.node.list_containers(
        *_account(call),
        limit=q.limit,
        marker=q.marker,
        end_marker=q.end_marker,
        prefix=q.prefix,
        delimiter=q.delimiter,
        reverse=q.reverse,
    )
    return _json(wire.encode_listing(listing))


async def update_account_listing(call: Call) -> ASGIApp:
    row = wire.from_doc(wire.ContainerRowUpdate, await call.document())
    await call.node.update_account_listing(
        *_account(call),
        call.args[3],
        put_timestamp=row.put_timestamp,
        delete_timestamp=row.delete_timestamp,
        object_count=row.object_count,
        bytes_used=row.bytes_used,
        policy_index=row.policy_index,
    )
    return _no_content()


# -- async pendings: /async-pendings/<dev>[/<pending id>] ------------------------------


async def write_async_pending(call: Call) -> ASGIApp:
    update = wire.from_doc(ContainerUpdate, await call.document())
    await call.node.write_async_pending(call.device, _policy(call), update)
    return _no_content()


async def list_async_pendings(call: Call) -> ASGIApp:
    """Every pending as one ``D`` frame (an `AsyncPending` document), streamed."""
    pendings = call.node.iter_async_pendings(call.device, call.policy(default=None))
    return FrameStream(_encoded(pendings), headers={}, close=_closer(pendings))


async def _encoded(pendings: AsyncIterator[AsyncPending]) -> AsyncIterator[bytes]:
    async for pending in pendings:
        yield wire.encode(pending)


def _closer(pendings: AsyncIterator[AsyncPending]) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        aclose = getattr(pendings, "aclose", None)
        if aclose is not None:
            await aclose()

    return close


async def remove_async_pending(call: Call) -> ASGIApp:
    await call.node.remove_async_pending(call.device, call.args[1])
    return _no_content()


ROUTES: Final[Mapping[RouteKey, Handler]] = {
    ("objects", 5, "PUT"): put_object,
    ("objects", 5, "GET"): get_object,
    ("objects", 5, "HEAD"): head_object,
    ("objects", 5, "POST"): post_object,
    ("objects", 5, "DELETE"): delete_object,
    ("containers", 4, "PUT"): put_container,
    ("containers", 4, "HEAD"): head_container,
    ("containers", 4, "POST"): post_container,
    ("containers", 4, "DELETE"): delete_container,
    ("containers", 4, "GET"): list_objects,
    ("containers", 5, "PUT"): update_container_listing,
    ("accounts", 3, "PUT"): put_account,
    ("accounts", 3, "HEAD"): head_account,
    ("accounts", 3, "POST"): post_account,
    ("accounts", 3, "DELETE"): delete_account,
    ("accounts", 3, "GET"): list_containers,
    ("accounts", 4, "PUT"): update_account_listing,
    ("async-pendings", 1, "POST"): write_async_pending,
    ("async-pendings", 1, "GET"): list_async_pendings,
    ("async-pendings", 2, "DELETE"): remove_async_pending,
    **REPLICATION_ROUTES,
    **RECON_ROUTES,
}
