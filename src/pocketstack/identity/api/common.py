"""What every identity API module uses: the request context, body parsing and validation,
and Keystone's response shapes (members and collections with ``links``). Free of FastAPI:
the plain token route (`token_routes`) serves with it before FastAPI is even imported;
the routes' FastAPI dependencies are in `deps`.

Handlers follow four steps: enforce policy (``ctx.enforce``), validate input (``body`` +
a pydantic model), call the service, render (``member`` / ``collection``).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from pocketstack.common.policy import PolicyEngine
from pocketstack.identity.exceptions import (
    ForbiddenAction,
    SchemaValidationError,
    TokenNotFound,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)
from pocketstack.identity.service.common import NeedsDatabase
from pocketstack.identity.service.hub import Identity
from pocketstack.identity.service.tokens import TokenInfo

FALSE_STRINGS = frozenset({"0", "false", "no", "off"})
_BUILDING = threading.Lock()


class Model(BaseModel):
    """Base of request models: strict types (no "1" for 1), extra attributes kept.

    Each builds its validator when `validate` first uses it (a few tenths of a ms), not
    at import: built at import, the two dozen of them were 1.5 % of `pocketstack up`'s
    start, for requests most clouds rarely see."""

    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)


class Closed(Model):
    """A request model that refuses attributes it does not know."""

    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass
class RequestContext:
    identity: Identity
    policy: PolicyEngine
    token: TokenInfo | None
    request: HTTPConnection = field(repr=False)

    @functools.cached_property
    def base_url(self) -> str:
        """``scheme://host`` as the client addressed us (for links; worked out on use)."""
        return base_url(self.request)

    @property
    def user_id(self) -> str:
        return self.authenticated().user_id

    def authenticated(self) -> TokenInfo:
        if self.token is None:
            raise Unauthorized()
        return self.token

    def default_domain_id(self) -> str:
        """The domain a new entity lands in when the request names none: the token's."""
        token = self.authenticated()
        if token.scope.project is not None:
            return str(token.scope.project["domain"]["id"])
        return token.domain_id or "default"

    def credentials(self) -> dict[str, Any]:
        token = self.authenticated()
        project = token.scope.project
        return {"user_id": token.user_id, "roles": token.role_names,
                "project_id": token.project_id, "domain_id": token.domain_id,
                "project_domain_id": project["domain"]["id"] if project else None,
                "user_domain_id": token.scope.user["domain"]["id"],
                "system_scope": "all" if token.system else None,
                "is_admin_project": token.scope.is_admin_project}

    def scoped_filters(self, wanted: dict[str, Any]) -> dict[str, Any]:
        """List filters as Keystone applies them: a domain-scoped token lists within its
        domain, so ``domain_id`` defaults to the token's domain."""
        token = self.authenticated()
        if token.domain_id is not None and wanted.get("domain_id") is None:
            wanted["domain_id"] = token.domain_id
        return wanted

    def enforce(self, action: str, target: Mapping[str, Any] | None = None) -> None:
        """403 unless the policy allows the action on the target (401 without a token)."""
        credentials = self.credentials()
        if not self.policy.enforce(action, credentials, {"target": dict(target or {})}):
            raise ForbiddenAction(action=action)

    def allowed(self, action: str, target: Mapping[str, Any] | None = None) -> bool:
        return self.policy.enforce(action, self.credentials(), {"target": dict(target or {})})


def base_url(request: HTTPConnection) -> str:
    return f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"


async def context_of(request: HTTPConnection, identity: Identity, policy: PolicyEngine
                     ) -> RequestContext:
    """The request's context: its ``X-Auth-Token`` validated (401 when it is not valid)."""
    token_id = request.headers.get("x-auth-token")
    token = None
    if token_id:
        identity.reload_keys_if_rotated()
        try:
            token = await validate_token(identity, token_id)
        except TokenNotFound as exc:
            raise Unauthorized("The request you have made requires authentication.") from exc
    return RequestContext(identity, policy, token, request)


