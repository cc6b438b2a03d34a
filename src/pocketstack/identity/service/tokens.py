"""Tokens as the service sees them: issue, validate (cached), revoke.

The Fernet format itself lives in :mod:`pocketstack.identity.tokens`; this module turns a
payload into a :class:`TokenInfo` (user, scope, roles: what a token body and the auth
middleware need) and keeps those in memory, so that validating a token costs a decryption,
an in-memory revocation check and two dictionary lookups — no database query. Any identity
write bumps the hub's generation, which makes cached entries stale; they are re-resolved on
next use. ``cache_time`` bounds how long an entry lives regardless (for other processes'
writes).

The methods that may read the database take ``cached_only``: with it they answer from memory
or raise :class:`NeedsDatabase` (without side effects), so the API can try them on the event
loop and hop to a thread only when a read is needed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.identity import models as m
from pocketstack.identity.exceptions import TokenNotFound, Unauthorized
from pocketstack.identity.revocation import TokenValues
from pocketstack.identity.service.assignment import Target
from pocketstack.identity.service.common import NeedsDatabase, isotime
from pocketstack.identity.tokens import InvalidToken, TokenExpired, TokenFormatter, TokenPayload

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity

MAX_CACHED_TOKENS = 50_000
MAX_CACHED_SCOPES = 20_000


@dataclass(frozen=True, slots=True)
class ScopeInfo:
    """What a (user, scope, application credential) resolves to; shared by many tokens."""

    user: dict[str, Any]
    project: dict[str, Any] | None
    domain: dict[str, Any] | None
    system: bool
    roles: tuple[dict[str, str], ...]
    is_admin_project: bool
    app_cred: dict[str, Any] | None
    generation: int
    made_at: float


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A validated token: its payload plus the resolved user, scope and roles."""

    token_id: str
    payload: TokenPayload
    issued_at: datetime
    scope: ScopeInfo
    values: TokenValues = field(repr=False)
    # What the API derives from this token alone (its rendered body, policy decisions on
    # it), kept as long as the TokenInfo: the token never changes, and a write that could
    # change its roles or catalog makes it stale (re-resolved into a new TokenInfo).
    memo: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def user_id(self) -> str:
        return self.payload.user_id

    @property
    def project_id(self) -> str | None:
        return self.payload.project_id

    @property
    def domain_id(self) -> str | None:
        return self.payload.domain_id

    @property
    def system(self) -> bool:
        return self.scope.system

    @property
    def role_names(self) -> list[str]:
        return [r["name"] for r in self.scope.roles]

    @property
    def role_ids(self) -> set[str]:
        return {r["id"] for r in self.scope.roles}

    @property
    def expires_at(self) -> datetime:
        return self.payload.expires_at

    def body(self, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
        """Keystone's token body (``{"token": ...}`` content)."""
        body: dict[str, Any] = {
            "methods": list(self.payload.methods), "user": self.scope.user,
            "audit_ids": list(self.payload.audit_ids),
            "expires_at": isotime(self.payload.expires_at),
            "issued_at": isotime(self.issued_at)}
        if self.scope.project is not None:
            body["project"] = self.scope.project
            body["is_domain"] = False
            body["is_admin_project"] = self.scope.is_admin_project
        elif self.scope.domain is not None:
            body["domain"] = self.scope.domain
        elif self.scope.system:
            body["system"] = {"all": True}
        if self.scope.project or self.scope.domain or self.scope.system:
            body["roles"] = list(self.scope.roles)
        if self.scope.app_cred is not None:
            body["application_credential"] = self.scope.app_cred
        if catalog is not None:
            body["catalog"] = catalog
        return body


class TokenService:
    def __init__(self, hub: Identity, formatter: TokenFormatter) -> None:
        self.hub = hub
        self.formatter = formatter
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, TokenInfo] = OrderedDict()
        self._scopes: OrderedDict[tuple[Any, ...], ScopeInfo] = OrderedDict()

    # -- issue ---------------------------------------------------------------------------------
    def issue(self, payload: TokenPayload, *, cached_only: bool = False) -> TokenInfo:
        """Seal a payload (already authenticated and authorized) into a token."""
        token_id, issued_at = self.formatter.issue(payload)
        return self._info(token_id, payload, issued_at, cached_only=cached_only)

    # -- validate ------------------------------------------------------------------------------
    def validate_cached(self, token_id: str, *, allow_expired: bool = False) -> TokenInfo | None:
        """The token from memory alone, or None when it must be resolved (see `validate`).
        Raises TokenNotFound for a token that is invalid, expired or revoked."""
        with self._lock:
            info = self._tokens.get(token_id)
            if info is not None:
                self._tokens.move_to_end(token_id)
        if info is None or not self._fresh(info.scope):
            return None
        self._check_live(info, allow_expired)
        return info

    def validate(self, token_id: str, *, allow_expired: bool = False,
                 cached_only: bool = False) -> TokenInfo:
        """Validate a token (blocking: may query the database to resolve a stale scope,
        unless ``cached_only``: then NeedsDatabase is raised instead)."""
        info = self.validate_cached(token_id, allow_expired=allow_expired)
        if info is not None:
            return info
        window = timedelta(seconds=self.hub.settings.identity.allow_expired_window
                           if allow_expired else 0)
        try:
            payload, issued_at = self.formatter.unpack(token_id, allow_expired_for=window)
        except TokenExpired as exc:
            raise TokenNotFound("The token has expired.") from exc
        except InvalidToken as exc:
            raise TokenNotFound("Could not recognize Fernet token") from exc
        try:
            info = self._info(token_id, payload, issued_at, cached_only=cached_only)
        except Unauthorized as exc:
            raise TokenNotFound(f"Failed to validate token: {exc.message}") from exc
        self._check_live(info, allow_expired)
        return info

    def _check_live(self, info: TokenInfo, allow_expired: bool) -> None:
        now = datetime.now(UTC)
        grace = self.hub.settings.identity.allow_expired_window if allow_expired else 0
        if info.payload.expires_at + timedelta(seconds=grace) <= now:
            raise TokenNotFound("The token has expired.")
        if self.hub.revocations.is_revoked(info.values, info.issued_at):
            raise TokenNotFound("Failed to validate token")

    def revoke(self, token_id: str) -> None:
        info = self.validate(token_id)
        self.hub.revoke(audit_id=info.payload.audit_id)
        with self._lock:
            self._tokens.pop(token_id, None)

    # -- resolution ----------------------------------------------------------------------------
    def _info(self, token_id: str, payload: TokenPayload, issued_at: datetime, *,
              cached_only: bool = False) -> TokenInfo:
        scope = self.resolve_scope(payload, cached_only=cached_only)
        values = TokenValues.from_payload(
            payload, user_domain_id=scope.user["domain"]["id"],
            project_domain_id=scope.project["domain"]["id"] if scope.project else None,
            role_ids=[r["id"] for r in scope.roles])
        info = TokenInfo(token_id, payload, issued_at, scope, values)
        with self._lock:
            self._tokens[token_id] = info
            if len(self._tokens) > MAX_CACHED_TOKENS:
                self._tokens.popitem(last=False)
        return info

    def resolve_scope(self, payload: TokenPayload, *, cached_only: bool = False) -> ScopeInfo:
        key = (payload.user_id, payload.project_id, payload.domain_id, payload.system,
               payload.app_cred_id)
        with self._lock:
            cached = self._scopes.get(key)
        if cached is not None and self._fresh(cached):
            return cached
        if cached_only:
            raise NeedsDatabase()
        with self.hub.db.session() as s:
            scope = self._resolve(s, payload)
        with self._lock:
            self._scopes[key] = scope
            if len(self._scopes) > MAX_CACHED_SCOPES:
                self._scopes.popitem(last=False)
        return scope

    def _fresh(self, scope: ScopeInfo) -> bool:
        return (scope.generation == self.hub.generation
                and time.monotonic() - scope.made_at < self.hub.settings.identity.cache_time)

    def _resolve(self, s: Session, payload: TokenPayload) -> ScopeInfo:
        generation = self.hub.generation
        user = _live_user(s, payload.user_id)
        project = domain = None
        system = payload.system is not None
        if payload.project_id is not None:
            project = _live_project(s, payload.project_id)
            target = Target(project_id=payload.project_id)
        elif payload.domain_id is not None:
            domain = _live_domain(s, payload.domain_id)
            target = Target(domain_id=payload.domain_id)
        else:
            target = Target(system=True)
        scoped = project is not None or domain is not None or system
        role_ids = (self.hub.assignments.effective_role_ids(s, payload.user_id, target)
                    if scoped else set())
        app_cred = None
        if payload.app_cred_id is not None:
            app_cred, role_ids = self._app_cred_scope(s, payload.app_cred_id, role_ids)
        if scoped and not role_ids:
            raise Unauthorized(f"User {payload.user_id} has no access to the requested scope.")
        return ScopeInfo(
            user=user, project=project, domain=domain, system=system,
            roles=tuple(self.hub.assignments.roles_by_id(s, role_ids)),
            is_admin_project=payload.project_id is not None
            and payload.project_id == self.hub.admin_project_id,
            app_cred=app_cred, generation=generation, made_at=time.monotonic())

    def _app_cred_scope(self, s: Session, app_cred_id: str, role_ids: set[str]
                        ) -> tuple[dict[str, Any], set[str]]:
        row = s.scalar(select(m.ApplicationCredential)
                       .where(m.ApplicationCredential.id == app_cred_id))
        if row is None:
            raise Unauthorized("The application credential is gone.")
        if row.expires_at is not None and row.expires_at <= datetime.now(UTC).replace(
                tzinfo=None):
            raise Unauthorized("The application credential has expired.")
        granted = set(s.scalars(select(m.ApplicationCredentialRole.role_id).where(
            m.ApplicationCredentialRole.application_credential_id == row.internal_id)))
        ref = {"id": row.id, "name": row.name, "restricted": not row.unrestricted}
        rules = self.hub.app_creds._rules(s, row.internal_id)
        if rules:
            ref["access_rules"] = rules
        return ref, role_ids & self.hub.assignments._closure(s, granted)


