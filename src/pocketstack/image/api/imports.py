"""Interoperable image import and discovery: POST /v2/images/{id}/import,
GET /v2/info/import, GET /v2/info/stores[/detail].

Only ``glance-direct`` is offered (stage, then import); ``web-download`` and the others are
refused as Glance refuses a method it does not enable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from pocketstack.image.api.common import Body, Ctx, json_response
from pocketstack.image.exceptions import BadRequest
from pocketstack.image.store.swift import SwiftStore

router = APIRouter(prefix="/v2")
STORE_DESCRIPTIONS = {"swift": "Object storage (Swift) of this cloud",
                      "file": "Local files on the image service's host"}


def _method(body: Any, enabled: list[str]) -> str:
    if not isinstance(body, dict) or "method" not in body:
        raise BadRequest("Import request requires a 'method' field.")
    method = body["method"]
    if not isinstance(method, dict) or "name" not in method:
        raise BadRequest("Import request requires a 'name' field.")
    if method["name"] not in enabled:
        raise BadRequest(f"Unknown import method name '{method['name']}'.")
    for flag in ("all_stores_must_succeed", "all_stores"):
        if flag in body and not isinstance(body[flag], bool):
            raise BadRequest(f"'{flag}' must be boolean value only")
    return str(method["name"])


@router.post("/images/{image_id}/import")
async def import_image(ctx: Ctx, image_id: str, body: Body) -> Response:
    method = _method(body, list(ctx.hub.settings.import_methods))
    image = await ctx.image_for("import_image", image_id)
    await ctx.hub.data.start_import(image, method)
    return Response(status_code=202)


@router.get("/info/import")
async def import_info(ctx: Ctx) -> JSONResponse:
    ctx.enforce("import_info")
    return json_response({"import-methods": {
        "description": "Import methods available.", "type": "array",
        "value": list(ctx.hub.settings.import_methods)}})


def _store(ctx: Ctx) -> dict[str, Any]:
    store = ctx.hub.store
    return {"id": store.name, "description": STORE_DESCRIPTIONS.get(store.kind, store.kind),
            "default": "true"}


@router.get("/info/stores")
async def stores(ctx: Ctx) -> JSONResponse:
    ctx.enforce("stores_info")
    return json_response({"stores": [_store(ctx)]})


@router.get("/info/stores/detail")
async def stores_detail(ctx: Ctx) -> JSONResponse:
    ctx.enforce("stores_info_detail")
    store = ctx.hub.store
    properties: dict[str, Any] = {"chunk_size": ctx.hub.settings.chunk_size}
    if isinstance(store, SwiftStore):
        # As Glance's swift store reports them: above large_object_size an image is cut
        # into segments of large_object_chunk_size behind a static large object.
        properties.update(container=ctx.hub.settings.swift_container,
                          large_object_size=store.segment_size,
                          large_object_chunk_size=store.segment_size)
    return json_response({"stores": [{**_store(ctx), "type": store.kind,
                                      "properties": properties, "weight": 0}]})