async def validate_token(identity: Identity, token_id: str, *, allow_expired: bool = False
                         ) -> TokenInfo:
    """Validate on the loop when memory suffices, else in a thread (TokenNotFound)."""
    try:
        return identity.tokens.validate(token_id, allow_expired=allow_expired,
                                        cached_only=True)
    except NeedsDatabase:
        return await run_in_threadpool(identity.tokens.validate, token_id,
                                       allow_expired=allow_expired)


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (400 when it is not one)."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if raw and ctype and ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise UnsupportedMediaType()
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("Malformed request body: the body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise SchemaValidationError(detail="The request body must be a JSON object.")
    return data


def envelope(body: Mapping[str, Any], key: str, *, required: bool = True,
             allowed: tuple[str, ...] = ()) -> dict[str, Any]:
    """The entity under ``key``; other top-level keys are refused as in Keystone's schemas."""
    unknown = set(body) - {key, *allowed}
    if unknown:
        raise SchemaValidationError(detail="Additional properties are not allowed "
                                    f"({', '.join(sorted(map(repr, unknown)))} were unexpected)")
    value = body.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise SchemaValidationError(detail=f"Invalid input for field '{key}': expected an "
                                    "object.")
    return value


def validate(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``data`` against ``model``; return only what the client sent, extras included."""
    if not model.__pydantic_complete__:
        # a deferred build (see Model), one thread at a time: handlers run in threads, and
        # older pydantic does not lock its rebuilds (another thread could validate
        # with a validator half made)
        with _BUILDING:
            model.model_rebuild()
    try:
        parsed = model.model_validate(dict(data))
    except PydanticValidationError as exc:
        raise SchemaValidationError(detail=_explain(exc)) from exc
    return parsed.model_dump(exclude_unset=True)


def _explain(exc: PydanticValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "body"
    if err["type"] == "extra_forbidden":
        return f"Additional properties are not allowed ('{field}' was unexpected)"
    if err["type"] == "missing":
        return f"'{field}' is a required property"
    return f"Invalid input for field '{field}': {err['msg']}"


def query_bool(value: str | None) -> bool | None:
    """Keystone's reading of boolean query values: anything but 0/false is true."""
    if value is None:
        return None
    return value.strip().lower() not in FALSE_STRINGS


def flag(request: HTTPConnection, name: str) -> bool:
    """A query flag such as ``?nocatalog`` or ``?effective`` (present and not false)."""
    query = request.scope.get("query_string", b"")
    params = _parsed_query(query) if len(query) <= 256 else request.query_params
    if name not in params:
        return False
    return bool(query_bool(params[name]))


@functools.lru_cache(maxsize=256)
def _parsed_query(query: bytes) -> QueryParams:
    """``request.query_params`` of the short query strings clients repeat (``?nocatalog``)."""
    return QueryParams(query)


def json_bytes(content: Any) -> bytes:
    """JSON as :class:`JSONResponse` renders it (compact, UTF-8, no NaN)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


def link(ctx: RequestContext, path: str) -> str:
    return f"{ctx.base_url}/v3/{path}"


def member(ctx: RequestContext, key: str, ref: Mapping[str, Any], path: str,
           status: int = 200) -> JSONResponse:
    return JSONResponse({key: with_links(ctx, ref, path)}, status_code=status)


def with_links(ctx: RequestContext, ref: Mapping[str, Any], path: str) -> dict[str, Any]:
    return {**ref, "links": {"self": link(ctx, f"{path}/{ref['id']}")}}


def collection(ctx: RequestContext, request: Request, key: str, refs: list[dict[str, Any]],
               path: str, *, linked: bool = True) -> JSONResponse:
    limit = ctx.identity.settings.identity.list_limit
    truncated = bool(limit) and len(refs) > limit
    if truncated:
        refs = refs[:limit]
    items = [with_links(ctx, r, path) for r in refs] if linked else refs
    query = f"?{request.url.query}" if request.url.query else ""
    body: dict[str, Any] = {key: items, "links": {
        "self": f"{ctx.base_url}{request.url.path}{query}", "previous": None, "next": None}}
    if truncated:
        body["truncated"] = True
    return JSONResponse(body)


def no_content() -> Response:
    return Response(status_code=204)


def filters(request: Request, *names: str) -> dict[str, Any]:
    """The query filters among ``names`` that the request sets (``enabled`` as a bool)."""
    out: dict[str, Any] = {}
    for name in names:
        if name in request.query_params:
            value: Any = request.query_params[name]
            out[name] = query_bool(value) if name == "enabled" else value
    return out
