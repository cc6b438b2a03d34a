"""Token validation on the hot path never touches the database; writes make it re-resolve."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

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
