"""/v3/auth: issue, validate, check and revoke tokens; what a token may scope to.

The token handlers proper are in :mod:`.token_handlers` (the plain ASGI route of
:mod:`.token_routes` calls them too); these are their FastAPI routes, and the others.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api import token_handlers
from pocketstack.identity.api.common import RequestContext, link
from pocketstack.identity.api.deps import Body, Ctx
from pocketstack.identity.exceptions import Forbidden
from pocketstack.identity.service.assignment import Target
from pocketstack.identity.service.role_assignments import (
    effective_domain_ids,
    effective_project_ids,
)

router = APIRouter(prefix="/v3/auth")


@router.post("/tokens")
async def issue_token(ctx: Ctx, request: Request, body: Body) -> Response:
    return await token_handlers.issue(ctx, request, body)


@router.get("/tokens")
async def validate_subject_token(ctx: Ctx, request: Request) -> Response:
    return await token_handlers.validate(ctx, request)


@router.head("/tokens")
async def check_token(ctx: Ctx, request: Request) -> Response:
    return await token_handlers.check(ctx, request)


@router.delete("/tokens")
async def revoke_token(ctx: Ctx, request: Request) -> Response:
    info = await token_handlers.subject(ctx, request, "identity:revoke_token")
    await run_in_threadpool(ctx.identity.tokens.revoke, info.token_id)
    return Response(status_code=204)


@router.api_route("/catalog", methods=["GET", "HEAD"])
def auth_catalog(ctx: Ctx) -> JSONResponse:
    token = ctx.authenticated()
    ctx.enforce("identity:get_auth_catalog")
    if token.project_id is None and token.domain_id is None and not token.system:
        raise Forbidden("A project-scoped token is required to produce a service catalog.")
    catalog = ctx.identity.catalog.catalog_for(user_id=token.user_id,
                                               project_id=token.project_id,
                                               domain_id=token.domain_id)
    return JSONResponse({"catalog": catalog, "links": {"self": link(ctx, "auth/catalog"),
                                                       "previous": None, "next": None}})


@router.api_route("/projects", methods=["GET", "HEAD"])
def auth_projects(ctx: Ctx) -> JSONResponse:
    ctx.enforce("identity:get_auth_projects")
    ids = effective_project_ids(ctx.identity, ctx.user_id)
    projects = ctx.identity.resource.list_projects(filters={"enabled": True}, ids=ids)
    enabled_domains = {d["id"] for d in ctx.identity.resource.list_domains(enabled=True)}
    projects = [p for p in projects if p["domain_id"] in enabled_domains]
    return _listing(ctx, "projects", projects, "auth/projects", "projects")


@router.api_route("/domains", methods=["GET", "HEAD"])
def auth_domains(ctx: Ctx) -> JSONResponse:
    ctx.enforce("identity:get_auth_domains")
    ids = effective_domain_ids(ctx.identity, ctx.user_id)
    domains = ctx.identity.resource.list_domains(enabled=True, ids=ids)
    return _listing(ctx, "domains", domains, "auth/domains", "domains")


@router.api_route("/system", methods=["GET", "HEAD"])
def auth_system(ctx: Ctx) -> JSONResponse:
    ctx.enforce("identity:get_auth_system")
    with ctx.identity.db.session() as s:
        roles = ctx.identity.assignments.effective_role_ids(s, ctx.user_id, Target(system=True))
    return JSONResponse({"system": [{"all": True}] if roles else [],
                         "links": {"self": link(ctx, "auth/system"), "previous": None,
                                   "next": None}})


def _listing(ctx: RequestContext, key: str, refs: list[dict[str, Any]], path: str,
             member_path: str) -> JSONResponse:
    items = [{**r, "links": {"self": link(ctx, f"{member_path}/{r['id']}")}} for r in refs]
    return JSONResponse({key: items, "links": {"self": link(ctx, path), "previous": None,
                                               "next": None}})
