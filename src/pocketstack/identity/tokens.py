"""Fernet tokens: the key repository, the token formatter and the versioned payload format.

A token is a Fernet token (AES-128-CBC + HMAC-SHA256, see the Fernet spec) whose plaintext
is a small msgpack array, so any process holding the key repository validates a token
without a database round trip. The layers, outermost first::

    token (str)  = urlsafe-base64(fernet) with the trailing '=' padding stripped
    fernet       = 0x80 | issued_at u64 | iv 16 | AES-CBC(plaintext) | HMAC 32
    plaintext    = msgpack [version, user_id, methods, expires_at, audit_ids, issued_us,
                            *scope]

    user_id      bin16 when it is a lowercase uuid4 hex (32 chars), else str
    methods      int bitmask over AUTH_METHODS (append-only list)
    expires_at   int, seconds since the epoch (UTC; microseconds are truncated)
    audit_ids    bin16 or bin32: one or two 16-byte audit ids, concatenated
    issued_us    int, the microseconds of the issue time (0..999999)
    scope        per payload version, see the *Payload classes and _PAYLOAD_CLASSES

`issued_at` is the Fernet timestamp (whole seconds) plus `issued_us`: revocation events
compare against it, and whole seconds alone would revoke a token issued in the same second
right *after* an event (a new password's first token, say).
A project-scoped password token is 183 characters; a rescoped one (two audit ids) 204.

Key repository layout (Keystone's): files named by integers, each one urlsafe-base64 key.
`0` is the staged key (the next primary), the highest number is the primary (encrypts),
the rest are secondaries (decrypt only). Rotation promotes `0` to max+1, writes a new `0`
and drops the oldest secondaries so that at most `max_active_keys` files remain; a token
therefore survives `max_active_keys - 2` rotations.

Exceptions::

    TokenError
    +-- InvalidToken        garbage, tampered, unknown key, unknown payload version
        +-- TokenExpired    authentic, but past its expires_at
    KeyRepositoryError      missing / empty / corrupt key repository (refuse to start)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import functools
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import msgpack
from cryptography.fernet import Fernet, MultiFernet
from cryptography.fernet import InvalidToken as _FernetInvalidToken

LOG = logging.getLogger(__name__)

#: Auth method names, bit i of the methods bitmask is AUTH_METHODS[i]. Append only:
#: reordering would change the meaning of every token in flight.
AUTH_METHODS: tuple[str, ...] = (
    "password",
    "token",
    "application_credential",
    "totp",
    "external",
    "mapped",
    "oauth1",
    "oauth2_credential",
)
_METHOD2BIT = {name: 1 << i for i, name in enumerate(AUTH_METHODS)}

#: Keystone warns above this length: some clients store tokens in 255-char columns.
MAX_TOKEN_SIZE = 255
#: Anything longer is rejected before any crypto is attempted.
_MAX_ACCEPTED_TOKEN_CHARS = 2048
_AUDIT_ID_BYTES = 16
#: 16 bytes in unpadded urlsafe base64: 21 free characters, and a last one that carries
#: only two bits (the other four must be zero for the encoding to be canonical).
_AUDIT_ID_RE = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TokenError(Exception):
    """Base class of token validation errors."""


class InvalidToken(TokenError):
    """The token is malformed, was tampered with, or was sealed with an unknown key."""


class TokenExpired(InvalidToken):
    """The token is authentic but its expires_at has passed."""


class KeyRepositoryError(Exception):
    """The key repository is missing, empty or holds a corrupt key."""


# --------------------------------------------------------------------------- payload


def random_audit_id() -> str:
    """A new audit id: 16 random bytes, urlsafe-base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_AUDIT_ID_BYTES)).rstrip(b"=").decode()


def _audit_id_to_bytes(audit_id: str) -> bytes:
    if not _AUDIT_ID_RE.fullmatch(audit_id):
        raise ValueError(f"malformed audit id {audit_id!r}")
    return base64.urlsafe_b64decode(audit_id + "==")


