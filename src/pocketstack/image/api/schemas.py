"""/v2/schemas/image(s) and /v2/schemas/member(s): the JSON schemas clients read."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from pocketstack.image.api.common import Ctx, json_response
from pocketstack.image.service.schema import ImageSchema

router = APIRouter(prefix="/v2/schemas")


@router.get("/image")
async def image(ctx: Ctx) -> JSONResponse:
    ctx.enforce("get_schemas")
    return json_response(ctx.hub.schema.image_document())


@router.get("/images")
async def images(ctx: Ctx) -> JSONResponse:
    ctx.enforce("get_schemas")
    return json_response(ctx.hub.schema.images_document())


@router.get("/member")
async def member(ctx: Ctx) -> JSONResponse:
    ctx.enforce("get_schemas")
    return json_response(ImageSchema.member_document())


@router.get("/members")
async def members(ctx: Ctx) -> JSONResponse:
    ctx.enforce("get_schemas")
    return json_response(ImageSchema.members_document())
