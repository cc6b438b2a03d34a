"""``POST /v3/auth/tokens``: who is asking (methods) and for what (scope).

Methods: ``password`` (user id, or name + domain), ``token`` (rescoping: the new token keeps
the old one's expiry and audit chain), ``application_credential`` (id, or name + user; the
scope is the credential's project and the roles its subset). Failures are a plain 401 with no
hint of which part was wrong, and are logged (never with the secret) with a running count.

The lookups by name or id (user, domain, project) are remembered when they succeed, under
the same rule as the token service's scope cache: an identity write in this process makes
them stale, and ``cache_time`` bounds their age (for other processes' writes). A rescoping
request whose parent token, lookups and scope are all in memory is answered with
``cached_only`` on the event loop, without a thread or a query. Password hashes are never
cached: every password check reads the stored hash.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.identity import models as m
from pocketstack.identity.exceptions import (
    Forbidden,
    NotFound,
    TokenNotFound,
    Unauthorized,
    ValidationError,
)
from pocketstack.identity.service.assignment import Target
from pocketstack.identity.service.common import NeedsDatabase
from pocketstack.identity.service.tokens import TokenInfo
from pocketstack.identity.tokens import TokenPayload, random_audit_id, rescoped_audit_ids

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity

LOG = logging.getLogger(__name__)
SUPPORTED_METHODS = ("password", "token", "application_credential")
MAX_CACHED_LOOKUPS = 20_000


class FailureCounter:
    """Counts authentication failures over the last minute, for the log line (no lockout)."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def record(self) -> int:
        now = time.monotonic()
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()
            return len(self._times)


class LookupCache:
    """Successful lookups (a key such as ``("project", name, domain_id)`` → an id), each
    with the hub's generation at the time of the read and its age."""

    def __init__(self, hub: Identity) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[str, int, float]] = OrderedDict()

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        value, generation, made_at = entry
        if generation != self.hub.generation or \
                time.monotonic() - made_at >= self.hub.settings.identity.cache_time:
            return None
        return value

    def put(self, key: Hashable, value: str, generation: int) -> None:
        """Remember ``value``, read from the database at ``generation`` (taken before the
        read, so that a write during the read leaves the entry stale)."""
        with self._lock:
            self._entries[key] = (value, generation, time.monotonic())
            self._entries.move_to_end(key)
            if len(self._entries) > MAX_CACHED_LOOKUPS:
                self._entries.popitem(last=False)


class _Session(contextlib.ExitStack):
    """A database session opened on first use, so that cached lookups open none; with
    ``cached_only`` a lookup that needs one raises NeedsDatabase instead."""

    def __init__(self, hub: Identity, *, cached_only: bool) -> None:
        super().__init__()
        self.hub = hub
        self.cached_only = cached_only
        self._session: Session | None = None

    def get(self) -> Session:
        if self._session is None:
            if self.cached_only:
                raise NeedsDatabase()
            self._session = self.enter_context(self.hub.db.session())
        return self._session


