"""/v3/projects, their tags, and their place in the hierarchy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from pocketstack.identity.api import schemas
from pocketstack.identity.api.common import (
    RequestContext,
    collection,
    envelope,
    filters,
    flag,
    member,
    no_content,
    validate,
    with_links,
)
from pocketstack.identity.api.deps import Body, Ctx
from pocketstack.identity.exceptions import NotFound, ValidationError

router = APIRouter(prefix="/v3/projects")
KEY, PATH = "project", "projects"
LIST_FILTERS = ("name", "domain_id", "enabled", "parent_id", "is_domain", "tags", "tags-any",
                "not-tags", "not-tags-any")


def _target(ctx: RequestContext, project_id: str) -> dict[str, Any]:
    project = ctx.identity.resource.get_project(project_id)
    return {"project": project}


@router.api_route("", methods=["GET", "HEAD"])
def list_projects(ctx: Ctx, request: Request) -> JSONResponse:
    wanted = ctx.scoped_filters(filters(request, *LIST_FILTERS))
    ctx.enforce("identity:list_projects", {"domain_id": wanted.get("domain_id")})
    if wanted.pop("is_domain", "false").lower() in ("true", "1"):
        return collection(ctx, request, "projects", [], PATH)
    refs = ctx.identity.resource.list_projects(filters=wanted)
    return collection(ctx, request, "projects", refs, PATH)


@router.post("")
def create_project(ctx: Ctx, body: Body) -> JSONResponse:
    data = validate(schemas.ProjectCreate, envelope(body, KEY))
    if data.get("parent_id") and not data.get("domain_id"):
        data["domain_id"] = ctx.identity.resource.owning_domain(data["parent_id"])
    data["domain_id"] = data.get("domain_id") or ctx.default_domain_id()
    ctx.enforce("identity:create_project", {"project": {"domain_id": data["domain_id"]}})
    return member(ctx, KEY, ctx.identity.resource.create_project(data), PATH, 201)


@router.api_route("/{project_id}", methods=["GET", "HEAD"])
def get_project(ctx: Ctx, request: Request, project_id: str) -> JSONResponse:
    ctx.enforce("identity:get_project", _target(ctx, project_id))
    ref = ctx.identity.resource.get_project(project_id)
    resource = ctx.identity.resource
    if flag(request, "parents_as_list"):
        ref["parents"] = [{KEY: with_links(ctx, p, PATH)} for p in resource.parents(project_id)]
    elif flag(request, "parents_as_ids"):
        ref["parents"] = _ids_tree(resource.ancestor_ids(project_id))
    if flag(request, "subtree_as_list"):
        ref["subtree"] = [{KEY: with_links(ctx, p, PATH)} for p in resource.subtree(project_id)]
    elif flag(request, "subtree_as_ids"):
        ref["subtree"] = _subtree_ids(resource.subtree(project_id), project_id)
    return member(ctx, KEY, ref, PATH)


def _ids_tree(ancestor_ids: list[str]) -> dict[str, Any] | None:
    """Keystone's nested ``{parent: {grandparent: None}}`` form of the parents."""
    tree: dict[str, Any] | None = None
    for ancestor in reversed(ancestor_ids):
        tree = {ancestor: tree}
    return tree


def _subtree_ids(subtree: list[dict[str, Any]], root: str) -> dict[str, Any] | None:
    children: dict[str, list[str]] = {}
    for project in subtree:
        children.setdefault(project["parent_id"], []).append(project["id"])

    def build(node: str) -> dict[str, Any] | None:
        kids = children.get(node)
        return {kid: build(kid) for kid in kids} if kids else None

    return build(root)


@router.patch("/{project_id}")
def update_project(ctx: Ctx, project_id: str, body: Body) -> JSONResponse:
    raw = envelope(body, KEY)
    for immutable in ("domain_id", "parent_id", "is_domain"):
        if immutable in raw:
            raise ValidationError(f"Update of `{immutable}` is not allowed.")
    ctx.enforce("identity:update_project", _target(ctx, project_id))
    data = validate(schemas.ProjectUpdate, raw)
    return member(ctx, KEY, ctx.identity.resource.update_project(project_id, data), PATH)


@router.delete("/{project_id}")
def delete_project(ctx: Ctx, project_id: str) -> Response:
    ctx.enforce("identity:delete_project", _target(ctx, project_id))
    ctx.identity.resource.delete_project(project_id)
    return no_content()


# -- tags ---------------------------------------------------------------------------------------
@router.api_route("/{project_id}/tags", methods=["GET", "HEAD"])
def list_tags(ctx: Ctx, project_id: str) -> JSONResponse:
    ctx.enforce("identity:list_project_tags", _target(ctx, project_id))
    return JSONResponse({"tags": ctx.identity.resource.list_tags(project_id)})


@router.put("/{project_id}/tags")
def replace_tags(ctx: Ctx, project_id: str, body: Body) -> JSONResponse:
    ctx.enforce("identity:update_project_tags", _target(ctx, project_id))
    tags = body.get("tags")
    if set(body) - {"tags"} or not isinstance(tags, list):
        raise ValidationError("Invalid input for field 'tags': expected {\"tags\": [...]}.")
    return JSONResponse({"tags": ctx.identity.resource.replace_tags(project_id, tags)})


@router.delete("/{project_id}/tags")
def delete_tags(ctx: Ctx, project_id: str) -> Response:
    ctx.enforce("identity:delete_project_tags", _target(ctx, project_id))
    ctx.identity.resource.delete_tags(project_id)
    return no_content()


@router.api_route("/{project_id}/tags/{tag}", methods=["GET", "HEAD"])
def check_tag(ctx: Ctx, project_id: str, tag: str) -> Response:
    ctx.enforce("identity:get_project_tag", _target(ctx, project_id))
    if not ctx.identity.resource.has_tag(project_id, tag):
        raise NotFound(f"Tag {tag} not found for project {project_id}.")
    return no_content()


@router.put("/{project_id}/tags/{tag}")
def add_tag(ctx: Ctx, project_id: str, tag: str) -> Response:
    ctx.enforce("identity:create_project_tag", _target(ctx, project_id))
    ctx.identity.resource.add_tag(project_id, tag)
    return Response(status_code=201, headers={"Location": f"{ctx.base_url}/v3/projects/"
                                                          f"{project_id}/tags/{tag}"})


@router.delete("/{project_id}/tags/{tag}")
def delete_tag(ctx: Ctx, project_id: str, tag: str) -> Response:
    ctx.enforce("identity:delete_project_tag", _target(ctx, project_id))
    ctx.identity.resource.delete_tag(project_id, tag)
    return no_content()
