"""/v3/users: users, their password, groups, projects; application credentials and access
rules live in :mod:`application_credentials`."""

from __future__ import annotations

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
from pocketstack.identity.service.role_assignments import effective_project_ids

router = APIRouter(prefix="/v3/users")
KEY, PATH = "user", "users"


def _target(ctx: RequestContext, user_id: str) -> dict[str, Any]:
    return {"user": ctx.identity.users.get_user(user_id)}


@router.api_route("", methods=["GET", "HEAD"])
def list_users(ctx: Ctx, request: Request) -> JSONResponse:
    wanted = ctx.scoped_filters(filters(request, "name", "domain_id", "enabled"))
    ctx.enforce("identity:list_users", {"domain_id": wanted.get("domain_id")})
    return collection(ctx, request, "users", ctx.identity.users.list_users(filters=wanted), PATH)


@router.post("")
def create_user(ctx: Ctx, body: Body) -> JSONResponse:
    data = validate(schemas.UserCreate, envelope(body, KEY))
    data["domain_id"] = data.get("domain_id") or ctx.default_domain_id()
    ctx.enforce("identity:create_user", {"user": {"domain_id": data["domain_id"]}})
    return member(ctx, KEY, ctx.identity.users.create_user(data), PATH, 201)


@router.api_route("/{user_id}", methods=["GET", "HEAD"])
def get_user(ctx: Ctx, user_id: str) -> JSONResponse:
    ctx.enforce("identity:get_user", _target(ctx, user_id))
    return member(ctx, KEY, ctx.identity.users.get_user(user_id), PATH)


@router.patch("/{user_id}")
def update_user(ctx: Ctx, user_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_user", _target(ctx, user_id))
    raw = envelope(body, KEY)
    data = validate(schemas.UserUpdate, {k: v for k, v in raw.items() if k != "domain_id"})
    if "domain_id" in raw:
        data["domain_id"] = raw["domain_id"]
    return member(ctx, KEY, ctx.identity.users.update_user(user_id, data), PATH)


@router.delete("/{user_id}")
def delete_user(ctx: Ctx, user_id: str) -> Response:
    ctx.enforce("identity:delete_user", _target(ctx, user_id))
    ctx.identity.users.delete_user(user_id)
    return no_content()


@router.post("/{user_id}/password")
def change_password(ctx: Ctx, user_id: str, body: Body) -> Response:
    """Unenforced, as in Keystone: the original password authorizes the change."""
    data = validate(schemas.PasswordChange, envelope(body, KEY))
    ctx.identity.users.change_password(user_id, data["original_password"], data["password"])
    return no_content()


@router.api_route("/{user_id}/groups", methods=["GET", "HEAD"])
def list_user_groups(ctx: Ctx, request: Request, user_id: str) -> JSONResponse:
    ctx.enforce("identity:list_groups_for_user", _target(ctx, user_id))
    groups = ctx.identity.users.groups_of(user_id)
    domain_id = ctx.authenticated().domain_id
    if domain_id is not None:  # a domain-scoped token sees its domain's groups only
        groups = [g for g in groups if g["domain_id"] == domain_id]
    return collection(ctx, request, "groups", groups, "groups")


@router.api_route("/{user_id}/projects", methods=["GET", "HEAD"])
def list_user_projects(ctx: Ctx, request: Request, user_id: str) -> JSONResponse:
    ctx.enforce("identity:list_user_projects", _target(ctx, user_id))
    wanted = filters(request, "name", "domain_id", "enabled")
    ids = effective_project_ids(ctx.identity, user_id)
    projects = ctx.identity.resource.list_projects(filters=wanted, ids=ids)
    return collection(ctx, request, "projects", projects, "projects")
