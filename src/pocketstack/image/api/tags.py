"""/v2/images/{id}/tags/{tag}: add (PUT) and remove (DELETE) one tag."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from pocketstack.image.api.common import Ctx, no_content

router = APIRouter(prefix="/v2/images/{image_id}/tags")


@router.put("/{tag}")
async def add_tag(ctx: Ctx, image_id: str, tag: str) -> Response:
    image = await ctx.image_for("add_tag", image_id)
    await ctx.hub.images.add_tag(image, tag)
    return no_content()


@router.delete("/{tag}")
async def delete_tag(ctx: Ctx, image_id: str, tag: str) -> Response:
    image = await ctx.image_for("delete_tag", image_id)
    await ctx.hub.images.delete_tag(image, tag)
    return no_content()
