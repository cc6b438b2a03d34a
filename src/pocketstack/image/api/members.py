"""/v2/images/{id}/members[/{member_id}]: share an image with projects, and answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from pocketstack.image.api import views
from pocketstack.image.api.common import Body, Ctx, RequestContext, json_response, no_content
from pocketstack.image.exceptions import NotFound, PolicyForbidden
from pocketstack.image.service.records import ImageRecord

router = APIRouter(prefix="/v2/images/{image_id}/members")


async def _image(ctx: RequestContext, action: str, image_id: str,
                 **extra: Any) -> ImageRecord:
    """The image, and ``action`` enforced on it with the caller's membership."""
    image = await ctx.image_for("get_image", image_id)
    ctx.enforce(action, {**await ctx.member_target(image), **extra})
    return image


@router.get("")
async def list_members(ctx: Ctx, image_id: str) -> JSONResponse:
    image = await _image(ctx, "get_members", image_id)
    members = await ctx.hub.members.list_members(ctx.caller, image)
    return json_response({"members": [views.member(m) for m in members],
                          "schema": "/v2/schemas/members"})


@router.post("")
async def add_member(ctx: Ctx, image_id: str, body: Body) -> JSONResponse:
    image = await _image(ctx, "add_member", image_id)
    member = await ctx.hub.members.add(image, body)
    return json_response(views.member(member))


@router.get("/{member_id}")
async def show_member(ctx: Ctx, image_id: str, member_id: str) -> JSONResponse:
    try:
        image = await _image(ctx, "get_member", image_id)
    except PolicyForbidden as exc:  # Glance hides what the caller may not read
        raise NotFound(exc.message) from exc
    member = await ctx.hub.members.get(ctx.caller, image, member_id)
    return json_response(views.member(member))


@router.put("/{member_id}")
async def update_member(ctx: Ctx, image_id: str, member_id: str, body: Body) -> JSONResponse:
    image = await _image(ctx, "modify_member", image_id, member_id=member_id)
    member = await ctx.hub.members.update(ctx.caller, image, member_id, body)
    return json_response(views.member(member))


@router.delete("/{member_id}")
async def delete_member(ctx: Ctx, image_id: str, member_id: str) -> Response:
    image = await _image(ctx, "delete_member", image_id)
    await ctx.hub.members.delete(ctx.caller, image, member_id)
    return no_content()
