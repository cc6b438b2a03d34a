"""/v3/auth: issue, validate, check and revoke tokens; what a token may scope to.

Token validation is the hottest path of the whole cloud (every other service validates each
request's token), so ``GET``/``HEAD /v3/auth/tokens`` stay on the event loop when both tokens
are in the validation cache and only hop to a thread to resolve a stale one. A rescoping
``POST`` whose parent token and scope are in memory is answered on the loop too; anything
with a secret to check (or a lookup to make) runs in one thread hop. A token's rendered body
is kept with the token (:attr:`TokenInfo.memo`), and so is the caller's policy decision.

:func:`issue`, :func:`validate` and :func:`check` are the handlers proper: the FastAPI routes
below and the plain ASGI route in :mod:`.token_routes` (which answers these three ahead of
FastAPI) both call them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api.common import (
    Body,
    Ctx,
    RequestContext,
    envelope,
    flag,
    json_bytes,
    link,
    validate_token,
)
from pocketstack.identity.exceptions import Forbidden, ValidationError
from pocketstack.identity.service.assignment import Target
from pocketstack.identity.service.common import NeedsDatabase
from pocketstack.identity.service.role_assignments import (
    effective_domain_ids,
    effective_project_ids,
)
from pocketstack.identity.service.tokens import TokenInfo

router = APIRouter(prefix="/v3/auth")


# -- the handlers ------------------------------------------------------------------------------
async def issue(ctx: RequestContext, request: HTTPConnection, body: dict[str, Any]
                ) -> Response:
    """``POST /v3/auth/tokens``: 201 with the new token."""
    auth = envelope(body, "auth")
    ctx.identity.reload_keys_if_rotated()
    try:
        info = ctx.identity.auth.authenticate(auth, cached_only=True)
    except NeedsDatabase:
        return await run_in_threadpool(_issue, ctx, request, auth)
    return await _respond(ctx, request, info, 201)


async def validate(ctx: RequestContext, request: HTTPConnection) -> Response:
    """``GET /v3/auth/tokens``: the subject token's body."""
    info = await _subject(ctx, request, "identity:validate_token")
    return await _respond(ctx, request, info, 200)


async def check(ctx: RequestContext, request: HTTPConnection) -> Response:
    """``HEAD /v3/auth/tokens``: 200 when the subject token is valid."""
    info = await _subject(ctx, request, "identity:check_token")
    return Response(status_code=200, headers={"X-Subject-Token": info.token_id})


def token_response(ctx: RequestContext, request: HTTPConnection, info: TokenInfo,
                   status: int, *, cached_only: bool = False) -> Response:
    """The token's JSON body (rendered once per token and catalog choice)."""
    scoped = info.project_id or info.domain_id or info.system
    with_catalog = bool(scoped) and not flag(request, "nocatalog")
    body = info.memo.get(("body", with_catalog))
    if body is None:
        catalog = None
        if with_catalog:
            catalog = ctx.identity.catalog.catalog_for(
                user_id=info.user_id, project_id=info.project_id, domain_id=info.domain_id,
                cached_only=cached_only)
        body = info.memo["body", with_catalog] = json_bytes({"token": info.body(catalog)})
    return Response(body, status_code=status, headers={"X-Subject-Token": info.token_id},
                    media_type=JSONResponse.media_type)


def _issue(ctx: RequestContext, request: HTTPConnection, auth: dict[str, Any]) -> Response:
    info = ctx.identity.auth.authenticate(auth)
    return token_response(ctx, request, info, 201)


async def _respond(ctx: RequestContext, request: HTTPConnection, info: TokenInfo,
                   status: int) -> Response:
    try:
        return token_response(ctx, request, info, status, cached_only=True)
    except NeedsDatabase:  # the catalog is not in memory yet
        return await run_in_threadpool(token_response, ctx, request, info, status)


async def _subject(ctx: RequestContext, request: HTTPConnection, action: str) -> TokenInfo:
    caller = ctx.authenticated()
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise ValidationError(attribute="X-Subject-Token", target="headers")
    info = await validate_token(ctx.identity, subject,
                                allow_expired=flag(request, "allow_expired"))
    decision = ("allowed", ctx.policy, action, info.user_id)  # the caller's, on this target
    if not caller.memo.get(decision):
        ctx.enforce(action, {"token": {"user_id": info.user_id}})
        caller.memo[decision] = True
    return info


# -- the routes ---------------------------------------------------------------------------------
@router.post("/tokens")
async def issue_token(ctx: Ctx, request: Request, body: Body) -> Response:
    return await issue(ctx, request, body)


@router.get("/tokens")
async def validate_subject_token(ctx: Ctx, request: Request) -> Response:
    return await validate(ctx, request)


@router.head("/tokens")
async def check_token(ctx: Ctx, request: Request) -> Response:
    return await check(ctx, request)


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
