"""The storage-node server: this host's devices (a `LocalNode`) over an internal HTTP API.

``pocketstack storage-node`` runs it on each storage host; the proxy's `RemoteNode`
speaks it, so one proxy code path serves devices here and elsewhere. The encodings
(documents, headers, frames, error documents) are `storage.wire`, version 1.

Routes (every name is one percent-encoded path segment, see `wire.quote_segment`)::

    PUT    /objects/<dev>/<part>/<a>/<c>/<o>   put_object      body: the object's bytes
    GET    /objects/<dev>/<part>/<a>/<c>/<o>   get_object      200: frames; headers below
    HEAD   /objects/<dev>/<part>/<a>/<c>/<o>   head_object     200: X-Backend-Info
    POST   /objects/<dev>/<part>/<a>/<c>/<o>   post_object     200: ObjectInfo
    DELETE /objects/<dev>/<part>/<a>/<c>/<o>   delete_object   200: {"existed": bool}
    PUT    /containers/<dev>/<part>/<a>/<c>    put_container   201|202: {"created": bool}
    HEAD   /containers/<dev>/<part>/<a>/<c>    head_container  200: X-Backend-Info
    POST   /containers/<dev>/<part>/<a>/<c>    post_container  204
    DELETE /containers/<dev>/<part>/<a>/<c>    delete_container 204
    GET    /containers/<dev>/<part>/<a>/<c>    list_objects    200: ContainerListing
    GET    /containers/<dev>/<part>/<a>/<c>?rendered=json  list_objects_json
                                               200: the JSON page; X-Backend-Info | 204
    PUT    /containers/<dev>/<part>/<a>/<c>/<o> update_container_listing (ObjectRowUpdate) 204
    PUT    /accounts/<dev>/<part>/<a>          put_account     201|202: {"created": bool}
    HEAD   /accounts/<dev>/<part>/<a>          head_account    200: X-Backend-Info
    POST   /accounts/<dev>/<part>/<a>          post_account    204
    DELETE /accounts/<dev>/<part>/<a>          delete_account  204
    GET    /accounts/<dev>/<part>/<a>          list_containers 200: AccountListing
    PUT    /accounts/<dev>/<part>/<a>/<c>      update_account_listing (ContainerRowUpdate) 204
    POST   /async-pendings/<dev>               write_async_pending (ContainerUpdate) 204
    GET    /async-pendings/<dev>               iter_async_pendings 200: frames, one
                                               AsyncPending document per D frame
    DELETE /async-pendings/<dev>/<pending id>  remove_async_pending 204
    GET    /healthcheck                        200 "OK"

Replication (`replication`; ``kind`` is objects, containers or accounts)::

    GET    /<kind>/<dev>                       list_partitions 200: {"partitions": [int]}
    GET    /objects/<dev>/<part>?hashes[&suffixes=a,b]  get_hashes  {"hashes": {sfx: md5}}
    GET    /objects/<dev>/<part>?stamps[&suffixes=a,b]  list_object_stamps
                                                        {"stamps": [ObjectStamp]}
    DELETE /objects/<dev>/<part>               remove_objects ({"stamps": [...]})
                                               200: {"removed": int}
    GET    /objects/<dev>/<part>/<hash>/<file> get_object_file 200: frames; X-Backend-Info
                                               = the ObjectFile document
    PUT    /objects/<dev>/<part>/<hash>/<file> put_object_file (X-Backend-Info: ObjectFile;
                                               body) 201|202: {"kept": bool}
    GET    /<containers|accounts>/<dev>/<part> list_databases  {"databases": [DatabaseRef]}
    GET    /db-state/<dev>/<part>/<a>[/<c>]?remote_id=   get_db_state  DatabaseState
    GET    /db-rows/<dev>/<part>/<a>[/<c>]?since=&limit= get_db_rows {"rows": [[id, row]]}
    POST   /db-merge/<dev>/<part>/<a>[/<c>]    merge_db (DatabaseMerge + "rows") DatabaseState
    POST   /db-remove/<dev>/<part>/<a>[/<c>]   remove_db (DatabaseState)  {"removed": bool}
    POST   /db-reclaim/<dev>/<part>/<a>[/<c>]?before=ts  reclaim_db  {"removed": bool}

and ``/recon`` (`recon`): ``GET /recon/status``, ``POST /recon/<daemon>``.

The first segment names the server role (Swift runs three servers on three ports; this is
one port), so an object PUT and a container's listing-row PUT cannot be confused.

Request headers:
    ``X-Timestamp``                     the proxy's timestamp (internal form) of a write
    ``X-Backend-Storage-Policy-Index``  objects and async pendings (absent: 0); a
                                        container PUT (absent: keep the existing one);
                                        listing async pendings (absent: every policy)
    ``X-Backend-Metadata``              ``{"v": 1, "metadata": {name: value}}`` (PUT/POST)
    ``X-Backend-Ranges``                GET: ``[[start, stop|null], ...]`` (`types.ByteRange`)
    ``Content-Length``                  object PUT: the declared length; absent = chunked
    Listing query: ``limit marker end_marker prefix delimiter path reverse=true``.
Response headers:
    ``X-Backend-Info``    HEAD, and the object GET: the info document
    ``X-Backend-Ranges``  object GET: the absolute ranges the body carries (absent: whole)
    ``X-Backend-Error``   every error answer: the error document (also the JSON body)

Errors answer with the exception's ``status``; a bad request (bad header, unknown route) is
BadRequest (400), the contract's ValueError (a bad partition or pending id) a 400 that the
client re-raises as ValueError.
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp

from pocketstack.common.http import ServiceEdge
from pocketstack.objectstore.server.app import Recon, StorageServer
from pocketstack.objectstore.server.handlers import ROUTES
from pocketstack.objectstore.storage.local_node import LocalNode

__all__ = ["Recon", "StorageServer", "create_app"]


def _trans_id() -> str:
    return f"tx{uuid.uuid4().hex}"


def create_app(node: LocalNode, *, access_log: bool = True, recon: Recon | None = None) -> ASGIApp:
    """The storage-node API over ``node``, with request ids and one access-log line each;
    ``recon``: the node's daemons, for ``/recon``."""
    return ServiceEdge(
        StorageServer(node, ROUTES, recon=recon),
        service="storage",
        header_names=("x-trans-id",),
        id_factory=_trans_id,
        access_log=access_log,
    )
