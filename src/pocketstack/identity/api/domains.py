"""/v3/domains"""

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

router = APIRouter(prefix="/v3/domains")
KEY, PATH = "domain", "domains"


@router.api_route("", methods=["GET", "HEAD"])
def list_domains(ctx: Ctx, request: Request) -> JSONResponse:
    ctx.enforce("identity:list_domains")
    wanted = filters(request, "name", "enabled")
    refs = ctx.identity.resource.list_domains(**wanted)
    return collection(ctx, request, "domains", refs, PATH)


@router.post("")
def create_domain(ctx: Ctx, body: Body) -> JSONResponse:
    ctx.enforce("identity:create_domain")
    data = validate(schemas.DomainCreate, envelope(body, KEY))
    return member(ctx, KEY, ctx.identity.resource.create_domain(data), PATH, 201)


@router.api_route("/{domain_id}", methods=["GET", "HEAD"])
def get_domain(ctx: Ctx, domain_id: str) -> JSONResponse:
    ctx.enforce("identity:get_domain", {"domain": {"id": domain_id}})
    return member(ctx, KEY, ctx.identity.resource.get_domain(domain_id), PATH)


@router.patch("/{domain_id}")
def update_domain(ctx: Ctx, domain_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_domain", {"domain": {"id": domain_id}})
    data = validate(schemas.DomainUpdate, envelope(body, KEY))
    return member(ctx, KEY, ctx.identity.resource.update_domain(domain_id, data), PATH)


@router.delete("/{domain_id}")
def delete_domain(ctx: Ctx, domain_id: str) -> Response:
    ctx.enforce("identity:delete_domain", {"domain": {"id": domain_id}})
    ctx.identity.resource.delete_domain(domain_id)
    return no_content()
