"""Handlers of the replication operations (one per StorageNode operation) and their routes.

Object replication lives under ``/objects`` (a device, a partition, or one file of a hash
dir: ``/objects/<dev>/<part>/<hash>/<file>``, one segment shorter than an object), the
database operations under ``/db-<op>/<dev>/<part>/<account>[/<container>]`` (the depth
tells an account from a container), and ``/containers/<dev>[/<part>]`` and
``/accounts/<dev>[/<part>]`` list partitions and databases. `handlers.ROUTES` includes
``REPLICATION_ROUTES``; the route table is in the package docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from starlette.responses import Response
from starlette.types import ASGIApp

from pocketstack.objectstore.server.app import Call, FrameStream, Handler, RouteKey
from pocketstack.objectstore.storage import wire
from pocketstack.objectstore.storage.exceptions import BadRequest
from pocketstack.objectstore.storage.types import (
    DatabaseRef,
    DatabaseState,
    DataKind,
    ObjectFile,
    ObjectStamp,
)
from pocketstack.objectstore.timestamp import Timestamp

MAX_MERGE_BYTES: Final = 64 << 20


def _json(document: bytes, status: int = 200) -> Response:
    return Response(document, status, media_type=wire.JSON_MEDIA_TYPE)


def _policy(call: Call) -> int:
    return call.policy() or 0


def _suffixes(call: Call) -> list[str] | None:
    value = call.query.get("suffixes")
    return None if value is None else [s for s in value.split(",") if s]


def _kind(call: Call) -> DataKind:
    if call.kind not in ("objects", "containers", "accounts"):
        raise BadRequest(f"not a data kind: {call.kind!r}")
    return call.kind  # type: ignore[return-value]


# -- objects -----------------------------------------------------------------------------


async def list_partitions(call: Call) -> ASGIApp:
    """``GET /<kind>/<dev>``: ``{"partitions": [int]}``."""
    partitions = await call.node.list_partitions(call.device, _kind(call), policy=_policy(call))
    return _json(wire.dumps({"partitions": partitions}))


async def get_partition(call: Call) -> ASGIApp:
    """``GET /objects/<dev>/<part>?hashes|stamps[&suffixes=a,b]``."""
    suffixes = _suffixes(call)
    if "hashes" in call.query:
        hashes = await call.node.get_hashes(
            call.device, call.partition, policy=_policy(call), suffixes=suffixes
        )
        return _json(wire.dumps({"hashes": hashes}))
    if "stamps" in call.query:
        stamps = await call.node.list_object_stamps(
            call.device, call.partition, policy=_policy(call), suffixes=suffixes
        )
        return _json(wire.encode_list("stamps", stamps))
    raise BadRequest("a partition answers ?hashes or ?stamps")


async def remove_objects(call: Call) -> ASGIApp:
    """``DELETE /objects/<dev>/<part>`` with ``{"stamps": [...]}``: ``{"removed": n}``."""
    document = await call.document()
    stamps = document.get("stamps")
    if not isinstance(stamps, list):
        raise BadRequest("no stamps")
    removed = await call.node.remove_objects(
        call.device,
        call.partition,
        [wire.from_doc(ObjectStamp, stamp) for stamp in stamps],
        policy=_policy(call),
    )
    return _json(wire.dumps({"removed": removed}))


async def get_object_file(call: Call) -> ASGIApp:
    file, body = await call.node.get_object_file(
        call.device, call.partition, call.args[2], call.args[3], policy=_policy(call)
    )
    headers = {wire.INFO_HEADER: wire.encode(file).decode("ascii")}
    return FrameStream(aiter(body), headers=headers, close=body.aclose)


async def put_object_file(call: Call) -> ASGIApp:
    file = wire.decode(ObjectFile, call.header(wire.INFO_HEADER) or "")
    if (file.name_hash, file.filename) != (call.args[2], call.args[3]):
        raise BadRequest("the file document names another file")
    if call.content_length() != file.content_length:
        raise BadRequest("Content-Length is not the file's length")
    kept = await call.node.put_object_file(
        call.device, call.partition, file, call.request.stream(), policy=_policy(call)
    )
    return _json(wire.dumps({"kept": kept}), 201 if kept else 202)


# -- databases ---------------------------------------------------------------------------


async def list_databases(call: Call) -> ASGIApp:
    """``GET /<accounts|containers>/<dev>/<part>``: ``{"databases": [DatabaseRef]}``."""
    refs = await call.node.list_databases(call.device, call.partition, _kind(call))
    return _json(wire.encode_list("databases", refs))


def _db(call: Call) -> tuple[str, int, DatabaseRef]:
    """``/db-<op>/<dev>/<part>/<account>[/<container>]``."""
    container = call.args[3] if len(call.args) == 4 else None
    return call.device, call.partition, DatabaseRef(call.args[2], container)


def _int(call: Call, name: str) -> int:
    try:
        return int(call.query[name])
    except (KeyError, ValueError) as exc:
        raise BadRequest(f"{name} wants an integer") from exc


async def get_db_state(call: Call) -> ASGIApp:
    state = await call.node.get_db_state(*_db(call), remote_id=call.query.get("remote_id"))
    return _json(wire.encode(state))


async def get_db_rows(call: Call) -> ASGIApp:
    rows = await call.node.get_db_rows(
        *_db(call), since=_int(call, "since"), limit=_int(call, "limit")
    )
    return _json(wire.encode_rows(rows))


async def merge_db(call: Call) -> ASGIApp:
    device, partition, ref = _db(call)
    merge, rows = wire.decode_merge(ref.kind, await call.body(MAX_MERGE_BYTES))
    state = await call.node.merge_db(
        device, partition, ref, source_id=merge.source_id, status=merge.status, rows=rows,
        sync_point=merge.sync_point,
    )  # fmt: skip
    return _json(wire.encode(state))


async def remove_db(call: Call) -> ASGIApp:
    expected = wire.from_doc(DatabaseState, await call.document())
    removed = await call.node.remove_db(*_db(call), expected=expected)
    return _json(wire.dumps({"removed": removed}))


async def reclaim_db(call: Call) -> ASGIApp:
    try:
        before = Timestamp(call.query.get("before", ""))
    except ValueError as exc:
        raise BadRequest("before wants a timestamp") from exc
    removed = await call.node.reclaim_db(*_db(call), before=before)
    return _json(wire.dumps({"removed": removed}))


def _db_routes(op: str, method: str, handler: Handler) -> dict[RouteKey, Handler]:
    return {(f"db-{op}", 3, method): handler, (f"db-{op}", 4, method): handler}


REPLICATION_ROUTES: Final[Mapping[RouteKey, Handler]] = {
    ("objects", 1, "GET"): list_partitions,
    ("containers", 1, "GET"): list_partitions,
    ("accounts", 1, "GET"): list_partitions,
    ("objects", 2, "GET"): get_partition,
    ("objects", 2, "DELETE"): remove_objects,
    ("objects", 4, "GET"): get_object_file,
    ("objects", 4, "PUT"): put_object_file,
    ("containers", 2, "GET"): list_databases,
    ("accounts", 2, "GET"): list_databases,
    **_db_routes("state", "GET", get_db_state),
    **_db_routes("rows", "GET", get_db_rows),
    **_db_routes("merge", "POST", merge_db),
    **_db_routes("remove", "POST", remove_db),
    **_db_routes("reclaim", "POST", reclaim_db),
}
