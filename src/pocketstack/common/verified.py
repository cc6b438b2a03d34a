"""Passwords this data dir already checked against a user's stored bcrypt hash.

Every start makes sure that the image service's user still has the password the image
service was given (``<data_dir>/image/service-user.json``); the check is a bcrypt
verification, about a quarter of a second of CPU at 12 rounds. A restart with the same
password and an unchanged stored hash needs no new check: this file remembers, per user,
the stored hash and an HMAC of (hash, password) under a random key of its own.

Only for passwords whose plain text is already in the data dir: the file (0600, in
``<data_dir>/keys``) holds its key, so it lets anyone who reads it test guesses at SHA-256
speed. The bootstrap admin's password is never remembered here (bootstrap checks it with
bcrypt when it is given): an HMAC of it would make the admin password far cheaper to
crack than its bcrypt hash. A changed hash (a password changed through the API, a restored
database) or another password misses, and the caller falls back to bcrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path

from pocketstack.common.files import atomic_write


class VerifiedPasswords:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None
        self._users: dict[str, dict[str, str]] = {}
        self._loaded = False

    @classmethod
    def of(cls, data_dir: Path) -> VerifiedPasswords:
        """The data dir's file."""
        return cls(data_dir / "keys" / "verified-passwords.json")

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            data = json.loads(self.path.read_text())
            self._key = bytes.fromhex(data["key"])
            self._users = {str(k): dict(v) for k, v in data["users"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._key, self._users = None, {}  # missing or damaged: check again, rewrite

    def _check(self, stored_hash: str, password: str) -> str:
        assert self._key is not None
        message = stored_hash.encode() + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def known(self, user_id: str, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` was checked against exactly ``stored_hash`` before."""
        self._load()
        entry = self._users.get(user_id)
        if stored_hash is None or entry is None or self._key is None:
            return False
        return entry.get("hash") == stored_hash and hmac.compare_digest(
            entry.get("check", ""), self._check(stored_hash, password))

    def remember(self, user_id: str, stored_hash: str | None, password: str) -> None:
        """``password`` matches ``stored_hash`` (just verified, or just set)."""
        self._load()
        if stored_hash is None:
            return
        if self._key is None:
            self._key = secrets.token_bytes(32)
        self._users[user_id] = {"hash": stored_hash, "check": self._check(stored_hash, password)}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {"key": self._key.hex(), "users": self._users}
        atomic_write(self.path, json.dumps(document, indent=1).encode(), mode=0o600)
