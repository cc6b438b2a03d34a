"""Revocation events: every kind of event, time bounds, indexing and pruning."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pocketstack.identity.revocation import RevocationEvent, RevocationList, TokenValues
from pocketstack.identity.tokens import TokenPayload, random_audit_id, rescoped_audit_ids

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
BEFORE = T0 - timedelta(minutes=5)
AFTER = T0 + timedelta(seconds=1)
LIFETIME = timedelta(hours=1)


def _id() -> str:
    return uuid.uuid4().hex


def _token(**kwargs: object) -> TokenValues:
    audit_id = random_audit_id()
    fields: dict[str, object] = {
        "user_id": _id(),
        "audit_id": audit_id,
        "audit_chain_id": audit_id,
        "project_id": _id(),
        "user_domain_id": "default",
        "project_domain_id": "default",
    }
    fields.update(kwargs)
    return TokenValues(**fields)  # type: ignore[arg-type]


def _revocations(*events: RevocationEvent) -> RevocationList:
    return RevocationList(max_token_lifetime=LIFETIME, events=events)


def test_empty_list_revokes_nothing() -> None:
    revocations = _revocations()
    assert not revocations.is_revoked(_token(), BEFORE)
    assert len(revocations) == 0


def test_token_deleted_by_audit_id() -> None:
    token, other = _token(), _token()
    revocations = _revocations(RevocationEvent(audit_id=token.audit_id, issued_before=T0))
    assert revocations.is_revoked(token, BEFORE)
    assert not revocations.is_revoked(other, BEFORE)
    # the same user's other tokens are untouched
    assert not revocations.is_revoked(_token(user_id=token.user_id), BEFORE)


def test_audit_id_does_not_revoke_rescoped_children() -> None:
    parent = _token()
    child = _token(user_id=parent.user_id, audit_chain_id=parent.audit_id)
    revocations = _revocations(RevocationEvent(audit_id=parent.audit_id, issued_before=T0))
    assert revocations.is_revoked(parent, BEFORE)
    assert not revocations.is_revoked(child, BEFORE)


def test_audit_chain_id_revokes_the_whole_chain() -> None:
    now = T0 + timedelta(hours=1)
    root = TokenPayload(
        user_id=_id(), methods=("password",), expires_at=now, audit_ids=(random_audit_id(),)
    )
    child = TokenPayload(
        user_id=root.user_id,
        methods=("token",),
        expires_at=now,
        audit_ids=rescoped_audit_ids(root),
        project_id=_id(),
    )
    grandchild = TokenPayload(
        user_id=root.user_id,
        methods=("token",),
        expires_at=now,
        audit_ids=rescoped_audit_ids(child),
        domain_id="default",
    )
    revocations = _revocations(RevocationEvent(audit_chain_id=root.audit_id, issued_before=T0))
    for payload in (root, child, grandchild):
        assert revocations.is_revoked(TokenValues.from_payload(payload), BEFORE)
    unrelated = TokenPayload(
        user_id=root.user_id, methods=("password",), expires_at=now, audit_ids=(random_audit_id(),)
    )
    assert not revocations.is_revoked(TokenValues.from_payload(unrelated), BEFORE)


def test_password_change_revokes_every_earlier_token_of_the_user() -> None:
    user_id = _id()
    revocations = _revocations(RevocationEvent(user_id=user_id, issued_before=T0))
    assert revocations.is_revoked(_token(user_id=user_id), BEFORE)
    assert revocations.is_revoked(_token(user_id=user_id, project_id=None), T0)  # at: revoked
    assert not revocations.is_revoked(_token(user_id=user_id), AFTER)  # new password's token
    assert not revocations.is_revoked(_token(), BEFORE)  # another user


def test_project_disabled() -> None:
    project_id = _id()
    revocations = _revocations(RevocationEvent(project_id=project_id, issued_before=T0))
    assert revocations.is_revoked(_token(project_id=project_id), BEFORE)
    assert not revocations.is_revoked(_token(project_id=None, domain_id="default"), BEFORE)
    assert not revocations.is_revoked(_token(), BEFORE)


@pytest.mark.parametrize(
    "token_fields",
    [
        {"user_domain_id": "d1", "project_domain_id": "other"},  # user lives in d1
        {"user_domain_id": "other", "project_domain_id": "d1"},  # project lives in d1
        {
            "user_domain_id": "other",
            "project_id": None,
            "project_domain_id": None,
            "domain_id": "d1",
        },  # domain-scoped to d1
    ],
)
def test_domain_disabled(token_fields: dict[str, object]) -> None:
    revocations = _revocations(RevocationEvent(domain_id="d1", issued_before=T0))
    assert revocations.is_revoked(_token(**token_fields), BEFORE)
    assert not revocations.is_revoked(_token(**token_fields), AFTER)


def test_domain_event_spares_other_domains() -> None:
    revocations = _revocations(RevocationEvent(domain_id="d1", issued_before=T0))
    assert not revocations.is_revoked(_token(user_domain_id="d2", project_domain_id="d2"), BEFORE)


def test_assignment_removed_revokes_user_on_that_project_only() -> None:
    user_id, project_id = _id(), _id()
    revocations = _revocations(
        RevocationEvent(user_id=user_id, project_id=project_id, issued_before=T0)
    )
    assert revocations.is_revoked(_token(user_id=user_id, project_id=project_id), BEFORE)
    assert not revocations.is_revoked(_token(user_id=user_id), BEFORE)  # other project
    assert not revocations.is_revoked(_token(project_id=project_id), BEFORE)  # other user
    assert not revocations.is_revoked(_token(user_id=user_id, project_id=None), BEFORE)


def test_role_deleted_matches_tokens_holding_the_role() -> None:
    role_id = _id()
    revocations = _revocations(RevocationEvent(role_id=role_id, issued_before=T0))
    assert revocations.has_role_events
    assert revocations.is_revoked(_token(role_ids=frozenset({role_id, _id()})), BEFORE)
    assert not revocations.is_revoked(_token(role_ids=frozenset({_id()})), BEFORE)
    assert not revocations.is_revoked(_token(), BEFORE)


def test_user_and_role_event() -> None:
    user_id, role_id = _id(), _id()
    revocations = _revocations(RevocationEvent(user_id=user_id, role_id=role_id, issued_before=T0))
    assert not revocations.has_role_events  # filed under the user, not the role
    assert revocations.is_revoked(_token(user_id=user_id, role_ids=frozenset({role_id})), BEFORE)
    assert not revocations.is_revoked(_token(user_id=user_id), BEFORE)


def test_tokens_issued_after_the_event_are_not_revoked() -> None:
    token = _token()
    events = [
        RevocationEvent(audit_id=token.audit_id, issued_before=T0),
        RevocationEvent(user_id=token.user_id, issued_before=T0),
        RevocationEvent(project_id=token.project_id, issued_before=T0),
        RevocationEvent(domain_id="default", issued_before=T0),
        RevocationEvent(issued_before=T0),  # match-all
    ]
    revocations = _revocations(*events)
    assert revocations.is_revoked(token, T0)
    assert not revocations.is_revoked(token, AFTER)


def test_match_all_event() -> None:
    revocations = _revocations(RevocationEvent(issued_before=T0))
    assert revocations.is_revoked(_token(), BEFORE)
    assert not revocations.is_revoked(_token(), AFTER)


def test_later_event_for_one_user_does_not_revoke_others_issued_before_it() -> None:
    user_id = _id()
    revocations = _revocations(
        RevocationEvent(user_id=_id(), issued_before=T0 + timedelta(hours=1)),
        RevocationEvent(user_id=user_id, issued_before=T0),
    )
    assert not revocations.is_revoked(_token(user_id=user_id), AFTER)
    assert revocations.is_revoked(_token(user_id=user_id), BEFORE)


def test_from_payload() -> None:
    payload = TokenPayload(
        user_id=_id(),
        methods=("password",),
        expires_at=T0,
        audit_ids=(random_audit_id(), random_audit_id()),
        project_id=_id(),
    )
    values = TokenValues.from_payload(payload, user_domain_id="d", role_ids=["r1", "r2"])
    assert values.audit_id == payload.audit_ids[0]
    assert values.audit_chain_id == payload.audit_ids[1]
    assert values.project_id == payload.project_id
    assert values.role_ids == frozenset({"r1", "r2"})


def test_duplicate_events_are_stored_once() -> None:
    event = RevocationEvent(user_id="u", issued_before=T0, revoked_at=T0)
    revocations = _revocations(event, event)
    revocations.add(event)
    assert len(revocations) == 1


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError):
        RevocationEvent(user_id="u", issued_before=datetime(2025, 1, 1))


def test_prune_drops_events_older_than_token_lifetime() -> None:
    old = RevocationEvent(user_id="u1", issued_before=T0, revoked_at=T0)
    recent = RevocationEvent(
        user_id="u2",
        issued_before=T0 + timedelta(minutes=30),
        revoked_at=T0 + timedelta(minutes=30),
    )
    revocations = _revocations(old, recent)
    assert revocations.prune(T0 + LIFETIME) == 0  # a token issued at T0 may still be alive
    assert revocations.prune(T0 + LIFETIME + timedelta(seconds=1)) == 1
    assert revocations.events() == [recent]
    assert revocations.is_revoked(_token(user_id="u2"), T0)
    assert not revocations.is_revoked(_token(user_id="u1"), BEFORE)
    assert revocations.prune(T0 + 3 * LIFETIME) == 1
    assert len(revocations) == 0
    assert not revocations.is_revoked(_token(user_id="u2"), T0)


def test_events_since_sorted_by_revocation_time() -> None:
    events = [
        RevocationEvent(user_id=f"u{i}", issued_before=T0, revoked_at=T0 + timedelta(minutes=i))
        for i in (3, 1, 2)
    ]
    revocations = _revocations(*events)
    assert [e.user_id for e in revocations.events()] == ["u1", "u2", "u3"]
    assert [e.user_id for e in revocations.events(since=T0 + timedelta(minutes=2))] == ["u2", "u3"]


def test_to_dict() -> None:
    event = RevocationEvent(user_id="u", project_id="p", issued_before=T0, revoked_at=T0)
    assert event.to_dict() == {
        "user_id": "u",
        "project_id": "p",
        "issued_before": "2025-06-01T12:00:00+00:00",
        "revoked_at": "2025-06-01T12:00:00+00:00",
    }


def test_invalid_lifetime() -> None:
    with pytest.raises(ValueError):
        RevocationList(max_token_lifetime=timedelta(0))


def test_many_events_stay_fast() -> None:
    """100k events about other users: a check only touches this token's buckets."""
    revocations = RevocationList(max_token_lifetime=LIFETIME)
    for i in range(100_000):
        revocations.add(RevocationEvent(user_id=f"user-{i}", issued_before=T0 + LIFETIME))
    token = _token()
    start = time.perf_counter()
    for _ in range(1000):
        assert not revocations.is_revoked(token, T0)
    assert time.perf_counter() - start < 0.5  # a scan would take seconds
