"""/v3/regions, /v3/services, /v3/endpoints."""

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

router = APIRouter(prefix="/v3")


# -- regions ------------------------------------------------------------------------------------
@router.api_route("/regions", methods=["GET", "HEAD"])
def list_regions(ctx: Ctx, request: Request) -> JSONResponse:
    ctx.enforce("identity:list_regions")
    refs = ctx.identity.catalog.list_regions(
        parent_region_id=request.query_params.get("parent_region_id"))
    return collection(ctx, request, "regions", refs, "regions")


@router.post("/regions")
def create_region(ctx: Ctx, body: Body) -> JSONResponse:
    ctx.enforce("identity:create_region")
    data = validate(schemas.RegionCreate, envelope(body, "region"))
    return member(ctx, "region", ctx.identity.catalog.create_region(data), "regions", 201)


@router.put("/regions/{region_id}")
def create_region_with_id(ctx: Ctx, region_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:create_region")
    data = validate(schemas.RegionCreate, envelope(body, "region"))
    ref = ctx.identity.catalog.create_region(data, region_id=region_id)
    return member(ctx, "region", ref, "regions", 201)


@router.api_route("/regions/{region_id}", methods=["GET", "HEAD"])
def get_region(ctx: Ctx, region_id: str) -> JSONResponse:
    ctx.enforce("identity:get_region")
    return member(ctx, "region", ctx.identity.catalog.get_region(region_id), "regions")


@router.patch("/regions/{region_id}")
def update_region(ctx: Ctx, region_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_region")
    data = validate(schemas.RegionUpdate, envelope(body, "region"))
    return member(ctx, "region", ctx.identity.catalog.update_region(region_id, data), "regions")


@router.delete("/regions/{region_id}")
def delete_region(ctx: Ctx, region_id: str) -> Response:
    ctx.enforce("identity:delete_region")
    ctx.identity.catalog.delete_region(region_id)
    return no_content()


# -- services -----------------------------------------------------------------------------------
@router.api_route("/services", methods=["GET", "HEAD"])
def list_services(ctx: Ctx, request: Request) -> JSONResponse:
    ctx.enforce("identity:list_services")
    refs = ctx.identity.catalog.list_services(**filters(request, "type", "name"))
    return collection(ctx, request, "services", refs, "services")


@router.post("/services")
def create_service(ctx: Ctx, body: Body) -> JSONResponse:
    ctx.enforce("identity:create_service")
    data = validate(schemas.ServiceCreate, envelope(body, "service"))
    return member(ctx, "service", ctx.identity.catalog.create_service(data), "services", 201)


@router.api_route("/services/{service_id}", methods=["GET", "HEAD"])
def get_service(ctx: Ctx, service_id: str) -> JSONResponse:
    ctx.enforce("identity:get_service")
    return member(ctx, "service", ctx.identity.catalog.get_service(service_id), "services")


@router.patch("/services/{service_id}")
def update_service(ctx: Ctx, service_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_service")
    data = validate(schemas.ServiceUpdate, envelope(body, "service"))
    ref = ctx.identity.catalog.update_service(service_id, data)
    return member(ctx, "service", ref, "services")


@router.delete("/services/{service_id}")
def delete_service(ctx: Ctx, service_id: str) -> Response:
    ctx.enforce("identity:delete_service")
    ctx.identity.catalog.delete_service(service_id)
    return no_content()


# -- endpoints ----------------------------------------------------------------------------------
@router.api_route("/endpoints", methods=["GET", "HEAD"])
def list_endpoints(ctx: Ctx, request: Request) -> JSONResponse:
    ctx.enforce("identity:list_endpoints")
    wanted = filters(request, "interface", "service_id", "region_id")
    refs = ctx.identity.catalog.list_endpoints(filters=wanted)
    return collection(ctx, request, "endpoints", refs, "endpoints")


@router.post("/endpoints")
def create_endpoint(ctx: Ctx, body: Body) -> JSONResponse:
    ctx.enforce("identity:create_endpoint")
    data = validate(schemas.EndpointCreate, envelope(body, "endpoint"))
    ref = ctx.identity.catalog.create_endpoint(data)
    return member(ctx, "endpoint", ref, "endpoints", 201)


@router.api_route("/endpoints/{endpoint_id}", methods=["GET", "HEAD"])
def get_endpoint(ctx: Ctx, endpoint_id: str) -> JSONResponse:
    ctx.enforce("identity:get_endpoint")
    return member(ctx, "endpoint", ctx.identity.catalog.get_endpoint(endpoint_id), "endpoints")


@router.patch("/endpoints/{endpoint_id}")
def update_endpoint(ctx: Ctx, endpoint_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_endpoint")
    data = validate(schemas.EndpointUpdate, envelope(body, "endpoint"))
    ref = ctx.identity.catalog.update_endpoint(endpoint_id, data)
    return member(ctx, "endpoint", ref, "endpoints")


@router.delete("/endpoints/{endpoint_id}")
def delete_endpoint(ctx: Ctx, endpoint_id: str) -> Response:
    ctx.enforce("identity:delete_endpoint")
    ctx.identity.catalog.delete_endpoint(endpoint_id)
    return no_content()
