"""/v3/groups and their members."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api import schemas
from pocketstack.identity.api.common import (
    RequestContext,
    collection,
    envelope,
    filters,
    member,
    no_content,
    validate,
)
from pocketstack.identity.api.deps import Body, Ctx
from pocketstack.identity.exceptions import NotFound

router = APIRouter(prefix="/v3/groups")
KEY, PATH = "group", "groups"


def _target(ctx: RequestContext, group_id: str) -> dict[str, Any]:
    return {"group": ctx.identity.users.get_group(group_id)}


def _member_target(ctx: RequestContext, group_id: str, user_id: str) -> dict[str, Any]:
    """Group and user (Keystone's: a domain admin needs both in its domain); a user that
    does not exist is left out, so the policy answers before anyone learns that."""
    target = _target(ctx, group_id)
    with contextlib.suppress(NotFound):
        target["user"] = ctx.identity.users.get_user(user_id)
    return target


@router.api_route("", methods=["GET", "HEAD"])
def list_groups(ctx: Ctx, request: Request) -> JSONResponse:
    wanted = ctx.scoped_filters(filters(request, "name", "domain_id"))
    ctx.enforce("identity:list_groups", {"domain_id": wanted.get("domain_id")})
    return collection(ctx, request, "groups", ctx.identity.users.list_groups(filters=wanted),
                      PATH)


@router.post("")
def create_group(ctx: Ctx, body: Body) -> JSONResponse:
    data = validate(schemas.GroupCreate, envelope(body, KEY))
    data["domain_id"] = data.get("domain_id") or ctx.default_domain_id()
    ctx.enforce("identity:create_group", {"group": {"domain_id": data["domain_id"]}})
    return member(ctx, KEY, ctx.identity.users.create_group(data), PATH, 201)


@router.api_route("/{group_id}", methods=["GET", "HEAD"])
def get_group(ctx: Ctx, group_id: str) -> JSONResponse:
    ctx.enforce("identity:get_group", _target(ctx, group_id))
    return member(ctx, KEY, ctx.identity.users.get_group(group_id), PATH)


@router.patch("/{group_id}")
def update_group(ctx: Ctx, group_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_group", _target(ctx, group_id))
    raw = envelope(body, KEY)
    data = validate(schemas.GroupUpdate, {k: v for k, v in raw.items() if k != "domain_id"})
    if "domain_id" in raw:
        data["domain_id"] = raw["domain_id"]
    return member(ctx, KEY, ctx.identity.users.update_group(group_id, data), PATH)


@router.delete("/{group_id}")
def delete_group(ctx: Ctx, group_id: str) -> Response:
    ctx.enforce("identity:delete_group", _target(ctx, group_id))
    ctx.identity.users.delete_group(group_id)
    return no_content()


@router.api_route("/{group_id}/users", methods=["GET", "HEAD"])
def list_members(ctx: Ctx, request: Request, group_id: str) -> JSONResponse:
    ctx.enforce("identity:list_users_in_group", _target(ctx, group_id))
    wanted = filters(request, "name", "domain_id", "enabled")
    users = ctx.identity.users.list_members(group_id, filters=wanted)
    return collection(ctx, request, "users", users, "users")


@router.put("/{group_id}/users/{user_id}")
def add_member(ctx: Ctx, group_id: str, user_id: str) -> Response:
    ctx.enforce("identity:add_user_to_group", _member_target(ctx, group_id, user_id))
    ctx.identity.users.add_member(group_id, user_id)
    return no_content()


@router.api_route("/{group_id}/users/{user_id}", methods=["GET", "HEAD"])
def check_member(ctx: Ctx, group_id: str, user_id: str) -> Response:
    ctx.enforce("identity:check_user_in_group", _member_target(ctx, group_id, user_id))
    ctx.identity.users.check_member(group_id, user_id)
    return no_content()


@router.delete("/{group_id}/users/{user_id}")
def remove_member(ctx: Ctx, group_id: str, user_id: str) -> Response:
    ctx.enforce("identity:remove_user_from_group", _member_target(ctx, group_id, user_id))
    ctx.identity.users.remove_member(group_id, user_id)
    return no_content()
