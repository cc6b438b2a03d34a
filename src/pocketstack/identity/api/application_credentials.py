"""/v3/users/{user_id}/application_credentials and /v3/users/{user_id}/access_rules."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api import schemas
from pocketstack.identity.api.common import collection, envelope, link, no_content, validate
from pocketstack.identity.api.deps import Body, Ctx
from pocketstack.identity.exceptions import Forbidden, ValidationError

router = APIRouter(prefix="/v3/users/{user_id}")
KEY = "application_credential"


def _path(user_id: str) -> str:
    return f"users/{user_id}/application_credentials"


@router.post("/application_credentials")
def create_app_cred(ctx: Ctx, user_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:create_application_credential", {"user": {"id": user_id}})
    data = validate(schemas.AppCredCreate, envelope(body, KEY))
    token = ctx.authenticated()
    if token.scope.app_cred is not None and token.scope.app_cred["restricted"]:
        raise Forbidden("Using a restricted application credential to create another "
                        "application credential is not allowed.")
    if token.project_id is None:
        raise ValidationError("Application credentials need a project-scoped token.")
    for rule in data.get("access_rules") or []:
        if not rule.get("id") and not all(rule.get(k) for k in ("path", "method", "service")):
            raise ValidationError("An access rule needs an id, or path, method and service.")
    ref = ctx.identity.app_creds.create(user_id, token.project_id, data, token.role_ids)
    body_out = {**ref, "links": {"self": link(ctx, f"{_path(user_id)}/{ref['id']}")}}
    return JSONResponse({KEY: body_out}, status_code=201)


@router.api_route("/application_credentials", methods=["GET", "HEAD"])
def list_app_creds(ctx: Ctx, request: Request, user_id: str) -> JSONResponse:
    ctx.enforce("identity:list_application_credentials", {"user": {"id": user_id}})
    refs = ctx.identity.app_creds.list(user_id, name=request.query_params.get("name"))
    return collection(ctx, request, "application_credentials", refs, _path(user_id))


@router.api_route("/application_credentials/{app_cred_id}", methods=["GET", "HEAD"])
def get_app_cred(ctx: Ctx, user_id: str, app_cred_id: str) -> JSONResponse:
    ctx.enforce("identity:get_application_credential", {"user": {"id": user_id}})
    ref = ctx.identity.app_creds.get(user_id, app_cred_id)
    return JSONResponse({KEY: {**ref, "links": {
        "self": link(ctx, f"{_path(user_id)}/{app_cred_id}")}}})


@router.delete("/application_credentials/{app_cred_id}")
def delete_app_cred(ctx: Ctx, user_id: str, app_cred_id: str) -> Response:
    ctx.enforce("identity:delete_application_credential", {"user": {"id": user_id}})
    token = ctx.authenticated()
    if token.scope.app_cred is not None and token.scope.app_cred["restricted"]:
        raise Forbidden("Using a restricted application credential to delete application "
                        "credentials is not allowed.")
    ctx.identity.app_creds.delete(user_id, app_cred_id)
    return no_content()


@router.api_route("/access_rules", methods=["GET", "HEAD"])
def list_access_rules(ctx: Ctx, request: Request, user_id: str) -> JSONResponse:
    ctx.enforce("identity:list_access_rules", {"user": {"id": user_id}})
    refs = ctx.identity.app_creds.list_access_rules(user_id)
    return collection(ctx, request, "access_rules", refs, f"users/{user_id}/access_rules")


@router.api_route("/access_rules/{rule_id}", methods=["GET", "HEAD"])
def get_access_rule(ctx: Ctx, user_id: str, rule_id: str) -> JSONResponse:
    ctx.enforce("identity:get_access_rule", {"user": {"id": user_id}})
    ref = ctx.identity.app_creds.get_access_rule(user_id, rule_id)
    return JSONResponse({"access_rule": {**ref, "links": {
        "self": link(ctx, f"users/{user_id}/access_rules/{rule_id}")}}})


@router.delete("/access_rules/{rule_id}")
def delete_access_rule(ctx: Ctx, user_id: str, rule_id: str) -> Response:
    ctx.enforce("identity:delete_access_rule", {"user": {"id": user_id}})
    ctx.identity.app_creds.delete_access_rule(user_id, rule_id)
    return no_content()