@functools.lru_cache(maxsize=256)
def _canonical_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    unknown = set(methods) - _METHOD2BIT.keys()
    if unknown or not methods:
        raise ValueError(f"unknown or missing auth methods: {sorted(unknown)}")
    return tuple(m for m in AUTH_METHODS if m in methods)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenPayload:
    """What a token says, independent of its wire form.

    Normalized on construction so that a payload equals its own round trip: `methods` is
    deduplicated into AUTH_METHODS order, `expires_at` is converted to UTC with the
    microseconds truncated (as Keystone's default_expire_time does). At most one of
    project_id / domain_id / system is set; app_cred_id requires project_id. `audit_ids`
    is (own_id,) or (own_id, chain_id) for a token rescoped with the `token` method.
    """

    user_id: str
    methods: tuple[str, ...]
    expires_at: datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    app_cred_id: str | None = None

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("user_id is required")
        for name in ("project_id", "domain_id", "system", "app_cred_id"):
            if getattr(self, name) == "":
                raise ValueError(f"{name} must be None or a non-empty string")
        object.__setattr__(self, "methods", _canonical_methods(tuple(self.methods)))
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware (UTC)")
        if self.expires_at.tzinfo is not UTC or self.expires_at.microsecond:
            expires_at = self.expires_at.astimezone(UTC).replace(microsecond=0)
            object.__setattr__(self, "expires_at", expires_at)
        if not 1 <= len(self.audit_ids) <= 2:
            raise ValueError("audit_ids holds one or two audit ids")
        for audit_id in self.audit_ids:
            if not _AUDIT_ID_RE.fullmatch(audit_id):
                raise ValueError(f"malformed audit id {audit_id!r}")
        scopes = [s for s in (self.project_id, self.domain_id, self.system) if s is not None]
        if len(scopes) > 1:
            raise ValueError("a token has at most one scope (project, domain or system)")
        if self.app_cred_id is not None and self.project_id is None:
            raise ValueError("an application credential token is project-scoped")

    @property
    def audit_id(self) -> str:
        """This token's own audit id."""
        return self.audit_ids[0]

    @property
    def audit_chain_id(self) -> str:
        """The audit id of the first token of the rescope chain (own id if not rescoped)."""
        return self.audit_ids[-1]

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at <= now


def rescoped_audit_ids(parent: TokenPayload) -> tuple[str, str]:
    """Audit ids for a token obtained with the `token` method from `parent`."""
    return (random_audit_id(), parent.audit_chain_id)


def _pack_id(value: str) -> bytes | str:
    """A lowercase 32-char hex id (uuid4().hex) becomes its 16 bytes; anything else stays."""
    if len(value) == 32:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return value
        if raw.hex() == value:  # fromhex also accepts upper case and whitespace
            return raw
    return value


def _unpack_id(value: object) -> str:
    if isinstance(value, bytes) and len(value) == 16:
        return value.hex()
    if isinstance(value, str) and value:
        return value
    raise ValueError("malformed id in token payload")


def _unpack_int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("malformed integer in token payload")
    return value


class _BasePayload:
    """One wire layout: `[version, user_id, methods, expires_at, audit_ids, *scope]`.

    Subclasses set `version` (never reused), say which payloads they carry (`fits`) and
    pack / unpack only their scope tail; this class handles the common head.
    """

    version: ClassVar[int]
    scope_len: ClassVar[int] = 0

    @classmethod
    def fits(cls, payload: TokenPayload) -> bool:
        raise NotImplementedError

    @classmethod
    def assemble_scope(cls, payload: TokenPayload) -> list[Any]:
        return []

    @classmethod
    def disassemble_scope(cls, scope: Sequence[Any]) -> dict[str, str]:
        return {}

    @classmethod
    def assemble(cls, payload: TokenPayload, issued_us: int = 0) -> list[Any]:
        bits = 0
        for method in payload.methods:
            bits |= _METHOD2BIT[method]
        expires_at = int((payload.expires_at - _EPOCH).total_seconds())
        audit = b"".join(_audit_id_to_bytes(a) for a in payload.audit_ids)
        head = [cls.version, _pack_id(payload.user_id), bits, expires_at, audit, issued_us]
        return head + cls.assemble_scope(payload)

    @classmethod
    def disassemble(cls, fields: Sequence[Any]) -> TokenPayload:
        if len(fields) != 6 + cls.scope_len:
            raise ValueError(f"payload version {cls.version} has {6 + cls.scope_len} fields")
        _, user_id, bits, expires_at, audit, _issued_us = fields[:6]
        bits = _unpack_int(bits)
        if not isinstance(audit, bytes) or len(audit) not in (16, 32):
            raise ValueError("malformed audit ids in token payload")
        audit_ids = tuple(
            base64.urlsafe_b64encode(audit[i : i + 16]).rstrip(b"=").decode()
            for i in range(0, len(audit), 16)
        )
        return TokenPayload(
            user_id=_unpack_id(user_id),
            methods=tuple(m for m, bit in _METHOD2BIT.items() if bits & bit),
            expires_at=_EPOCH + timedelta(seconds=_unpack_int(expires_at)),
            audit_ids=audit_ids,
            **cls.disassemble_scope(fields[6:]),
        )


