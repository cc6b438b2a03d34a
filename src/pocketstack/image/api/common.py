"""What every image API module uses: the authenticated request context (policy, the image
the request is about), JSON bodies, and Glance's response shapes.

Handlers follow four steps: enforce policy (``ctx.enforce`` / ``ctx.image_for``), validate
input, call the service (``ctx.hub``), render (:mod:`.views`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import JSONResponse, Response

from pocketstack.common.policy import PolicyEngine
from pocketstack.identity.middleware import AuthContext, InvalidToken, TokenValidator
from pocketstack.image.exceptions import (
    BadRequest,
    NotFound,
    PolicyForbidden,
    RequestEntityTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from pocketstack.image.service.hub import ImageHub
from pocketstack.image.service.records import Caller, ImageRecord

SERVICE_TYPE = "image"


@dataclass
class RequestContext:
    hub: ImageHub
    policy: PolicyEngine
    auth: AuthContext
    caller: Caller
    credentials: dict[str, Any]

    def allowed(self, action: str, target: dict[str, Any] | None = None) -> bool:
        return self.policy.enforce(action, self.credentials, {"target": target or {}})

    def enforce(self, action: str, target: dict[str, Any] | None = None) -> None:
        """403 unless the policy allows ``action`` on ``target``."""
        if not self.allowed(action, target):
            raise PolicyForbidden(action=action)

    @staticmethod
    def target(image: ImageRecord) -> dict[str, Any]:
        """An image as policy rules see it (Glance's image target)."""
        return {"owner": image.owner, "visibility": image.visibility, "id": image.id,
                "project_id": image.owner, "status": image.status}

    async def member_target(self, image: ImageRecord) -> dict[str, Any]:
        """The image target plus the caller's membership (``member_id``, ``member_status``)
        when the caller's project is a member, as Glance's member policies see it."""
        target = self.target(image)
        project = self.caller.project_id
        if project is not None and project != image.owner:
            mine = await self.hub.db.run(self.hub.repo.members, image.id, project)
            if mine:
                target.update(member_id=project, member_status=mine[0].status)
        return target

    async def image_for(self, action: str, image_id: str) -> ImageRecord:
        """The image, checked for ``action``: 404 when the caller may not see it (also
        when the rule denies an image it may not read), 403 when it may only look."""
        image = await self.hub.images.get(self.caller, image_id)
        target = self.target(image)
        if not self.allowed("get_image", target):
            raise NotFound(f"No image found with ID {image_id}")
        if action != "get_image" and not self.allowed(action, target):
            raise PolicyForbidden(action=action)
        return image


def credentials_of(auth: AuthContext) -> dict[str, Any]:
    return {"user_id": auth.user_id, "project_id": auth.project_id,
            "roles": sorted(auth.roles), "domain_id": auth.domain_id,
            "system_scope": "all" if auth.system else None,
            "is_admin_project": auth.is_admin_project}


async def request_context(request: Request) -> RequestContext:
    """The caller behind ``X-Auth-Token`` (keystonemiddleware's 401 without one)."""
    validator: TokenValidator = request.app.state.validator
    token = request.headers.get("x-auth-token")
    www = {"WWW-Authenticate": f'Keystone uri="{request.app.state.auth_uri}"'}
    if not token:
        raise Unauthorized(headers=www)
    try:
        auth = await validator.validate(token)
    except InvalidToken as exc:
        raise Unauthorized(headers=www) from exc
    if not auth.allows(SERVICE_TYPE, request.method, request.url.path):
        raise Unauthorized(headers=www)
    policy: PolicyEngine = request.app.state.policy
    creds = credentials_of(auth)
    is_admin = policy.enforce("context_is_admin", creds, {"target": {}})
    caller = Caller(user_id=auth.user_id, project_id=auth.project_id, is_admin=is_admin)
    return RequestContext(request.app.state.hub, policy, auth, caller, creds)


Ctx = Annotated[RequestContext, Depends(request_context)]


async def json_body(request: Request) -> Any:
    """The request body as JSON (Glance's 400 when it is not), size-limited."""
    limit = request.app.state.hub.settings.max_request_body_size
    raw = await read_limited(request, limit)
    if not raw:
        raise BadRequest("Body expected in request.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Malformed JSON in request body.") from exc


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestEntityTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


Body = Annotated[Any, Depends(json_body)]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


def declared_size(request: Request) -> int | None:
    """The size a data upload announces (``Content-Length`` or the SDK's hint)."""
    for name in ("content-length", "x-openstack-image-size"):
        value = request.headers.get(name)
        if value and value.isdigit():
            return int(value)
    return None


def require_octet_stream(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/octet-stream":
        raise UnsupportedMediaType(f"Invalid content type {ctype or 'None'}")

