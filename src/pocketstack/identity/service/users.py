"""Users, groups, group membership and passwords.

Passwords are bcrypt hashes (cost from config); verification runs in the caller's thread
(never on the event loop) and compares in constant time inside bcrypt. Changing a password,
disabling or deleting a user, and removing a user from a group revoke the user's tokens.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import bcrypt
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pocketstack.identity import models as m
from pocketstack.identity.exceptions import Forbidden, NotFound, Unauthorized, ValidationError
from pocketstack.identity.service.common import (
    conflict_guard,
    isotime,
    merged_options,
    new_id,
    utcnow,
)

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity

LOG = logging.getLogger(__name__)
BCRYPT_MAX_BYTES = 72


@functools.cache
def _dummy_hash(rounds: int) -> bytes:
    """What a check runs against when there is no stored hash (no such user, no such
    credential): made with the configured rounds, so that the time an authentication takes
    does not tell whether the name exists."""
    return bcrypt.hashpw(b"pocketstack-no-such-user", bcrypt.gensalt(rounds))

USER_FIELDS = ("name", "domain_id", "enabled", "default_project_id", "options")


def user_ref(user: m.User) -> dict[str, Any]:
    ref = {**(user.extra or {}), "id": user.id, "name": user.name, "domain_id": user.domain_id,
           "enabled": user.enabled, "password_expires_at": isotime(user.password_expires_at),
           "options": user.options or {}}
    if user.default_project_id:
        ref["default_project_id"] = user.default_project_id
    return ref


def group_ref(group: m.Group) -> dict[str, Any]:
    return {**(group.extra or {}), "id": group.id, "name": group.name,
            "domain_id": group.domain_id, "description": group.description or ""}


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_password_bytes(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, hashed: str | None, rounds: int) -> bool:
    """Constant-time check; a missing hash costs as much as a stored one of ``rounds``."""
    candidate = _password_bytes(password)
    if not hashed:
        bcrypt.checkpw(candidate, _dummy_hash(rounds))
        return False
    try:
        return bcrypt.checkpw(candidate, hashed.encode("ascii"))  # constant-time inside
    except ValueError:
        return False


def _password_bytes(password: str) -> bytes:
    # bcrypt reads at most 72 bytes; classic implementations (and Keystone) truncate.
    return password.encode("utf-8")[:BCRYPT_MAX_BYTES]


class UserService:
    def __init__(self, hub: Identity) -> None:
        self.hub = hub

    # -- users ---------------------------------------------------------------------------------
    def get_user(self, user_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return user_ref(self._user(s, user_id))

    def find_user(self, name: str, domain_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            user = s.scalar(select(m.User).where(m.User.name == name,
                                                 m.User.domain_id == domain_id))
            if user is None:
                raise NotFound.of("user", name)
            return user_ref(user)

    def list_users(self, *, filters: Mapping[str, Any] | None = None,
                   ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        filters = filters or {}
        query = select(m.User).order_by(m.User.name)
        for key in ("name", "domain_id", "enabled"):
            if filters.get(key) is not None:
                query = query.where(getattr(m.User, key) == filters[key])
        if ids is not None:
            query = query.where(m.User.id.in_(list(ids)))
        with self.hub.db.session() as s:
            return [user_ref(u) for u in s.scalars(query)]

    def create_user(self, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        password = fields.pop("password", None)
        self._check_password_input(password)
        now = utcnow()
        user = m.User(id=fields.pop("id", None) or new_id(), name=fields.pop("name"),
                      domain_id=fields.pop("domain_id", None) or "default",
                      enabled=fields.pop("enabled", True),
                      default_project_id=fields.pop("default_project_id", None),
                      options=fields.pop("options", None) or {}, created_at=now)
        fields.pop("federated", None)
        user.extra = fields
        if password is not None:
            user.password_hash = hash_password(password, self.hub.settings.identity.bcrypt_rounds)
            user.password_created_at = now
        with conflict_guard("user", f"Duplicate entry found with name {user.name} at domain "
                                    f"ID {user.domain_id}"), self.hub.db.session() as s:
            self.hub.resource._domain(s, user.domain_id)
            s.add(user)
            s.flush()
            ref = user_ref(user)
        self.hub.changed()
        return ref

    def update_user(self, user_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        if "id" in fields and fields.pop("id") != user_id:
            raise ValidationError("Cannot change user ID")
        if "domain_id" in fields:
            raise ValidationError("Update of `domain_id` is not allowed.")
        password = fields.pop("password", None)
        self._check_password_input(password)
        new_hash = (hash_password(password, self.hub.settings.identity.bcrypt_rounds)
                    if password is not None else None)
        with conflict_guard("user", f"Duplicate entry found with name {fields.get('name')}"), \
                self.hub.db.session() as s:
            user = self._user(s, user_id)
            disabling = user.enabled and fields.get("enabled") is False
            if "options" in fields:
                user.options = merged_options(user.options, fields.pop("options"))
            for key in ("name", "enabled", "default_project_id"):
                if key in fields:
                    setattr(user, key, fields.pop(key))
            user.extra = {**(user.extra or {}), **fields}
            if new_hash is not None:
                user.password_hash, user.password_created_at = new_hash, utcnow()
            s.flush()
            ref = user_ref(user)
        if disabling or new_hash is not None:
            self.hub.revoke(user_id=user_id)
        self.hub.changed()
        return ref

    def change_password(self, user_id: str, original: str, new: str) -> None:
        """Self-service change: the original password must match (401 otherwise, and for a
        user that does not exist, so the answer tells nothing about who exists)."""
        self._check_password_input(new)
        with self.hub.db.session() as s:
            user = s.get(m.User, user_id)
            stored = user.password_hash if user is not None else None
        if not check_password(original, stored, self.hub.settings.identity.bcrypt_rounds):
            count = self.hub.auth.failures.record()
            LOG.warning("password change refused for user %s: original password mismatch; "
                        "%d failures in the last minute", user_id, count)
            raise Unauthorized("The request you have made requires authentication.")
        self.update_user(user_id, {"password": new})

    def delete_user(self, user_id: str) -> None:
        with self.hub.db.session() as s:
            user = self._user(s, user_id)
            s.execute(delete(m.Assignment).where(m.Assignment.actor_id == user_id))
            s.execute(delete(m.Membership).where(m.Membership.user_id == user_id))
            self.purge_users(s, [user_id])
            s.delete(user)
        self.hub.revoke(user_id=user_id)
        self.hub.changed()

    @staticmethod
    def purge_users(s: Session, user_ids: list[str]) -> None:
        """Remove what belongs to these users outside their row (credentials, app creds)."""
        if not user_ids:
            return
        s.execute(delete(m.Credential).where(m.Credential.user_id.in_(user_ids)))
        s.execute(delete(m.ApplicationCredential)
                  .where(m.ApplicationCredential.user_id.in_(user_ids)))
        s.execute(delete(m.AccessRule).where(m.AccessRule.user_id.in_(user_ids)))

    def verify_password(self, user_id: str, password: str) -> bool:
        # One column read on a plain connection: half the cost of an ORM session's load.
        with self.hub.db.engine.connect() as conn:
            stored = conn.scalar(select(m.User.password_hash).where(m.User.id == user_id))
        return check_password(password, stored, self.hub.settings.identity.bcrypt_rounds)

    def _check_password_input(self, password: Any) -> None:
        if password is None:
            return
        if not isinstance(password, str):
            raise ValidationError("Invalid input for field 'password': not a string.")
        limit = self.hub.settings.identity.max_password_length
        if len(password) > limit:  # Keystone's PasswordVerificationError is a 403
            raise Forbidden(f"The password length must be less than or equal to {limit}. The "
                            "server could not comply with the request because the password "
                            "is invalid.")

    # -- groups --------------------------------------------------------------------------------
    def get_group(self, group_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return group_ref(self._group(s, group_id))

    def list_groups(self, *, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        filters = filters or {}
        query = select(m.Group).order_by(m.Group.name)
        for key in ("name", "domain_id"):
            if filters.get(key) is not None:
                query = query.where(getattr(m.Group, key) == filters[key])
        with self.hub.db.session() as s:
            return [group_ref(g) for g in s.scalars(query)]

    def create_group(self, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        group = m.Group(id=new_id(), name=fields.pop("name"),
                        domain_id=fields.pop("domain_id", None) or "default",
                        description=fields.pop("description", "") or "")
        group.extra = fields
        with conflict_guard("group", f"Duplicate entry found with name {group.name} at domain "
                                     f"ID {group.domain_id}"), self.hub.db.session() as s:
            self.hub.resource._domain(s, group.domain_id)
            s.add(group)
            s.flush()
            ref = group_ref(group)
        self.hub.changed()
        return ref

    def update_group(self, group_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        if "domain_id" in fields:
            raise ValidationError("Update of `domain_id` is not allowed.")
        fields.pop("id", None)
        with conflict_guard("group", f"Duplicate entry found with name {fields.get('name')}"), \
                self.hub.db.session() as s:
            group = self._group(s, group_id)
            for key in ("name", "description"):
                if key in fields:
                    setattr(group, key, fields.pop(key))
            group.extra = {**(group.extra or {}), **fields}
            s.flush()
            ref = group_ref(group)
        self.hub.changed()
        return ref

    def delete_group(self, group_id: str) -> None:
        with self.hub.db.session() as s:
            self._group(s, group_id)
            members = list(s.scalars(select(m.Membership.user_id)
                                     .where(m.Membership.group_id == group_id)))
            had_roles = s.scalar(select(m.Assignment.role_id)
                                 .where(m.Assignment.actor_id == group_id)) is not None
            s.execute(delete(m.Assignment).where(m.Assignment.actor_id == group_id))
            s.execute(delete(m.Membership).where(m.Membership.group_id == group_id))
            s.execute(delete(m.Group).where(m.Group.id == group_id))
        if had_roles:
            for user_id in members:
                self.hub.revoke(user_id=user_id)
        self.hub.changed()

    # -- membership ----------------------------------------------------------------------------
    def add_member(self, group_id: str, user_id: str) -> None:
        with self.hub.db.session() as s:
            self._group(s, group_id)
            self._user(s, user_id)
            if s.get(m.Membership, (user_id, group_id)) is None:
                s.add(m.Membership(user_id=user_id, group_id=group_id))
        self.hub.changed()

    def check_member(self, group_id: str, user_id: str) -> None:
        with self.hub.db.session() as s:
            self._group(s, group_id)
            self._user(s, user_id)
            if s.get(m.Membership, (user_id, group_id)) is None:
                raise NotFound(f"User '{user_id}' not found in group '{group_id}'")

    def remove_member(self, group_id: str, user_id: str) -> None:
        with self.hub.db.session() as s:
            self._group(s, group_id)
            self._user(s, user_id)
            row = s.get(m.Membership, (user_id, group_id))
            if row is None:
                raise NotFound(f"User '{user_id}' not found in group '{group_id}'")
            s.delete(row)
        self.hub.revoke(user_id=user_id)
        self.hub.changed()

    def list_members(self, group_id: str, *, filters: Mapping[str, Any] | None = None
                     ) -> list[dict[str, Any]]:
        with self.hub.db.session() as s:
            self._group(s, group_id)
            ids = list(s.scalars(select(m.Membership.user_id)
                                 .where(m.Membership.group_id == group_id)))
        return self.list_users(filters=filters, ids=ids)

    def groups_of(self, user_id: str) -> list[dict[str, Any]]:
        with self.hub.db.session() as s:
            self._user(s, user_id)
            query = (select(m.Group).join(m.Membership, m.Membership.group_id == m.Group.id)
                     .where(m.Membership.user_id == user_id).order_by(m.Group.name))
            return [group_ref(g) for g in s.scalars(query)]

    @staticmethod
    def group_ids_of(s: Session, user_id: str) -> list[str]:
        return list(s.scalars(select(m.Membership.group_id)
                              .where(m.Membership.user_id == user_id)))

    @staticmethod
    def _user(s: Session, user_id: str) -> m.User:
        user = s.get(m.User, user_id)
        if user is None:
            raise NotFound.of("user", user_id)
        return user

    @staticmethod
    def _group(s: Session, group_id: str) -> m.Group:
        group = s.get(m.Group, group_id)
        if group is None:
            raise NotFound.of("group", group_id)
        return group
