"""Token revocation events, matched in memory on every token validation.

Fernet tokens cannot be deleted, so Keystone revokes them by *event*: "every token of
user U issued before T", "the token with audit id A", "every token scoped to project P
in domain D"... An event matches a token when every field the event sets equals the
token's, and the token was issued at or before the event's `issued_before`.

    event field      token field(s) it is compared with
    user_id          user_id
    project_id       project_id (the scope)
    domain_id        user_domain_id, domain_id (domain scope), project_domain_id
    role_id          role_ids (the token's effective roles, supplied by the caller)
    audit_id         audit_id (this token only)
    audit_chain_id   audit_chain_id (the token and every token rescoped from its chain)

Typical events: DELETE /v3/auth/tokens -> audit_id (or audit_chain_id); password change
or user disabled -> user_id; project or domain disabled -> project_id / domain_id;
assignment removed -> user_id + project_id (or + domain_id); role deleted -> role_id.

Matching is indexed, not scanned: each event is filed under the most selective field it
sets (`_INDEX_FIELDS` order), and a token only looks up the handful of buckets its own
values name, so a check costs O(fields + roles + events about this token).

Fernet timestamps have whole-second resolution, so a token issued in the same second as
an event but after it is considered revoked too (as in Keystone): safe, never lenient.

This module is pure: the identity service persists events, loads them into a
`RevocationList` at startup, adds new ones as it emits them and prunes periodically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pocketstack.identity.tokens import TokenPayload

#: Index preference, most selective first: an event is filed under the first it sets.
_INDEX_FIELDS = ("audit_id", "audit_chain_id", "user_id", "project_id", "domain_id", "role_id")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenValues:
    """The flattened view of a token that events are matched against.

    Only `user_id` and the audit ids come from the token itself; the domains of the user
    and of the scoped project, and the effective role ids, come from the identity
    service (which loads them anyway to render the token). Leave `role_ids` empty when
    `RevocationList.has_role_events` is False to skip resolving roles.
    """

    user_id: str
    audit_id: str
    audit_chain_id: str
    project_id: str | None = None
    domain_id: str | None = None
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    role_ids: frozenset[str] = frozenset()

    @classmethod
    def from_payload(
        cls,
        payload: TokenPayload,
        *,
        user_domain_id: str | None = None,
        project_domain_id: str | None = None,
        role_ids: Iterable[str] = (),
    ) -> TokenValues:
        return cls(
            user_id=payload.user_id,
            audit_id=payload.audit_id,
            audit_chain_id=payload.audit_chain_id,
            project_id=payload.project_id,
            domain_id=payload.domain_id,
            user_domain_id=user_domain_id,
            project_domain_id=project_domain_id,
            role_ids=frozenset(role_ids),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationEvent:
    """Revokes every token issued at or before `issued_before` that matches all set fields."""

    issued_before: datetime
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    role_id: str | None = None
    audit_id: str | None = None
    audit_chain_id: str | None = None
    revoked_at: datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        if self.issued_before.tzinfo is None or self.revoked_at.tzinfo is None:
            raise ValueError("revocation event times must be timezone-aware (UTC)")

    def matches(self, token: TokenValues, issued_at: datetime) -> bool:
        """True when this event revokes `token`, issued at `issued_at`."""
        if issued_at > self.issued_before:
            return False
        if self.user_id is not None and self.user_id != token.user_id:
            return False
        if self.project_id is not None and self.project_id != token.project_id:
            return False
        if self.domain_id is not None and self.domain_id not in (
            token.user_domain_id,
            token.domain_id,
            token.project_domain_id,
        ):
            return False
        if self.role_id is not None and self.role_id not in token.role_ids:
            return False
        if self.audit_id is not None and self.audit_id != token.audit_id:
            return False
        return self.audit_chain_id is None or self.audit_chain_id == token.audit_chain_id

    def to_dict(self) -> dict[str, Any]:
        """Keystone's OS-REVOKE rendering: set fields only, times in ISO 8601."""
        body: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("user_id", "project_id", "domain_id", "role_id", "audit_id")
            if getattr(self, name) is not None
        }
        if self.audit_chain_id is not None:
            body["audit_chain_id"] = self.audit_chain_id
        body["issued_before"] = self.issued_before.isoformat()
        body["revoked_at"] = self.revoked_at.isoformat()
        return body

    @property
    def index_key(self) -> tuple[str, str] | None:
        """(field, value) of the most selective field set, None for a match-all event."""
        for name in _INDEX_FIELDS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None


