"""The token handlers: issue (``POST``), validate (``GET``) and check (``HEAD``)
``/v3/auth/tokens``.

Token validation is the hottest path of the whole cloud (every other service validates each
request's token), so ``GET``/``HEAD /v3/auth/tokens`` stay on the event loop when both tokens
are in the validation cache and only hop to a thread to resolve a stale one. A rescoping
``POST`` whose parent token and scope are in memory is answered on the loop too; anything
with a secret to check (or a lookup to make) runs in one thread hop. A token's rendered body
is kept with the token (:attr:`TokenInfo.memo`), and so is the caller's policy decision.

Both the plain ASGI route in :mod:`.token_routes` (which answers these three ahead of
FastAPI, and serves before FastAPI is imported) and the FastAPI routes in :mod:`.auth`
call them. So this module, like :mod:`.common`, never imports FastAPI.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api.common import (
    RequestContext,
    envelope,
    flag,
    json_bytes,
    validate_token,
)
from pocketstack.identity.exceptions import ValidationError
from pocketstack.identity.service.common import NeedsDatabase
from pocketstack.identity.service.tokens import TokenInfo


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
    info = await subject(ctx, request, "identity:validate_token")
    return await _respond(ctx, request, info, 200)


async def check(ctx: RequestContext, request: HTTPConnection) -> Response:
    """``HEAD /v3/auth/tokens``: 200 when the subject token is valid."""
    info = await subject(ctx, request, "identity:check_token")
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


async def subject(ctx: RequestContext, request: HTTPConnection, action: str) -> TokenInfo:
    """The token named by ``X-Subject-Token``, once the caller may ``action`` on it."""
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
