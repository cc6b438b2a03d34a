"""VerifiedPasswords: a restart may skip a bcrypt check only for the same password against
the same stored hash."""

from __future__ import annotations

import stat
from pathlib import Path

from pocketstack.common.verified import VerifiedPasswords


def test_remembered_only_for_the_same_hash_and_password(tmp_path: Path) -> None:
    VerifiedPasswords.of(tmp_path).remember("u1", "$2b$12$stored", "pw")
    again = VerifiedPasswords.of(tmp_path)  # as on the next start
    assert again.known("u1", "$2b$12$stored", "pw")
    assert not again.known("u1", "$2b$12$stored", "other")
    assert not again.known("u1", "$2b$12$changed", "pw")  # changed through the API
    assert not again.known("u2", "$2b$12$stored", "pw")
    assert not again.known("u1", None, "pw")
    path = tmp_path / "keys" / "verified-passwords.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "pw" not in path.read_text()  # only an HMAC of it (hex has no p or w)


def test_a_damaged_file_means_check_again(tmp_path: Path) -> None:
    VerifiedPasswords.of(tmp_path).remember("u1", "$2b$12$stored", "pw")
    (tmp_path / "keys" / "verified-passwords.json").write_text("{not json")
    fresh = VerifiedPasswords.of(tmp_path)
    assert not fresh.known("u1", "$2b$12$stored", "pw")
    fresh.remember("u1", "$2b$12$stored", "pw")
    assert VerifiedPasswords.of(tmp_path).known("u1", "$2b$12$stored", "pw")
