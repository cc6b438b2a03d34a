"""Role grants: /v3/{projects,domains}/{id}/{users,groups}/{id}/roles[/{role}],
/v3/system/{users,groups}/{id}/roles[/{role}] and their OS-INHERIT twins
(/v3/OS-INHERIT/.../roles[/{role}]/inherited_to_projects).

The 24 routes are one table: each (target kind, actor kind, inherited) triple gets the same
four handlers, built by :func:`_register`. The handlers read their ids from the path
(``ctx.request.path_params``) instead of declaring them: FastAPI builds a pydantic validator
for every declared parameter of every route, and for these 40 routes those were 2 % of
`pocketstack up`'s start, to check that strings are strings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api.common import RequestContext, collection, no_content
from pocketstack.identity.api.deps import Ctx
from pocketstack.identity.exceptions import NotFound
from pocketstack.identity.service.assignment import Actor, Target

router = APIRouter()


def _actor(kind: str, actor_id: str) -> Actor:
    return Actor(user_id=actor_id) if kind == "users" else Actor(group_id=actor_id)


def _target(kind: str, target_id: str) -> Target:
    if kind == "projects":
        return Target(project_id=target_id)
    if kind == "domains":
        return Target(domain_id=target_id)
    return Target(system=True)


def _policy_target(ctx: RequestContext, target: Target, actor: Actor) -> dict[str, Any]:
    """The grant's target and actor as the policy sees them (Keystone's: a domain admin
    needs both the target and the actor in its domain). Entities that do not exist are
    left out, so the policy answers 403 before anyone learns whether they exist."""
    out: dict[str, Any] = {}
    with contextlib.suppress(NotFound):
        if actor.user_id:
            out["user"] = ctx.identity.users.get_user(actor.user_id)
        else:
            out["group"] = ctx.identity.users.get_group(actor.group_id or "")
    with contextlib.suppress(NotFound):
        if target.project_id:
            out["project"] = ctx.identity.resource.get_project(target.project_id)
        elif target.domain_id:
            out["domain"] = {"id": target.domain_id}
    return out


def _actions(target_kind: str) -> dict[str, str]:
    if target_kind == "system":
        return {"check": "identity:check_system_grant", "list": "identity:list_system_grants",
                "create": "identity:create_system_grant",
                "revoke": "identity:revoke_system_grant"}
    return {"check": "identity:check_grant", "list": "identity:list_grants",
            "create": "identity:create_grant", "revoke": "identity:revoke_grant"}


def _role_id(ctx: RequestContext) -> str:
    return str(ctx.request.path_params["role_id"])


def _register(target_kind: str, actor_kind: str, inherited: bool) -> None:
    prefix = "/v3/OS-INHERIT" if inherited else "/v3"
    target_part = "/system" if target_kind == "system" else f"/{target_kind}/{{target_id}}"
    base = f"{prefix}{target_part}/{actor_kind}/{{actor_id}}/roles"
    suffix = "/inherited_to_projects" if inherited else ""
    actions = _actions(target_kind)

    def parts(ctx: RequestContext, action: str) -> tuple[Actor, Target]:
        ids = ctx.request.path_params
        target = _target(target_kind, ids.get("target_id", "system"))
        actor = _actor(actor_kind, ids["actor_id"])
        ctx.enforce(actions[action], _policy_target(ctx, target, actor))
        return actor, target

    def list_grants(ctx: Ctx, request: Request) -> JSONResponse:
        actor, target = parts(ctx, "list")
        roles = ctx.identity.assignments.list_grants(actor, target, inherited=inherited)
        return collection(ctx, request, "roles", roles, "roles")

    def check_grant(ctx: Ctx) -> Response:
        actor, target = parts(ctx, "check")
        ctx.identity.assignments.check_grant(_role_id(ctx), actor, target, inherited=inherited)
        return no_content()

    def create_grant(ctx: Ctx) -> Response:
        actor, target = parts(ctx, "create")
        ctx.identity.assignments.create_grant(_role_id(ctx), actor, target, inherited=inherited)
        return no_content()

    def revoke_grant(ctx: Ctx) -> Response:
        actor, target = parts(ctx, "revoke")
        ctx.identity.assignments.delete_grant(_role_id(ctx), actor, target, inherited=inherited)
        return no_content()

    name = f"{target_kind}_{actor_kind}{'_inherited' if inherited else ''}"
    routes: list[tuple[str, list[str], Callable[..., Any], str]] = [
        (f"{base}{suffix}", ["GET", "HEAD"], list_grants, "list"),
        (f"{base}/{{role_id}}{suffix}", ["GET", "HEAD"], check_grant, "check"),
        (f"{base}/{{role_id}}{suffix}", ["PUT"], create_grant, "create"),
        (f"{base}/{{role_id}}{suffix}", ["DELETE"], revoke_grant, "revoke"),
    ]
    for path, methods, handler, verb in routes:
        router.add_api_route(path, handler, methods=methods, name=f"{verb}_grant_{name}")


for _target_kind in ("projects", "domains", "system"):
    for _actor_kind in ("users", "groups"):
        _register(_target_kind, _actor_kind, inherited=False)
        if _target_kind != "system":
            _register(_target_kind, _actor_kind, inherited=True)