class UnscopedPayload(_BasePayload):
    version = 0

    @classmethod
    def fits(cls, payload: TokenPayload) -> bool:
        return payload.project_id is None and payload.domain_id is None and payload.system is None


class DomainScopedPayload(_BasePayload):
    version = 1
    scope_len = 1

    @classmethod
    def fits(cls, payload: TokenPayload) -> bool:
        return payload.domain_id is not None

    @classmethod
    def assemble_scope(cls, payload: TokenPayload) -> list[Any]:
        assert payload.domain_id is not None
        return [_pack_id(payload.domain_id)]

    @classmethod
    def disassemble_scope(cls, scope: Sequence[Any]) -> dict[str, str]:
        return {"domain_id": _unpack_id(scope[0])}


class ProjectScopedPayload(_BasePayload):
    version = 2
    scope_len = 1

    @classmethod
    def fits(cls, payload: TokenPayload) -> bool:
        return payload.project_id is not None and payload.app_cred_id is None

    @classmethod
    def assemble_scope(cls, payload: TokenPayload) -> list[Any]:
        assert payload.project_id is not None
        return [_pack_id(payload.project_id)]

    @classmethod
    def disassemble_scope(cls, scope: Sequence[Any]) -> dict[str, str]:
        return {"project_id": _unpack_id(scope[0])}


class SystemScopedPayload(_BasePayload):
    version = 8
    scope_len = 1

    @classmethod
    def fits(cls, payload: TokenPayload) -> bool:
        return payload.system is not None

    @classmethod
    def assemble_scope(cls, payload: TokenPayload) -> list[Any]:
        return [payload.system]

    @classmethod
    def disassemble_scope(cls, scope: Sequence[Any]) -> dict[str, str]:
        if not isinstance(scope[0], str) or not scope[0]:
            raise ValueError("malformed system scope in token payload")
        return {"system": scope[0]}


class ApplicationCredentialScopedPayload(_BasePayload):
    version = 9
    scope_len = 2

    @classmethod
    def fits(cls, payload: TokenPayload) -> bool:
        return payload.app_cred_id is not None

    @classmethod
    def assemble_scope(cls, payload: TokenPayload) -> list[Any]:
        assert payload.project_id is not None and payload.app_cred_id is not None
        return [_pack_id(payload.project_id), _pack_id(payload.app_cred_id)]

    @classmethod
    def disassemble_scope(cls, scope: Sequence[Any]) -> dict[str, str]:
        return {"project_id": _unpack_id(scope[0]), "app_cred_id": _unpack_id(scope[1])}


#: Tried in order by `pack` (first that fits wins); looked up by version by `unpack`.
#: Versions follow Keystone's numbering; never reuse a retired number.
_PAYLOAD_CLASSES: list[type[_BasePayload]] = [
    ApplicationCredentialScopedPayload,
    ProjectScopedPayload,
    DomainScopedPayload,
    SystemScopedPayload,
    UnscopedPayload,
]
_VERSION2PAYLOAD_CLASS = {cls.version: cls for cls in _PAYLOAD_CLASSES}


