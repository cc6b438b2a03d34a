"""/v3/auth: issue, validate, check and revoke tokens; what a token may scope to.

Token validation is the hottest path of the whole cloud (every other service validates each
request's token), so ``GET``/``HEAD /v3/auth/tokens`` stay on the event loop when both tokens
are in the validation cache and only hop to a thread to resolve a stale one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api.common import Body, Ctx, RequestContext, envelope, flag, link
from pocketstack.identity.exceptions import Forbidden, ValidationError
from pocketstack.identity.service.assignment import Target
from pocketstack.identity.service.role_assignments import (
    effective_domain_ids,
    effective_project_ids,
)
from pocketstack.identity.service.tokens import TokenInfo

router = APIRouter(prefix="/v3/auth")


def _token_response(ctx: RequestContext, request: Request, info: TokenInfo,
                    status: int) -> JSONResponse:
    catalog = None
    scoped = info.project_id or info.domain_id or info.system
    if scoped and not flag(request, "nocatalog"):
        catalog = ctx.identity.catalog.catalog_for(
            user_id=info.user_id, project_id=info.project_id, domain_id=info.domain_id)
    return JSONResponse({"token": info.body(catalog)}, status_code=status,
                        headers={"X-Subject-Token": info.token_id})


@router.post("/tokens")
async def issue_token(ctx: Ctx, request: Request, body: Body) -> JSONResponse:
    auth = envelope(body, "auth")
    ctx.identity.reload_keys_if_rotated()
    info = await run_in_threadpool(ctx.identity.auth.authenticate, auth)
    return await run_in_threadpool(_token_response, ctx, request, info, 201)


async def _subject(ctx: RequestContext, request: Request, action: str) -> TokenInfo:
    ctx.authenticated()
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise ValidationError(attribute="X-Subject-Token", target="headers")
    allow_expired = flag(request, "allow_expired")
    tokens = ctx.identity.tokens
    info = tokens.validate_cached(subject, allow_expired=allow_expired)
    if info is None:
        info = await run_in_threadpool(tokens.validate, subject, allow_expired=allow_expired)
    ctx.enforce(action, {"token": {"user_id": info.user_id}})
    return info


@router.get("/tokens")
async def validate_token(ctx: Ctx, request: Request) -> JSONResponse:
    info = await _subject(ctx, request, "identity:validate_token")
    if flag(request, "nocatalog"):
        return _token_response(ctx, request, info, 200)
    return await run_in_threadpool(_token_response, ctx, request, info, 200)


@router.head("/tokens")
async def check_token(ctx: Ctx, request: Request) -> Response:
    info = await _subject(ctx, request, "identity:check_token")
    return Response(status_code=200, headers={"X-Subject-Token": info.token_id})


@router.delete("/tokens")
async def revoke_token(ctx: Ctx, request: Request) -> Response:
    info = await _subject(ctx, request, "identity:revoke_token")
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