class AuthService:
    def __init__(self, hub: Identity) -> None:
        self.hub = hub
        self.failures = FailureCounter()
        self.lookups = LookupCache(hub)

    def authenticate(self, auth: Mapping[str, Any], *, cached_only: bool = False
                     ) -> TokenInfo:
        """Check the methods, resolve the scope and issue a token (blocking work; with
        ``cached_only`` memory only: NeedsDatabase when a method or lookup needs a read)."""
        identity = auth.get("identity")
        if not isinstance(identity, Mapping):
            raise ValidationError(attribute="identity", target="auth")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods or \
                not all(isinstance(x, str) for x in methods):
            raise ValidationError(attribute="methods", target="identity")
        unknown = [x for x in methods if x not in SUPPORTED_METHODS]
        if unknown:
            raise Unauthorized("Attempted to authenticate with an unsupported method.")
        if cached_only and any(x != "token" for x in methods):
            raise NeedsDatabase()  # a secret to check against the database
        outcome = _Outcome(cached_only=cached_only)
        for method in dict.fromkeys(methods):
            data = identity.get(method)
            if not isinstance(data, Mapping):
                raise ValidationError(attribute=method, target="identity")
            getattr(self, f"_method_{method}")(data, outcome)
        payload = self._payload(outcome, auth.get("scope"))
        return self.hub.tokens.issue(payload, cached_only=cached_only)

    # -- methods -------------------------------------------------------------------------------
    def _method_password(self, data: Mapping[str, Any], outcome: _Outcome) -> None:
        user = data.get("user")
        if not isinstance(user, Mapping):
            raise ValidationError(attribute="user", target="password")
        password = user.get("password")
        if not isinstance(password, str):
            raise ValidationError(attribute="password", target="user")
        who = user.get("id") or user.get("name")
        try:
            with _Session(self.hub, cached_only=False) as s:
                user_id = self._find_user(s, user)
        except NotFound:
            self.hub.users.verify_password("", "")  # same cost as a real check
            self._fail(f"password: no such user {who!r}")
        if not self.hub.users.verify_password(user_id, password):
            self._fail(f"password: wrong password for user {user_id}")
        outcome.add_user(user_id, "password")

    def _method_token(self, data: Mapping[str, Any], outcome: _Outcome) -> None:
        token_id = data.get("id")  # required, as in Keystone's schema
        if not isinstance(token_id, str) or not token_id:
            raise ValidationError(attribute="id", target="token")
        try:
            parent = self.hub.tokens.validate(token_id, cached_only=outcome.cached_only)
        except TokenNotFound:
            self._fail("token: invalid or revoked token")
        if parent.payload.app_cred_id is not None:
            raise Forbidden("Cannot rescope a token made with an application credential.")
        outcome.add_user(parent.user_id, "token", *parent.payload.methods)
        outcome.parent = parent.payload

    def _method_application_credential(self, data: Mapping[str, Any], outcome: _Outcome
                                       ) -> None:
        secret = data.get("secret")
        if not isinstance(secret, str):
            raise ValidationError(attribute="secret", target="application_credential")
        ident = dict(data)
        if not ident.get("id"):
            if not isinstance(data.get("user"), Mapping) or not data.get("name"):
                raise ValidationError(attribute="id or name and user",
                                      target="application_credential")
            try:
                with _Session(self.hub, cached_only=False) as s:
                    ident["user_id"] = self._find_user(s, data["user"])
            except NotFound:
                self._fail("application_credential: no such user")
        try:
            row = self.hub.app_creds.authenticate(ident, secret)
        except (NotFound, ValueError):
            self._fail(f"application_credential: rejected {ident.get('id') or ident.get('name')}")
        outcome.add_user(row.user_id, "application_credential")
        outcome.app_cred = (row.id, row.project_id)
        if row.expires_at is not None:  # its tokens die with it (Keystone caps the expiry)
            outcome.not_after = row.expires_at.replace(tzinfo=UTC)

    # -- scope ---------------------------------------------------------------------------------
    def _payload(self, outcome: _Outcome, scope: Any) -> TokenPayload:
        assert outcome.user_id is not None
        target = self._target(outcome, scope)
        expires = datetime.now(UTC) + timedelta(seconds=self.hub.settings.identity
                                                .token_expiration)
        audit_ids: tuple[str, ...] = (random_audit_id(),)
        if outcome.parent is not None:
            expires = min(expires, outcome.parent.expires_at)
            audit_ids = rescoped_audit_ids(outcome.parent)
        if outcome.not_after is not None:
            expires = min(expires, outcome.not_after)
        payload = TokenPayload(
            user_id=outcome.user_id, methods=tuple(outcome.methods), expires_at=expires,
            audit_ids=audit_ids, project_id=target.project_id, domain_id=target.domain_id,
            system="all" if target.system else None,
            app_cred_id=outcome.app_cred[0] if outcome.app_cred else None)
        try:
            self.hub.tokens.resolve_scope(payload, cached_only=outcome.cached_only)
        except Unauthorized as exc:
            self._fail(f"scope: {exc.message}")
        return payload

    def _target(self, outcome: _Outcome, scope: Any) -> Target:
        if outcome.app_cred is not None:
            if scope not in (None, "unscoped") and \
                    (not isinstance(scope, Mapping) or "project" not in scope):
                self._fail("application credentials cannot request a scope")
            return Target(project_id=outcome.app_cred[1])
        if scope is None:
            if outcome.cached_only:
                raise NeedsDatabase()
            return self._default_project(outcome.user_id or "")
        if scope == "unscoped":
            return Target(system=False)
        if not isinstance(scope, Mapping) or len(scope) != 1:
            raise ValidationError(attribute="project, domain, or system", target="scope")
        with _Session(self.hub, cached_only=outcome.cached_only) as s:
            if "project" in scope:
                return Target(project_id=self._find_project(s, scope["project"]))
            if "domain" in scope:
                return Target(domain_id=self._find_domain(s, scope["domain"]))
            if "system" in scope:
                if scope["system"] != {"all": True}:
                    raise ValidationError(attribute="all", target="system")
                return Target(system=True)
            if "OS-TRUST:trust" in scope:
                raise Forbidden("Trusts are not supported by this cloud.")
        raise ValidationError(attribute="project, domain, or system", target="scope")

    def _default_project(self, user_id: str) -> Target:
        """Keystone scopes an unscoped request to the user's default project when usable."""
        with self.hub.db.session() as s:
            user = s.get(m.User, user_id)
            project_id = user.default_project_id if user else None
            if project_id is None or s.get(m.Project, project_id) is None:
                return Target()
            if not self.hub.assignments.effective_role_ids(
                    s, user_id, Target(project_id=project_id)):
                return Target()
        return Target(project_id=project_id)

    # -- lookups -------------------------------------------------------------------------------
    def _find_user(self, s: _Session, user: Mapping[str, Any]) -> str:
        if user.get("id"):
            key: tuple[str, ...] = ("user-id", str(user["id"]))
            generation, cached = self.hub.generation, self.lookups.get(key)
            if cached is not None:
                return cached
            found = s.get().get(m.User, str(user["id"]))
            if found is None:
                raise NotFound.of("user", str(user["id"]))
            self.lookups.put(key, found.id, generation)
            return found.id
        if not isinstance(user.get("name"), str):
            raise ValidationError(attribute="id or name", target="user")
        domain_id = self._find_domain(s, user.get("domain"))
        key = ("user", user["name"], domain_id)
        generation, cached = self.hub.generation, self.lookups.get(key)
        if cached is not None:
            return cached
        user_id = s.get().scalar(select(m.User.id).where(m.User.name == user["name"],
                                                         m.User.domain_id == domain_id))
        if user_id is None:
            raise NotFound.of("user", str(user["name"]))
        self.lookups.put(key, user_id, generation)
        return user_id

    def _find_project(self, s: _Session, project: Any) -> str:
        if not isinstance(project, Mapping):
            raise ValidationError(attribute="project", target="scope")
        if project.get("id"):
            key: tuple[str, ...] = ("project-id", str(project["id"]))
            generation, cached = self.hub.generation, self.lookups.get(key)
            if cached is not None:
                return cached
            if s.get().get(m.Project, str(project["id"])) is None:
                self._fail(f"scope: no project {project['id']}")
            self.lookups.put(key, str(project["id"]), generation)
            return str(project["id"])
        if not isinstance(project.get("name"), str):
            raise ValidationError(attribute="id or name", target="project")
        domain_id = self._find_domain(s, project.get("domain"))
        key = ("project", project["name"], domain_id)
        generation, cached = self.hub.generation, self.lookups.get(key)
        if cached is not None:
            return cached
        project_id = s.get().scalar(select(m.Project.id).where(
            m.Project.name == project["name"], m.Project.domain_id == domain_id))
        if project_id is None:
            self._fail(f"scope: no project {project['name']!r}")
        self.lookups.put(key, project_id, generation)
        return project_id

    def _find_domain(self, s: _Session, domain: Any) -> str:
        """An enabled domain's id (by id or name); a 401 for a missing or disabled one."""
        if not isinstance(domain, Mapping):
            raise ValidationError(attribute="domain", target="scope or user")
        if domain.get("id"):
            key: tuple[str, ...] = ("domain-id", str(domain["id"]))
        elif isinstance(domain.get("name"), str):
            key = ("domain", domain["name"])
        else:
            raise ValidationError(attribute="id or name", target="domain")
        generation, cached = self.hub.generation, self.lookups.get(key)
        if cached is not None:
            return cached
        if key[0] == "domain-id":
            found = s.get().get(m.Domain, key[1])
        else:
            found = s.get().scalar(select(m.Domain).where(m.Domain.name == key[1]))
        if found is None:
            self._fail(f"no such domain {domain.get('id') or domain.get('name')!r}")
        if not found.enabled:
            self._fail(f"domain {found.id} is disabled")
        self.lookups.put(key, found.id, generation)
        return found.id

    def _fail(self, why: str) -> NoReturn:
        count = self.failures.record()
        LOG.warning("authentication failed (%s); %d failures in the last minute", why, count)
        raise Unauthorized()


class _Outcome:
    """What the methods established: one user, the method names, the credential used."""

    def __init__(self, *, cached_only: bool = False) -> None:
        self.cached_only = cached_only
        self.user_id: str | None = None
        self.methods: list[str] = []
        self.parent: TokenPayload | None = None
        self.app_cred: tuple[str, str | None] | None = None
        self.not_after: datetime | None = None

    def add_user(self, user_id: str, *methods: str) -> None:
        if self.user_id is not None and self.user_id != user_id:
            raise Unauthorized("The methods named different users.")
        self.user_id = user_id
        self.methods.extend(x for x in methods if x not in self.methods)
