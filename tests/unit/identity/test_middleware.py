"""``LocalValidator``: what the other services of the process validate tokens with."""

from __future__ import annotations

import asyncio

import pytest

from pocketstack.identity.middleware import InvalidToken, LocalValidator
from pocketstack.identity.service.hub import Identity


def _token(hub: Identity) -> str:
    return hub.auth.authenticate({
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}).token_id


def test_a_token_s_context_is_made_once_and_follows_revocation(hub: Identity) -> None:
    validator = LocalValidator(hub)
    token = _token(hub)
    first = asyncio.run(validator.validate(token))
    assert first.project_name == "admin" and "admin" in first.roles
    assert asyncio.run(validator.validate(token)) is first
    hub.tokens.revoke(token)
    with pytest.raises(InvalidToken):
        asyncio.run(validator.validate(token))


def test_a_token_new_to_the_process_is_resolved(hub: Identity) -> None:
    validator = LocalValidator(hub)
    token = _token(hub)
    hub.tokens._tokens.clear()
    hub.changed()  # and its scope is stale: the validator reads it again, in a thread
    assert asyncio.run(validator.validate(token)).token_id == token
    with pytest.raises(InvalidToken):
        asyncio.run(validator.validate("garbage"))
