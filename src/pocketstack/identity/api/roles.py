"""/v3/roles, implied roles (/v3/roles/{prior}/implies/{implied}) and /v3/role_inferences."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api import schemas
from pocketstack.identity.api.common import (
    RequestContext,
    collection,
    envelope,
    link,
    member,
    no_content,
    validate,
)
from pocketstack.identity.api.deps import Body, Ctx

router = APIRouter(prefix="/v3")
KEY, PATH = "role", "roles"


@router.api_route("/roles", methods=["GET", "HEAD"])
def list_roles(ctx: Ctx, request: Request) -> JSONResponse:
    domain_id = request.query_params.get("domain_id")
    # A domain reader sees the global roles (to grant them) and its domain's own roles.
    ctx.enforce("identity:list_roles", {"domain_id": domain_id or ctx.authenticated().domain_id})
    refs = ctx.identity.assignments.list_roles(name=request.query_params.get("name"),
                                               domain_id=domain_id)
    return collection(ctx, request, "roles", refs, PATH)


@router.post("/roles")
def create_role(ctx: Ctx, body: Body) -> JSONResponse:
    ctx.enforce("identity:create_role")
    data = validate(schemas.RoleCreate, envelope(body, KEY))
    return member(ctx, KEY, ctx.identity.assignments.create_role(data), PATH, 201)


@router.api_route("/roles/{role_id}", methods=["GET", "HEAD"])
def get_role(ctx: Ctx, role_id: str) -> JSONResponse:
    ref = ctx.identity.assignments.get_role(role_id)
    ctx.enforce("identity:get_role", {"role": ref})
    return member(ctx, KEY, ref, PATH)


@router.patch("/roles/{role_id}")
def update_role(ctx: Ctx, role_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_role")
    raw = envelope(body, KEY)
    data = validate(schemas.RoleUpdate, {k: v for k, v in raw.items() if k != "domain_id"})
    if "domain_id" in raw:
        data["domain_id"] = raw["domain_id"]
    return member(ctx, KEY, ctx.identity.assignments.update_role(role_id, data), PATH)


@router.delete("/roles/{role_id}")
def delete_role(ctx: Ctx, role_id: str) -> Response:
    ctx.enforce("identity:delete_role")
    ctx.identity.assignments.delete_role(role_id)
    return no_content()


def _linked(ctx: RequestContext, role: dict[str, Any]) -> dict[str, Any]:
    return {**role, "links": {"self": link(ctx, f"roles/{role['id']}")}}


def _inference(ctx: RequestContext, ref: dict[str, Any]) -> dict[str, Any]:
    implies = ref["implies"]
    return {"prior_role": _linked(ctx, ref["prior_role"]),
            "implies": [_linked(ctx, r) for r in implies] if isinstance(implies, list)
            else _linked(ctx, implies)}


@router.api_route("/roles/{prior_id}/implies", methods=["GET", "HEAD"])
def list_implied(ctx: Ctx, prior_id: str) -> JSONResponse:
    ctx.enforce("identity:list_implied_roles")
    ref = ctx.identity.assignments.list_implied(prior_id)
    return JSONResponse({"role_inference": _inference(ctx, ref),
                         "links": {"self": link(ctx, f"roles/{prior_id}/implies")}})


@router.put("/roles/{prior_id}/implies/{implied_id}")
def create_implied(ctx: Ctx, prior_id: str, implied_id: str) -> JSONResponse:
    ctx.enforce("identity:create_implied_role")
    ref = ctx.identity.assignments.create_implied(prior_id, implied_id)
    return JSONResponse({"role_inference": _inference(ctx, ref), "links": {
        "self": link(ctx, f"roles/{prior_id}/implies/{implied_id}")}}, status_code=201)


@router.get("/roles/{prior_id}/implies/{implied_id}")
def get_implied(ctx: Ctx, prior_id: str, implied_id: str) -> JSONResponse:
    ctx.enforce("identity:get_implied_role")
    ref = ctx.identity.assignments.get_implied(prior_id, implied_id)
    return JSONResponse({"role_inference": _inference(ctx, ref), "links": {
        "self": link(ctx, f"roles/{prior_id}/implies/{implied_id}")}})


@router.head("/roles/{prior_id}/implies/{implied_id}")
def check_implied(ctx: Ctx, prior_id: str, implied_id: str) -> Response:
    ctx.enforce("identity:get_implied_role")
    ctx.identity.assignments.get_implied(prior_id, implied_id)
    return no_content()


@router.delete("/roles/{prior_id}/implies/{implied_id}")
def delete_implied(ctx: Ctx, prior_id: str, implied_id: str) -> Response:
    ctx.enforce("identity:delete_implied_role")
    ctx.identity.assignments.delete_implied(prior_id, implied_id)
    return no_content()


@router.api_route("/role_inferences", methods=["GET", "HEAD"])
def list_inferences(ctx: Ctx) -> JSONResponse:
    ctx.enforce("identity:list_role_inference_rules")
    refs = ctx.identity.assignments.list_inferences()
    return JSONResponse({"role_inferences": [_inference(ctx, r) for r in refs],
                         "links": {"self": link(ctx, "role_inferences"), "previous": None,
                                   "next": None}})
