"""Container listings under object versioning (Swift's ``ContainerContext``).

- A plain listing of a versioned container shows each current version (a link into the
  versions container) with the version's size and ETag, ``version_symlink: true`` and a
  ``symlink_path`` of ``/v1/<account>/<container>/<object>?version-id=<id>``.
- ``GET <container>?versions`` (JSON only, else 406) lists every version of every object,
  newest first per object: the container's own objects (version id ``null``) merged with
  the versions container's, each with ``version_id`` and ``is_latest``; ``marker`` with
  ``version_marker`` pages through the versions of one object.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any
from urllib.parse import unquote

from pocketstack.objectstore.exceptions import HTTPBadRequest, error_for_status
from pocketstack.objectstore.proxy import listing as listings
from pocketstack.objectstore.proxy.checks import true
from pocketstack.objectstore.proxy.middleware import rewrite
from pocketstack.objectstore.proxy.middleware.object_versioning_names import (
    DELETE_MARKER,
    RESERVED,
    object_prefix,
    parse_version_object,
    quoted,
    version_object,
)
from pocketstack.objectstore.proxy.pipeline import Handler
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.timestamp import Timestamp

Row = dict[str, Any]
LINK_KEYS = ("symlink_path", "symlink_etag", "symlink_bytes")


def link_target(row: Row) -> tuple[str, str, str] | None:
    """(account, container, object) a listed link points to, decoded."""
    if not all(key in row for key in LINK_KEYS):
        return None
    parts = unquote(str(row["symlink_path"])).split("/", 4)
    if len(parts) != 5:
        return None
    return parts[2], parts[3], parts[4]


def show_versions(rows: list[Row], versions: str, container: str, *, ids: bool) -> None:
    """Rows that are links to versions show the version's size and ETag (and, with
    ``ids``, a ``symlink_path`` naming the version by its id)."""
    for row in rows:
        target = link_target(row)
        if target is None or target[1] != versions:
            continue
        params = str(row["hash"]).partition(";")[2]
        row["bytes"] = int(row.pop("symlink_bytes"))
        row["version_symlink"] = True
        row["hash"] = str(row.pop("symlink_etag")) + (f";{params}" if params else "")
        name, version_id = parse_version_object(target[2])
        if version_id is not None and ids:
            path = quoted(f"/v1/{target[0]}/{container}/{name}")
            row["symlink_path"] = f"{path}?version-id={version_id}"


async def plain_listing(req: Request, next: Handler, versions: str) -> Response:
    """A versioned container's listing, in the client's format."""
    response, rows = await rewrite.json_listing(req, next)
    if response.status != 200:
        return response
    media = rewrite.listing_format(req)
    show_versions(rows, versions, req.container or "", ids=True)
    return rewrite.render_listing(req, response, rows, media)


# -- ?versions ----------------------------------------------------------------------------------
async def versions_listing(req: Request, next: Handler, versions: str | None) -> Response:
    """``GET <container>?versions``."""
    response, primary = await rewrite.json_listing(req, next)
    if response.status != 200:
        return response
    _json_only(req)
    params = _versions_params(req)
    if versions is not None:
        show_versions(primary, versions, req.container or "", ids=False)
    latest = _Latest.of(primary)
    archived, failure = await _archived(req, next, versions, params)
    if failure is not None:
        return failure
    rows = [*latest.null, *_mark_latest(archived, latest, req, versions or ""),
            *({"subdir": s} for s in sorted(latest.subdirs)), *latest.broken()]
    body = _merged(rows, reverse=true(req.query.get("reverse")),
                   limit=_limit(req))
    headers = {**rewrite.without(response.headers, ("content-length",)),
               "Content-Type": "application/json; charset=utf-8"}
    return Response(200, headers, body)


def _json_only(req: Request) -> None:
    """Version listings exist in JSON only (406 otherwise, as Swift)."""
    fmt = req.query.get("format")
    if fmt:
        if fmt.lower() != "json":
            raise error_for_status(406, listings.NOT_ACCEPTABLE_BODY,
                                   content_type="text/html; charset=UTF-8")
        return
    try:
        fits = listings.best_match(req.headers.get("accept"), ["application/json"])
    except ValueError as exc:
        raise HTTPBadRequest("Invalid Accept header") from exc
    if fits is None:
        raise error_for_status(406, listings.NOT_ACCEPTABLE_BODY,
                               content_type="text/html; charset=UTF-8")


def _versions_params(req: Request) -> dict[str, str]:
    """The listing query for the versions container (400 for bad markers/delimiters)."""
    query = req.query
    params = {k: query[k] for k in ("limit", "delimiter", "reverse") if query.get(k)}
    if query.get("prefix"):
        params["prefix"] = RESERVED + query["prefix"]
    if "marker" in query:
        marker = query["marker"]
        if "version_marker" not in query:
            params["marker"] = object_prefix(marker) + ":"  # past all of its versions
        elif query["version_marker"] == "null":
            params["marker"] = object_prefix(marker)  # before all of its versions
        else:
            try:
                stamp = Timestamp(query["version_marker"]).internal
            except ValueError as exc:
                raise HTTPBadRequest("invalid version_marker param") from exc
            params["marker"] = version_object(marker, stamp)
    elif "version_marker" in query:
        raise HTTPBadRequest("version_marker param requires marker")
    if set(params.get("delimiter", "")) & set("0123456789." + RESERVED):
        raise HTTPBadRequest("invalid delimiter param")
    return params


class _Latest:
    """What the container's own listing says: its plain objects (version ``null``), the
    versions its links point to, and its pseudo-directories."""

    def __init__(self) -> None:
        self.null: list[Row] = []
        self.links: dict[str, Row] = {}
        self.names: set[str] = set()
        self.subdirs: set[str] = set()

    @classmethod
    def of(cls, rows: list[Row]) -> _Latest:
        latest = cls()
        for row in rows:
            if "name" not in row:
                latest.subdirs.add(str(row["subdir"]))
            elif row.get("version_symlink"):
                latest.links[unquote(str(row["symlink_path"]))] = row
            else:
                latest.null.append({**row, "version_id": "null", "is_latest": True})
                latest.names.add(str(row["name"]))
        return latest

    def broken(self) -> list[Row]:
        """Links whose version was not listed (another page, or gone)."""
        rows = []
        for path, row in self.links.items():
            name, version_id = parse_version_object(path.split("/", 4)[-1])
            if version_id is None:
                continue
            rows.append({"name": name, "is_latest": True, "version_id": version_id,
                         "content_type": row["content_type"], "bytes": row["bytes"],
                         "hash": row["hash"], "last_modified": row["last_modified"]})
        return rows


def _mark_latest(archived: list[Row], latest: _Latest, req: Request, versions: str
                 ) -> list[Row]:
    """The versions container's rows as versions of the user's objects."""
    out = []
    for row in archived:
        if "name" not in row:
            parts = str(row["subdir"]).split(RESERVED)
            latest.subdirs.add(parts[1] if len(parts) > 1 else parts[0])
            continue
        name, version_id = parse_version_object(str(row["name"]))
        if version_id is None:
            continue
        path = f"/v1/{req.account}/{versions}/{row['name']}"
        current = latest.links.pop(path, None) is not None
        row["is_latest"] = current or (row["content_type"] == DELETE_MARKER
                                       and name not in latest.names)
        if row["is_latest"]:
            latest.names.add(name)
        row["name"], row["version_id"] = name, version_id
        out.append(row)
    return out


async def _archived(req: Request, next: Handler, versions: str | None,
                    params: dict[str, str]) -> tuple[list[Row], Response | None]:
    """The versions container's listing (nothing when there is none), or its failure."""
    if versions is None:
        return [], None
    sub = rewrite.preauthorized(req.subrequest(
        "GET", f"/{req.version}/{req.account}/{versions}", source="OV",
        query={**params, "format": "json"}), reserved=True)
    response = await rewrite.call(next, sub)
    if response.status == 404:
        return [], None
    if response.status != 200:
        return [], response if response.status // 100 != 2 else None
    return rewrite.json_rows(await rewrite.read_all(response)), None


def _merged(rows: list[Row], *, reverse: bool, limit: int) -> bytes:
    def key(row: Row) -> str:
        return str(row.get("name", row.get("subdir", "")))

    ordered = sorted(chain(rows), key=key, reverse=reverse)[:limit]
    return json.dumps(ordered).encode("ascii")


def _limit(req: Request) -> int:
    raw = req.query.get("limit", "")
    return int(raw) if raw.isascii() and raw.isdigit() else 10_000
