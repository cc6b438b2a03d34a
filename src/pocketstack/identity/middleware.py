"""What other services import to authenticate requests (our keystonemiddleware).

A service holds a :class:`TokenValidator` and turns each request's ``X-Auth-Token`` (and
``X-Service-Token``) into an :class:`AuthContext`: who is calling, on which scope, with
which roles. It never sees identity's tables; this module is the one seam between identity
and the services that stand on it.

``LocalValidator`` validates in-process against the identity service of the same process
(no network hop, the same token cache). A service on another host would validate with
``GET /v3/auth/tokens`` and cache the answer; that transport arrives with scale-out.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from starlette.concurrency import run_in_threadpool

from pocketstack.identity.exceptions import IdentityError, TokenNotFound
from pocketstack.identity.service.common import NeedsDatabase
from pocketstack.identity.service.hub import Identity
from pocketstack.identity.service.tokens import TokenInfo


class InvalidToken(Exception):
    """The token is unknown, expired, revoked, or its scope is gone."""


class AuthenticationFailed(Exception):
    """The credentials given (user, project, password) were refused."""


@dataclass(frozen=True)
class AccessRule:
    service: str
    method: str
    path: str


@dataclass(frozen=True)
class AuthContext:
    """The caller as a service sees it (never holds the password; holds the token id)."""

    token_id: str
    user_id: str
    user_name: str
    user_domain_id: str
    user_domain_name: str
    project_id: str | None
    project_name: str | None
    project_domain_id: str | None
    project_domain_name: str | None
    domain_id: str | None
    system: bool
    roles: frozenset[str]
    expires_at: datetime
    is_admin_project: bool = False
    app_cred_id: str | None = None
    access_rules: tuple[AccessRule, ...] | None = None

    def has_role(self, *names: str) -> bool:
        wanted = {n.lower() for n in names}
        return any(role.lower() in wanted for role in self.roles)

    def allows(self, service_type: str, method: str, path: str) -> bool:
        """Application credential access rules (None: unrestricted), as keystonemiddleware
        checks them: service type, method, and a path glob where ``*`` spans one segment
        and ``**`` any number."""
        if self.access_rules is None:
            return True
        return any(rule.service == service_type and rule.method == method
                   and path_matches(rule.path, path) for rule in self.access_rules)


def path_matches(pattern: str, path: str) -> bool:
    pattern_parts, path_parts = pattern.strip("/").split("/"), path.strip("/").split("/")
    return _match_parts(pattern_parts, path_parts)


def _match_parts(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match_parts(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _match_parts(rest, path[1:])


def context_from(info: TokenInfo) -> AuthContext:
    scope = info.scope
    project = scope.project
    rules = None
    if scope.app_cred is not None and scope.app_cred.get("access_rules"):
        rules = tuple(AccessRule(r["service"], r["method"], r["path"])
                      for r in scope.app_cred["access_rules"])
    return AuthContext(
        token_id=info.token_id, user_id=info.user_id, user_name=scope.user["name"],
        user_domain_id=scope.user["domain"]["id"], user_domain_name=scope.user["domain"]["name"],
        project_id=project["id"] if project else None,
        project_name=project["name"] if project else None,
        project_domain_id=project["domain"]["id"] if project else None,
        project_domain_name=project["domain"]["name"] if project else None,
        domain_id=info.domain_id, system=scope.system,
        roles=frozenset(info.role_names), expires_at=info.expires_at,
        is_admin_project=scope.is_admin_project,
        app_cred_id=info.payload.app_cred_id, access_rules=rules)


class TokenValidator(Protocol):
    async def validate(self, token: str) -> AuthContext:
        """The caller behind a token; InvalidToken if it is not valid now."""

    async def authenticate(self, user_name: str, project_name: str, password: str
                           ) -> AuthContext:
        """A new project-scoped token for a user and password in the Default domain (for
        Swift's v1.0 auth endpoint); AuthenticationFailed when refused."""


class LocalValidator:
    """Validation against the identity service running in this process."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    async def validate(self, token: str) -> AuthContext:
        """On the event loop when memory suffices (the usual case), else in a thread; the
        context is made once per validated token (it is immutable, as the token is)."""
        tokens = self.identity.tokens
        self.identity.reload_keys_if_rotated()
        try:
            try:
                info = tokens.validate(token, cached_only=True)
            except NeedsDatabase:
                info = await run_in_threadpool(tokens.validate, token)
        except TokenNotFound as exc:
            raise InvalidToken(str(exc)) from exc
        context: AuthContext | None = info.memo.get(AuthContext)
        if context is None:
            context = info.memo[AuthContext] = context_from(info)
        return context

    async def authenticate(self, user_name: str, project_name: str, password: str
                           ) -> AuthContext:
        auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user_name, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project_name, "domain": {"id": "default"}}}}
        try:
            info = await run_in_threadpool(self.identity.auth.authenticate, auth)
        except IdentityError as exc:
            raise AuthenticationFailed(exc.message) from exc
        return context_from(info)
