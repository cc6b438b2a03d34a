"""/v2/images: create, list, show, update (JSON patch), delete; deactivate/reactivate."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from pocketstack.image.api import views
from pocketstack.image.api.common import Body, Ctx, json_response, no_content, read_limited
from pocketstack.image.service import patch, query

router = APIRouter(prefix="/v2/images")


def _visibility_rule(visibility: object) -> str | None:
    return {"public": "publicize_image", "community": "communitize_image"}.get(
        str(visibility))


@router.post("")
async def create_image(ctx: Ctx, request: Request, body: Body) -> JSONResponse:
    base, extra, tags = ctx.hub.images.parse_create(ctx.caller, body)
    target = {"owner": base["owner"], "visibility": base["visibility"],
              "project_id": base["owner"]}
    ctx.enforce("add_image", target)
    rule = _visibility_rule(base["visibility"])
    if rule:
        ctx.enforce(rule, target)
    image = await ctx.hub.images.create(base, extra, tags)
    headers = {"Location": f"{request.base_url}v2/images/{image.id}",
               "OpenStack-image-import-methods": ",".join(ctx.hub.settings.import_methods),
               "OpenStack-image-store-ids": ctx.hub.store.name}
    return json_response(views.image(image, ctx.hub.schema.names), 201, headers)


@router.get("")
async def list_images(ctx: Ctx, request: Request) -> JSONResponse:
    ctx.enforce("get_images", {"project_id": ctx.caller.project_id})
    settings = ctx.hub.settings
    params = list(request.query_params.multi_items())
    wanted = query.parse(params, default_limit=settings.limit_param_default,
                         max_limit=settings.api_limit_max)
    records = await ctx.hub.images.list_images(ctx.caller, wanted)
    return json_response(views.images(records, ctx.hub.schema.names, params, wanted.limit))


@router.get("/{image_id}")
async def show_image(ctx: Ctx, image_id: str) -> JSONResponse:
    image = await ctx.image_for("get_image", image_id)
    return json_response(views.image(image, ctx.hub.schema.names))


@router.patch("/{image_id}")
async def update_image(ctx: Ctx, request: Request, image_id: str) -> JSONResponse:
    draft = patch.draft_of(request.headers.get("content-type", ""))
    raw = await read_limited(request, ctx.hub.settings.max_request_body_size)
    changes = patch.parse(draft, raw, ctx.hub.schema)
    image = await ctx.image_for("modify_image", image_id)
    for change in changes:
        rule = _visibility_rule(change.value) if change.name == "visibility" else None
        if rule:
            ctx.enforce(rule, ctx.target(image))
    updated = await ctx.hub.images.update(ctx.caller, image, changes)
    return json_response(views.image(updated, ctx.hub.schema.names))


@router.delete("/{image_id}")
async def delete_image(ctx: Ctx, image_id: str) -> Response:
    image = await ctx.image_for("delete_image", image_id)
    await ctx.hub.images.delete(image)
    return no_content()


@router.post("/{image_id}/actions/deactivate")
async def deactivate(ctx: Ctx, image_id: str) -> Response:
    image = await ctx.image_for("deactivate", image_id)
    await ctx.hub.images.set_active(image, False)
    return no_content()


@router.post("/{image_id}/actions/reactivate")
async def reactivate(ctx: Ctx, image_id: str) -> Response:
    image = await ctx.image_for("reactivate", image_id)
    await ctx.hub.images.set_active(image, True)
    return no_content()
