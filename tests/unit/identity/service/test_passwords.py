"""Password hashing and checking: the cost of a check must not tell whether a user exists."""

from __future__ import annotations

from unittest import mock

import bcrypt

from pocketstack.identity.service import users
from pocketstack.identity.service.users import check_password, hash_password


def test_check_against_a_stored_hash() -> None:
    stored = hash_password("s3cret", 4)
    assert stored.startswith("$2b$04$")
    assert check_password("s3cret", stored, 4)
    assert not check_password("wrong", stored, 4)
    assert not check_password("s3cret", "not a bcrypt hash", 4)


def test_no_stored_hash_costs_the_configured_rounds() -> None:
    with mock.patch.object(users.bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw:
        assert not check_password("anything", None, 5)
    (candidate, against), _ = checkpw.call_args
    assert candidate == b"anything"
    assert against.startswith(b"$2b$05$")  # as dear as a real user's hash at 5 rounds


def test_bcrypt_reads_72_bytes_as_keystone() -> None:
    stored = hash_password("x" * 72 + "ignored", 4)
    assert check_password("x" * 72, stored, 4)