class RevocationList:
    """Revocation events in memory, indexed for per-validation checks.

    `max_token_lifetime` is the longest a token can be accepted after it was issued
    (token expiration plus any allow-expired window): an event older than that can no
    longer match a live token, and `prune` drops it.
    """

    def __init__(
        self, *, max_token_lifetime: timedelta, events: Iterable[RevocationEvent] = ()
    ) -> None:
        if max_token_lifetime <= timedelta(0):
            raise ValueError("max_token_lifetime must be positive")
        self.max_token_lifetime = max_token_lifetime
        self._reset()
        for event in events:
            self.add(event)

    def _reset(self) -> None:
        self._field2value2events: dict[str, dict[str, list[RevocationEvent]]] = {
            name: {} for name in _INDEX_FIELDS
        }
        self._match_all: list[RevocationEvent] = []
        self._count = 0
        self._latest_issued_before: datetime | None = None

    def __len__(self) -> int:
        return self._count

    @property
    def has_role_events(self) -> bool:
        """Whether any event needs the token's role ids (TokenValues.role_ids) to match."""
        return bool(self._field2value2events["role_id"])

    def add(self, event: RevocationEvent) -> None:
        """File `event` (adding the same event twice is harmless)."""
        key = event.index_key
        if key is None:
            bucket = self._match_all
        else:
            bucket = self._field2value2events[key[0]].setdefault(key[1], [])
        if event in bucket:
            return
        bucket.append(event)
        self._count += 1
        latest = self._latest_issued_before
        if latest is None or event.issued_before > latest:
            self._latest_issued_before = event.issued_before

    def is_revoked(self, token: TokenValues, issued_at: datetime) -> bool:
        """True when any event revokes `token` (issued at `issued_at`, the Fernet time)."""
        latest = self._latest_issued_before
        if latest is None or issued_at > latest:
            return False  # fast path: issued after every event
        for bucket in self._candidate_buckets(token):
            for event in bucket:
                if event.matches(token, issued_at):
                    return True
        return False

    def _candidate_buckets(self, token: TokenValues) -> Iterable[list[RevocationEvent]]:
        index = self._field2value2events
        candidates = [
            index["audit_id"].get(token.audit_id),
            index["audit_chain_id"].get(token.audit_chain_id),
            index["user_id"].get(token.user_id),
            self._match_all,
        ]
        if token.project_id is not None:
            candidates.append(index["project_id"].get(token.project_id))
        by_domain = index["domain_id"]
        if by_domain:
            for domain_id in {token.user_domain_id, token.domain_id, token.project_domain_id}:
                if domain_id is not None:
                    candidates.append(by_domain.get(domain_id))
        by_role = index["role_id"]
        if by_role:
            candidates.extend(by_role.get(role_id) for role_id in token.role_ids)
        return [bucket for bucket in candidates if bucket]

    def prune(self, now: datetime) -> int:
        """Drop events no live token can match any more; return how many were dropped."""
        horizon = now - self.max_token_lifetime
        kept = [event for event in self.events() if event.issued_before >= horizon]
        dropped = self._count - len(kept)
        if dropped:
            self._reset()
            for event in kept:
                self.add(event)
        return dropped

    def events(self, *, since: datetime | None = None) -> list[RevocationEvent]:
        """Every event (revoked at or after `since`, if given), oldest revocation first."""
        every = list(self._match_all)
        for value2events in self._field2value2events.values():
            for bucket in value2events.values():
                every.extend(bucket)
        if since is not None:
            every = [event for event in every if event.revoked_at >= since]
        return sorted(every, key=lambda event: event.revoked_at)