def encode_payload(payload: TokenPayload, issued_us: int = 0) -> bytes:
    """The msgpack plaintext of a payload (before encryption)."""
    for payload_class in _PAYLOAD_CLASSES:
        if payload_class.fits(payload):
            fields = payload_class.assemble(payload, issued_us)
            return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]
    raise ValueError(f"no payload format for {payload!r}")  # pragma: no cover


def decode_payload(plaintext: bytes) -> TokenPayload:
    """Inverse of `encode_payload`; any malformation raises InvalidToken."""
    return _decode(plaintext)[0]


def _decode(plaintext: bytes) -> tuple[TokenPayload, int]:
    """(payload, microseconds of the issue time) of a plaintext."""
    try:
        fields = msgpack.unpackb(plaintext, raw=False, use_list=False, strict_map_key=True)
        if not isinstance(fields, tuple) or not fields:
            raise ValueError("token payload is not an array")
        payload_class = _VERSION2PAYLOAD_CLASS.get(fields[0])
        if payload_class is None or type(fields[0]) is not int:  # True == 1 in a dict
            raise ValueError(f"unknown token payload version {fields[0]!r}")
        payload = payload_class.disassemble(fields)
        issued_us = _unpack_int(fields[5])
        if issued_us > 999_999:
            raise ValueError("malformed issue time in token payload")
        return payload, issued_us
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise InvalidToken(f"unrecognized token payload: {exc}") from exc


# --------------------------------------------------------------------------- formatter


