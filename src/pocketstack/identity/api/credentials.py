"""/v3/credentials (EC2 keys and other secrets, encrypted at rest)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api import schemas
from pocketstack.identity.api.common import (
    collection,
    envelope,
    filters,
    member,
    no_content,
    validate,
)
from pocketstack.identity.api.deps import Body, Ctx

router = APIRouter(prefix="/v3/credentials")
KEY, PATH = "credential", "credentials"


@router.api_route("", methods=["GET", "HEAD"])
def list_credentials(ctx: Ctx, request: Request) -> JSONResponse:
    wanted = filters(request, "user_id", "type")
    ctx.enforce("identity:list_credentials", {"credential": {"user_id": ctx.user_id}})
    refs = ctx.identity.credentials.list(**wanted)
    # A user sees only the credentials the policy lets it read (its own, unless admin).
    visible = [r for r in refs if ctx.allowed("identity:get_credential", {"credential": r})]
    return collection(ctx, request, "credentials", visible, PATH)


@router.post("")
def create_credential(ctx: Ctx, body: Body) -> JSONResponse:
    data = validate(schemas.CredentialCreate, envelope(body, KEY))
    ctx.enforce("identity:create_credential", {"credential": data})
    return member(ctx, KEY, ctx.identity.credentials.create(data), PATH, 201)


@router.api_route("/{credential_id}", methods=["GET", "HEAD"])
def get_credential(ctx: Ctx, credential_id: str) -> JSONResponse:
    ref = ctx.identity.credentials.get(credential_id)
    ctx.enforce("identity:get_credential", {"credential": ref})
    return member(ctx, KEY, ref, PATH)


@router.patch("/{credential_id}")
def update_credential(ctx: Ctx, credential_id: str, body: Body) -> JSONResponse:
    current = ctx.identity.credentials.get(credential_id)
    ctx.enforce("identity:update_credential", {"credential": current})
    data = validate(schemas.CredentialUpdate, envelope(body, KEY))
    if "user_id" in data:
        ctx.enforce("identity:update_credential", {"credential": data})
    return member(ctx, KEY, ctx.identity.credentials.update(credential_id, data), PATH)


@router.delete("/{credential_id}")
def delete_credential(ctx: Ctx, credential_id: str) -> Response:
    ctx.enforce("identity:delete_credential",
                {"credential": ctx.identity.credentials.get(credential_id)})
    ctx.identity.credentials.delete(credential_id)
    return no_content()
