"""``/recon``: what this storage node's daemons report, and a way to run them now.

    GET  /recon/status        200: the node's status document (`daemons.recon`)
    POST /recon/<daemon>      200: run one pass of ``replicator``, ``auditor`` or
                              ``updater`` now, and answer its stats (waits for the pass)

Internal like every route of this server (the storage network only). A node started
without daemons (no rings) answers 404 to both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from starlette.responses import Response
from starlette.types import ASGIApp

from pocketstack.objectstore.server.app import Call, Handler, Recon, RouteKey
from pocketstack.objectstore.storage import wire
from pocketstack.objectstore.storage.exceptions import BadRequest, NotFound


def _recon(call: Call) -> Recon:
    if call.recon is None:
        raise NotFound("this storage node runs no daemons")
    return call.recon


def _json(document: Mapping[str, Any]) -> Response:
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return Response(body, media_type=wire.JSON_MEDIA_TYPE)


async def get_status(call: Call) -> ASGIApp:
    if call.args != ["status"]:
        raise BadRequest("recon answers GET /recon/status")
    return _json(await _recon(call).status())


async def run_daemon(call: Call) -> ASGIApp:
    recon = _recon(call)
    try:
        return _json(await recon.run(call.args[0]))
    except KeyError as exc:
        raise NotFound(f"no daemon {call.args[0]!r}") from exc


RECON_ROUTES: Final[Mapping[RouteKey, Handler]] = {
    ("recon", 1, "GET"): get_status,
    ("recon", 1, "POST"): run_daemon,
}