def _live_user(s: Session, user_id: str) -> dict[str, Any]:
    user = s.get(m.User, user_id)
    if user is None:
        raise Unauthorized(f"Could not find user: {user_id}.")
    domain = s.get(m.Domain, user.domain_id)
    if not user.enabled or domain is None or not domain.enabled:
        raise Unauthorized(f"User {user_id} is disabled.")
    return {"id": user.id, "name": user.name,
            "domain": {"id": domain.id, "name": domain.name},
            "password_expires_at": isotime(user.password_expires_at)}


def _live_project(s: Session, project_id: str) -> dict[str, Any]:
    project = s.get(m.Project, project_id)
    if project is None:
        raise Unauthorized(f"Could not find project: {project_id}.")
    domain = s.get(m.Domain, project.domain_id)
    if not project.enabled or domain is None or not domain.enabled:
        raise Unauthorized(f"Project {project_id} is disabled.")
    return {"id": project.id, "name": project.name,
            "domain": {"id": domain.id, "name": domain.name}}


def _live_domain(s: Session, domain_id: str) -> dict[str, Any]:
    domain = s.get(m.Domain, domain_id)
    if domain is None or not domain.enabled:
        raise Unauthorized(f"Domain {domain_id} is disabled or does not exist.")
    return {"id": domain.id, "name": domain.name}
