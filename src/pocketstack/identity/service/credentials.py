"""Credentials (EC2 keys and other blobs, Fernet-encrypted at rest) and application
credentials (a secret that authenticates as the user, on one project, with a subset of roles).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.identity import models as m
from pocketstack.identity.exceptions import Forbidden, NotFound, ValidationError
from pocketstack.identity.service.common import (
    conflict_guard,
    isotime,
    new_id,
    parse_isotime,
    utcnow,
)
from pocketstack.identity.service.users import check_password, hash_password

if TYPE_CHECKING:
    from pocketstack.identity.service.hub import Identity


class CredentialCipher:
    """Encrypts credential blobs with the credential key repository (primary key first)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("no credential encryption keys")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.key_hash = hashlib.sha256(keys[0]).hexdigest()

    def encrypt(self, blob: str) -> bytes:
        return self._fernet.encrypt(blob.encode("utf-8"))

    def decrypt(self, data: bytes) -> str:
        try:
            return self._fernet.decrypt(data).decode("utf-8")
        except InvalidToken as exc:
            raise ValidationError("Credential could not be decrypted with the current "
                                  "keys.") from exc


class CredentialService:
    def __init__(self, hub: Identity, cipher: CredentialCipher) -> None:
        self.hub = hub
        self.cipher = cipher

    def ref(self, row: m.Credential) -> dict[str, Any]:
        return {**(row.extra or {}), "id": row.id, "user_id": row.user_id,
                "project_id": row.project_id, "type": row.type,
                "blob": self.cipher.decrypt(row.encrypted_blob)}

    def get(self, credential_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return self.ref(self._credential(s, credential_id))

    def list(self, *, user_id: str | None = None, type: str | None = None
             ) -> list[dict[str, Any]]:
        query = select(m.Credential).order_by(m.Credential.id)
        if user_id is not None:
            query = query.where(m.Credential.user_id == user_id)
        if type is not None:
            query = query.where(m.Credential.type == type)
        with self.hub.db.session() as s:
            return [self.ref(c) for c in s.scalars(query)]

    def find_ec2(self, access: str) -> dict[str, Any]:
        return self.get(_ec2_id(access))

    def create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        blob, ctype = fields.pop("blob"), fields.pop("type")
        credential_id = fields.pop("id", None) or new_id()
        if ctype == "ec2":
            credential_id = _ec2_id(_ec2_access(blob))
            if not fields.get("project_id"):
                raise ValidationError("Expecting to find project_id in credential. The server "
                                      "could not comply with the request since it is either "
                                      "malformed or otherwise incorrect. The client is assumed "
                                      "to be in error.")
        row = m.Credential(id=credential_id, user_id=fields.pop("user_id"),
                           project_id=fields.pop("project_id", None), type=ctype,
                           encrypted_blob=self.cipher.encrypt(blob),
                           key_hash=self.cipher.key_hash, extra=fields)
        with conflict_guard("credential", f"Duplicate ID, {credential_id}."), \
                self.hub.db.session() as s:
            self.hub.users._user(s, row.user_id)
            s.add(row)
            s.flush()
            return self.ref(row)

    def update(self, credential_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        fields.pop("id", None)
        with self.hub.db.session() as s:
            row = self._credential(s, credential_id)
            if "blob" in fields:
                blob = fields.pop("blob")
                if (fields.get("type") or row.type) == "ec2" and \
                        _ec2_id(_ec2_access(blob)) != credential_id:
                    raise ValidationError("Credential ID does not match the EC2 access key.")
                row.encrypted_blob = self.cipher.encrypt(blob)
                row.key_hash = self.cipher.key_hash
            for key in ("type", "user_id", "project_id"):
                if key in fields:
                    setattr(row, key, fields.pop(key))
            row.extra = {**(row.extra or {}), **fields}
            s.flush()
            return self.ref(row)

    def delete(self, credential_id: str) -> None:
        with self.hub.db.session() as s:
            s.delete(self._credential(s, credential_id))

    @staticmethod
    def _credential(s: Session, credential_id: str) -> m.Credential:
        row = s.get(m.Credential, credential_id)
        if row is None:
            raise NotFound.of("credential", credential_id)
        return row


def _ec2_access(blob: Any) -> str:
    try:
        access = json.loads(blob)["access"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError("Invalid blob in credential: an ec2 blob must be a JSON object "
                              "with an 'access' key.") from exc
    if not isinstance(access, str) or not access:
        raise ValidationError("Invalid blob in credential: 'access' must be a string.")
    return access


def _ec2_id(access: str) -> str:
    return hashlib.sha256(access.encode("utf-8")).hexdigest()


class ApplicationCredentialService:
    def __init__(self, hub: Identity) -> None:
        self.hub = hub

    def create(self, user_id: str, project_id: str, data: Mapping[str, Any],
               token_role_ids: set[str]) -> dict[str, Any]:
        """Create with the token's project; roles default to (and must be within) the
        token's roles. The generated or given secret is returned once, never stored."""
        fields = dict(data)
        secret = fields.get("secret") or secrets.token_urlsafe(64)
        expires_at = _future(fields.get("expires_at"))
        with conflict_guard("application_credential", "Duplicate entry found with name "
                            f"{fields['name']}."), self.hub.db.session() as s:
            role_ids = self._roles(s, fields.get("roles"), token_role_ids)
            row = m.ApplicationCredential(
                id=new_id(), name=fields["name"], description=fields.get("description"),
                secret_hash=hash_password(secret, self.hub.settings.identity.bcrypt_rounds),
                user_id=user_id, project_id=project_id, expires_at=expires_at,
                unrestricted=bool(fields.get("unrestricted", False)), created_at=utcnow())
            s.add(row)
            s.flush()
            s.add_all(m.ApplicationCredentialRole(application_credential_id=row.internal_id,
                                                  role_id=r) for r in role_ids)
            rules = self._access_rules(s, user_id, fields.get("access_rules") or [])
            s.add_all(m.ApplicationCredentialAccessRule(
                application_credential_id=row.internal_id, access_rule_id=r.internal_id)
                for r in rules)
            s.flush()
            return {**self._ref(s, row), "secret": secret}

    def _roles(self, s: Session, wanted: Any, token_role_ids: set[str]) -> list[str]:
        if not wanted:
            return sorted(token_role_ids)
        ids = []
        for role in wanted:
            if not role.get("id") and not role.get("name"):
                raise ValidationError("Invalid input for field 'roles': each role needs an id "
                                      "or a name.")
            if role.get("id"):
                found = self.hub.assignments._role(s, role["id"]).id
            else:
                found = s.scalar(select(m.Role.id).where(m.Role.name == role.get("name"),
                                                         m.Role.domain_id.is_(None)))
                if found is None:
                    raise NotFound.of("role", str(role.get("name")))
            if found not in token_role_ids:
                raise Forbidden("Cannot create an application credential with roles the "
                                "token does not have.")
            ids.append(found)
        return sorted(set(ids))

    @staticmethod
    def _access_rules(s: Session, user_id: str, rules: list[Mapping[str, Any]]
                      ) -> list[m.AccessRule]:
        out = []
        for rule in rules:
            if rule.get("id") and not rule.get("path"):
                row = s.scalar(select(m.AccessRule).where(m.AccessRule.id == rule["id"],
                                                          m.AccessRule.user_id == user_id))
                if row is None:
                    raise NotFound.of("access rule", rule["id"])
            else:
                row = s.scalar(select(m.AccessRule).where(
                    m.AccessRule.user_id == user_id, m.AccessRule.service == rule["service"],
                    m.AccessRule.path == rule["path"], m.AccessRule.method == rule["method"]))
                if row is None:
                    row = m.AccessRule(id=rule.get("id") or new_id(), user_id=user_id,
                                       service=rule["service"], path=rule["path"],
                                       method=rule["method"])
                    s.add(row)
                    s.flush()
            out.append(row)
        return out

    def get(self, user_id: str, app_cred_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return self._ref(s, self._row(s, app_cred_id, user_id))

    def list(self, user_id: str, *, name: str | None = None) -> list[dict[str, Any]]:
        query = select(m.ApplicationCredential).where(
            m.ApplicationCredential.user_id == user_id).order_by(m.ApplicationCredential.name)
        if name is not None:
            query = query.where(m.ApplicationCredential.name == name)
        with self.hub.db.session() as s:
            return [self._ref(s, row) for row in s.scalars(query)]

    def delete(self, user_id: str, app_cred_id: str) -> None:
        with self.hub.db.session() as s:
            s.delete(self._row(s, app_cred_id, user_id))
        # Tokens made with it die with it: their scope no longer resolves (the user's other
        # tokens live on, as in Keystone).
        self.hub.changed()

    def authenticate(self, ident: Mapping[str, Any], secret: str) -> m.ApplicationCredential:
        """The credential named by id, or by name + user; raises NotFound or ValueError."""
        with self.hub.db.session() as s:
            if ident.get("id"):
                row = s.scalar(select(m.ApplicationCredential)
                               .where(m.ApplicationCredential.id == ident["id"]))
            else:
                row = s.scalar(select(m.ApplicationCredential).where(
                    m.ApplicationCredential.name == ident.get("name"),
                    m.ApplicationCredential.user_id == ident.get("user_id")))
            if row is None:
                check_password(secret, None, self.hub.settings.identity.bcrypt_rounds)
                raise NotFound.of("application credential", str(ident))
            s.expunge(row)
        if not check_password(secret, row.secret_hash,
                              self.hub.settings.identity.bcrypt_rounds):
            raise ValueError("secret mismatch")
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise ValueError("expired")
        return row

    def role_ids(self, internal_id: int) -> set[str]:
        with self.hub.db.session() as s:
            return set(s.scalars(select(m.ApplicationCredentialRole.role_id).where(
                m.ApplicationCredentialRole.application_credential_id == internal_id)))

    def access_rules_of(self, internal_id: int) -> list[dict[str, Any]]:
        with self.hub.db.session() as s:
            return self._rules(s, internal_id)

    # -- access rules (read/delete, as Keystone's /users/{id}/access_rules) ------------------
    def list_access_rules(self, user_id: str) -> list[dict[str, Any]]:
        with self.hub.db.session() as s:
            rows = s.scalars(select(m.AccessRule).where(m.AccessRule.user_id == user_id))
            return [_rule_ref(r) for r in rows]

    def get_access_rule(self, user_id: str, rule_id: str) -> dict[str, Any]:
        with self.hub.db.session() as s:
            return _rule_ref(self._rule(s, user_id, rule_id))

    def delete_access_rule(self, user_id: str, rule_id: str) -> None:
        with self.hub.db.session() as s:
            row = self._rule(s, user_id, rule_id)
            used = s.scalar(select(m.ApplicationCredentialAccessRule.application_credential_id)
                            .where(m.ApplicationCredentialAccessRule.access_rule_id
                                   == row.internal_id))
            if used is not None:
                raise Forbidden("Cannot delete access rule while application credentials "
                                "use it.")
            s.delete(row)

    @staticmethod
    def _rule(s: Session, user_id: str, rule_id: str) -> m.AccessRule:
        row = s.scalar(select(m.AccessRule).where(m.AccessRule.id == rule_id,
                                                  m.AccessRule.user_id == user_id))
        if row is None:
            raise NotFound.of("access rule", rule_id)
        return row

    def _ref(self, s: Session, row: m.ApplicationCredential) -> dict[str, Any]:
        role_ids = s.scalars(select(m.ApplicationCredentialRole.role_id).where(
            m.ApplicationCredentialRole.application_credential_id == row.internal_id))
        roles = []
        for rid in role_ids:
            role = s.get(m.Role, rid)
            if role is not None:
                roles.append({"id": role.id, "name": role.name, "domain_id": role.domain_id})
        return {"id": row.id, "name": row.name, "description": row.description,
                "user_id": row.user_id, "project_id": row.project_id, "system": row.system,
                "expires_at": isotime(row.expires_at), "unrestricted": row.unrestricted,
                "roles": sorted(roles, key=lambda r: r["name"]),
                "access_rules": self._rules(s, row.internal_id)}

    @staticmethod
    def _rules(s: Session, internal_id: int) -> list[dict[str, Any]]:
        rows = s.scalars(select(m.AccessRule).join(
            m.ApplicationCredentialAccessRule,
            m.ApplicationCredentialAccessRule.access_rule_id == m.AccessRule.internal_id)
            .where(m.ApplicationCredentialAccessRule.application_credential_id == internal_id))
        return [_rule_ref(r) for r in rows]

    @staticmethod
    def _row(s: Session, app_cred_id: str, user_id: str) -> m.ApplicationCredential:
        row = s.scalar(select(m.ApplicationCredential).where(
            m.ApplicationCredential.id == app_cred_id,
            m.ApplicationCredential.user_id == user_id))
        if row is None:
            raise NotFound.of("application credential", app_cred_id)
        return row


def _rule_ref(row: m.AccessRule) -> dict[str, Any]:
    return {"id": row.id, "service": row.service, "path": row.path, "method": row.method}


def _future(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = parse_isotime(str(value))
    except ValueError as exc:
        raise ValidationError(f"Invalid input for field 'expires_at': {value!r} is not an ISO "
                              "8601 time.") from exc
    if when <= utcnow():
        raise ValidationError("The expiration time of an application credential must be in "
                              "the future.")
    return when
