"""/v3/role_assignments: the grants as stored, or ``?effective`` as they act."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from pocketstack.identity.api.common import flag
from pocketstack.identity.api.deps import Ctx
from pocketstack.identity.exceptions import ValidationError
from pocketstack.identity.service.role_assignments import (
    AssignmentFilter,
    list_role_assignments,
)

router = APIRouter(prefix="/v3")


@router.api_route("/role_assignments", methods=["GET", "HEAD"])
def role_assignments(ctx: Ctx, request: Request) -> JSONResponse:
    q = request.query_params
    inherited_to = q.get("scope.OS-INHERIT:inherited_to")
    if inherited_to is not None and inherited_to != "projects":
        raise ValidationError("scope.OS-INHERIT:inherited_to must be 'projects'.")
    # Keystone: a domain-scoped token sees the assignments within its domain only.
    token_domain = ctx.authenticated().domain_id
    wanted = AssignmentFilter(
        user_id=q.get("user.id"), group_id=q.get("group.id"), role_id=q.get("role.id"),
        project_id=q.get("scope.project.id"), domain_id=q.get("scope.domain.id"),
        system=q.get("scope.system") == "all", inherited_only=inherited_to is not None,
        effective=flag(request, "effective"), include_names=flag(request, "include_names"),
        include_subtree=flag(request, "include_subtree"), within_domain=token_domain)
    if wanted.include_subtree:
        project = ctx.identity.resource.get_project(wanted.project_id or "") \
            if wanted.project_id else {"id": None, "domain_id": None}
        ctx.enforce("identity:list_role_assignments_for_tree", {"project": project})
    else:
        ctx.enforce("identity:list_role_assignments", {"domain_id": token_domain})
    refs = list_role_assignments(ctx.identity, wanted, ctx.base_url)
    query = f"?{request.url.query}" if request.url.query else ""
    return JSONResponse({"role_assignments": refs, "links": {
        "self": f"{ctx.base_url}{request.url.path}{query}", "previous": None, "next": None}})
