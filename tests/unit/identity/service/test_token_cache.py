"""Token validation on the hot path never touches the database; writes make it re-resolve.
The same holds for the lookups of a token issue (a password issue reads the hash only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from pocketstack.identity.exceptions import Unauthorized
from pocketstack.identity.service.assignment import Actor, Target
from pocketstack.identity.service.common import NeedsDatabase
from pocketstack.identity.service.hub import Identity


def _password_auth() -> dict[str, object]:
    return {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}


@contextmanager
def counted_queries(hub: Identity) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", record)


def test_validating_a_known_token_runs_no_query(hub: Identity) -> None:
    token = hub.auth.authenticate(_password_auth()).token_id
    with counted_queries(hub) as statements:
        for _ in range(100):
            assert hub.tokens.validate(token).user_id
    assert statements == []


def test_a_token_new_to_this_process_resolves_once_then_runs_no_query(hub: Identity) -> None:
    token = hub.auth.authenticate(_password_auth()).token_id
    hub.tokens._tokens.clear()  # as another process (or a restart) would see it
    with counted_queries(hub) as statements:
        hub.tokens.validate(token)
        hub.tokens.validate(token)
    assert statements == []  # the (user, scope) cache is shared by every token of a scope


def test_an_identity_write_makes_validation_re_resolve(hub: Identity) -> None:
    token = hub.auth.authenticate(_password_auth()).token_id
    hub.resource.create_project({"name": "another", "domain_id": "default"})
    with counted_queries(hub) as statements:
        assert hub.tokens.validate(token).scope.project is not None
    assert statements  # stale after the write: re-read once
    with counted_queries(hub) as statements:
        hub.tokens.validate(token)
    assert statements == []


def _rescope(token: str) -> dict[str, object]:
    return {"identity": {"methods": ["token"], "token": {"id": token}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}


def test_a_repeated_password_issue_reads_only_the_password_hash(hub: Identity) -> None:
    hub.auth.authenticate(_password_auth())
    with counted_queries(hub) as statements:
        hub.auth.authenticate(_password_auth())
    assert len(statements) == 1 and "password_hash" in statements[0]


def test_rescoping_from_memory_runs_no_query(hub: Identity) -> None:
    token = hub.auth.authenticate(_password_auth()).token_id
    with counted_queries(hub) as statements:
        info = hub.auth.authenticate(_rescope(token), cached_only=True)
    assert statements == []
    assert info.project_id == hub.tokens.validate(token).project_id
    assert hub.tokens.validate(info.token_id, cached_only=True) is not None


def test_cached_only_calls_ask_for_the_database_when_memory_is_not_enough(
        hub: Identity) -> None:
    token = hub.auth.authenticate(_password_auth()).token_id
    with pytest.raises(NeedsDatabase):
        hub.auth.authenticate(_password_auth(), cached_only=True)  # a secret to check
    hub.resource.create_project({"name": "another", "domain_id": "default"})  # all stale
    with counted_queries(hub) as statements:
        with pytest.raises(NeedsDatabase):
            hub.tokens.validate(token, cached_only=True)
        with pytest.raises(NeedsDatabase):
            hub.auth.authenticate(_rescope(token), cached_only=True)
    assert statements == []
    hub.auth.authenticate(_rescope(token))  # resolves again, then memory suffices
    hub.auth.authenticate(_rescope(token), cached_only=True)


def test_a_lookup_is_read_again_after_a_write(hub: Identity) -> None:
    token = hub.auth.authenticate(_password_auth()).token_id
    project = hub.resource.create_project({"name": "renamed-later", "domain_id": "default"})
    admin_role = hub.assignments.find_role("admin")["id"]
    user_id = hub.tokens.validate(token).user_id
    hub.assignments.create_grant(admin_role, Actor(user_id=user_id),
                                 Target(project_id=project["id"]))
    scope = {"project": {"name": "renamed-later", "domain": {"id": "default"}}}
    first = hub.auth.authenticate({**_rescope(token), "scope": scope})
    assert first.project_id == project["id"]
    hub.resource.update_project(project["id"], {"name": "renamed"})
    with pytest.raises(Unauthorized):
        hub.auth.authenticate({**_rescope(token), "scope": scope})