class TokenFormatter:
    """Seals payloads into tokens and opens them again, over a list of keys.

    `keys` are urlsafe-base64 Fernet keys, primary first (as `FernetKeyRepository.load_keys`
    returns them): the primary encrypts, every key decrypts. Immutable: after a rotation,
    build a new formatter from the repository.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise KeyRepositoryError("no Fernet keys: refusing to issue or validate tokens")
        self._crypto = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_repository(cls, repository: FernetKeyRepository) -> TokenFormatter:
        return cls(repository.load_keys())

    def pack(self, payload: TokenPayload, *, now: float | None = None) -> str:
        """Encrypt `payload` under the primary key; the token carries no '=' padding."""
        return self.issue(payload, now=now)[0]

    def issue(self, payload: TokenPayload, *, now: float | None = None
              ) -> tuple[str, datetime]:
        """(token, issued_at): `pack`, also telling the issue time the token carries."""
        now = time.time() if now is None else now
        seconds = int(now)
        micros = min(round((now - seconds) * 1_000_000), 999_999)
        sealed = self._crypto.encrypt_at_time(encode_payload(payload, micros), seconds)
        token = sealed.rstrip(b"=").decode("ascii")
        if len(token) > MAX_TOKEN_SIZE:
            LOG.info("Fernet token of %d characters exceeds %d", len(token), MAX_TOKEN_SIZE)
        return token, datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)

    def unpack(
        self,
        token: str,
        *,
        now: datetime | None = None,
        allow_expired_for: timedelta = timedelta(0),
    ) -> tuple[TokenPayload, datetime]:
        """Return (payload, issued_at) of an authentic, unexpired token.

        `allow_expired_for` extends validity past expires_at (Keystone's allow_expired
        window for service tokens). Raises InvalidToken or TokenExpired.
        """
        plaintext, issued_at = self._decrypt(token)
        payload, issued_us = _decode(plaintext)
        issued_at += timedelta(microseconds=issued_us)
        now = datetime.now(UTC) if now is None else now
        if payload.expires_at + allow_expired_for <= now:
            raise TokenExpired(f"token expired at {payload.expires_at.isoformat()}")
        return payload, issued_at

    def _decrypt(self, token: str) -> tuple[bytes, datetime]:
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_ACCEPTED_TOKEN_CHARS \
                or "=" in token:
            raise InvalidToken("not a token")
        padded = (token + "=" * (-len(token) % 4)).encode("ascii", "replace")
        try:
            raw = base64.urlsafe_b64decode(padded)
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken("token is not base64") from exc
        # urlsafe_b64decode skips stray characters and ignores the unused low bits of
        # the last character: insist on the canonical encoding so a token has one spelling.
        if base64.urlsafe_b64encode(raw) != padded or len(raw) < 9:
            raise InvalidToken("token is not canonical base64")
        try:
            plaintext = self._crypto.decrypt(padded)
        except _FernetInvalidToken as exc:
            raise InvalidToken("could not recognize Fernet token") from exc
        issued_at = datetime.fromtimestamp(int.from_bytes(raw[1:9], "big"), UTC)
        return plaintext, issued_at


# --------------------------------------------------------------------------- keys


class FernetKeyRepository:
    """Keystone's Fernet key directory: `0` staged, `1..n` active, highest = primary.

    Files are 0600 and the directory 0700. Every write goes to a temp file that is
    fsynced and renamed into place, and rotations hold an flock on `.lock` so that two
    processes sharing the directory cannot interleave.
    """

    def __init__(self, path: Path, *, max_active_keys: int = 3) -> None:
        if max_active_keys < 2:
            raise ValueError("max_active_keys must be >= 2 (a staged and a primary key)")
        self.path = Path(path)
        self.max_active_keys = max_active_keys

    def initialize(self) -> bool:
        """Create the directory and keys `0` and `1` if there are none; True if created.

        An initialized repository missing its staged key (a crash mid-rotation) gets a
        new `0`; the existing keys are never touched.
        """
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        with self._locked():
            number2path = self._scan()
            if number2path:
                if 0 not in number2path:
                    self._write_key(0)
                return False
            self._write_key(0)
            self._rotate_locked()
            return True

    def rotate(self) -> int:
        """Promote the staged key to primary, stage a new key, purge; return the primary."""
        if not self.path.is_dir():
            raise KeyRepositoryError(f"key repository {self.path} does not exist")
        with self._locked():
            if not self._scan():
                raise KeyRepositoryError(f"key repository {self.path} is empty")
            return self._rotate_locked()

    def load_keys(self) -> list[bytes]:
        """Every key, primary first, then secondaries newest first, staged `0` last."""
        if not self.path.is_dir():
            raise KeyRepositoryError(f"key repository {self.path} does not exist")
        keys = []
        for _number, path in sorted(self._scan().items(), reverse=True):
            key = path.read_bytes().strip()
            if not key:
                LOG.warning("ignoring empty key file %s", path)
                continue
            try:
                Fernet(key)
            except (ValueError, binascii.Error) as exc:
                raise KeyRepositoryError(f"key file {path} is not a Fernet key") from exc
            keys.append(key)
        if not keys:
            raise KeyRepositoryError(f"key repository {self.path} holds no keys")
        return keys

    def key_numbers(self) -> list[int]:
        """The key file numbers present, ascending (0 = staged, last = primary)."""
        return sorted(self._scan())

    def _rotate_locked(self) -> int:
        number2path = self._scan()
        if 0 not in number2path:  # crashed between the two renames of a rotation
            number2path[0] = self._write_key(0)
        primary = max(number2path) + 1
        staged = self._write_temp_key()
        os.rename(number2path.pop(0), self.path / str(primary))
        os.rename(staged, self.path / "0")
        secondaries = sorted(number2path, reverse=True)  # old primary first
        for number in secondaries[self.max_active_keys - 2 :]:
            number2path[number].unlink()
            LOG.info("purged Fernet key %s", number2path[number])
        self._fsync_dir()
        LOG.info("rotated Fernet keys: primary is now %d", primary)
        return primary

    def _scan(self) -> dict[int, Path]:
        number2path = {}
        for entry in os.scandir(self.path):
            if entry.name.isdigit() and entry.is_file():
                number2path[int(entry.name)] = Path(entry.path)
        return number2path

    def _write_key(self, number: int) -> Path:
        target = self.path / str(number)
        os.rename(self._write_temp_key(), target)
        self._fsync_dir()
        return target

    def _write_temp_key(self) -> Path:
        temp = self.path / f".key-{secrets.token_hex(8)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, Fernet.generate_key())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return temp

    def _fsync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            for stale in self.path.glob(".key-*.tmp"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            os.close(fd)
