"""Fernet tokens: payload round trips, tampering, expiry, keys and rotation."""

from __future__ import annotations

import base64
import os
import stat
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest
from cryptography.fernet import Fernet

from pocketstack.identity import tokens
from pocketstack.identity.tokens import (
    AUTH_METHODS,
    FernetKeyRepository,
    InvalidToken,
    KeyRepositoryError,
    TokenExpired,
    TokenFormatter,
    TokenPayload,
    decode_payload,
    encode_payload,
    random_audit_id,
    rescoped_audit_ids,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def _payload(**kwargs: object) -> TokenPayload:
    fields: dict[str, object] = {
        "user_id": uuid.uuid4().hex,
        "methods": ("password",),
        "expires_at": LATER,
        "audit_ids": (random_audit_id(),),
    }
    fields.update(kwargs)
    return TokenPayload(**fields)  # type: ignore[arg-type]


SCOPES: dict[str, dict[str, object]] = {
    "unscoped": {},
    "project": {"project_id": uuid.uuid4().hex},
    "domain": {"domain_id": uuid.uuid4().hex},
    "domain_default": {"domain_id": "default"},
    "system": {"system": "all"},
    "app_cred": {
        "methods": ("application_credential",),
        "project_id": uuid.uuid4().hex,
        "app_cred_id": uuid.uuid4().hex,
    },
    "rescoped_project": {
        "methods": ("token", "password"),
        "project_id": uuid.uuid4().hex,
        "audit_ids": (random_audit_id(), random_audit_id()),
    },
    "non_uuid_ids": {"user_id": "admin@ldap", "project_id": "service-project"},
}


@pytest.fixture
def repo(tmp_path: Path) -> FernetKeyRepository:
    repository = FernetKeyRepository(tmp_path / "keys" / "fernet")
    repository.initialize()
    return repository


@pytest.fixture
def formatter(repo: FernetKeyRepository) -> TokenFormatter:
    return TokenFormatter.from_repository(repo)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_round_trip_every_scope(formatter: TokenFormatter, scope: str) -> None:
    payload = _payload(**SCOPES[scope])
    token = formatter.pack(payload)
    unpacked, issued_at = formatter.unpack(token, now=NOW)
    assert unpacked == payload
    assert issued_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - issued_at) < timedelta(seconds=5)
    assert "=" not in token


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_token_length_bound(formatter: TokenFormatter, scope: str) -> None:
    token = formatter.pack(_payload(**SCOPES[scope]))
    assert len(token) <= tokens.MAX_TOKEN_SIZE


def test_typical_lengths(formatter: TokenFormatter) -> None:
    now = 1_700_000_000.654321  # microseconds take their widest msgpack form
    assert len(formatter.pack(_payload(), now=now)) == 162
    assert len(formatter.pack(_payload(project_id=uuid.uuid4().hex), now=now)) == 183
    rescoped = _payload(project_id=uuid.uuid4().hex, audit_ids=(random_audit_id(),) * 2)
    assert len(formatter.pack(rescoped, now=now)) == 204


def test_issued_at_keeps_microseconds(formatter: TokenFormatter) -> None:
    token, issued_at = formatter.issue(_payload(), now=1_700_000_000.654321)
    _, unpacked_issued_at = formatter.unpack(token, now=datetime(2000, 1, 1, tzinfo=UTC))
    assert issued_at == unpacked_issued_at
    assert issued_at.microsecond == 654321


def test_uuid_ids_are_compressed_and_others_kept() -> None:
    user_id = uuid.uuid4().hex
    fields = msgpack.unpackb(encode_payload(_payload(user_id=user_id, domain_id="default")))
    assert fields[0] == tokens.DomainScopedPayload.version
    assert fields[1] == bytes.fromhex(user_id)
    assert fields[6] == "default"


def test_upper_case_hex_id_is_kept_verbatim() -> None:
    user_id = uuid.uuid4().hex.upper()
    payload = _payload(user_id=user_id)
    assert decode_payload(encode_payload(payload)).user_id == user_id


def test_payload_classes_have_unique_versions() -> None:
    versions = [cls.version for cls in tokens._PAYLOAD_CLASSES]
    assert len(versions) == len(set(versions))


def test_methods_bitmask_round_trip() -> None:
    payload = _payload(methods=AUTH_METHODS)
    assert decode_payload(encode_payload(payload)).methods == AUTH_METHODS


def test_payload_normalizes_methods_and_expiry() -> None:
    cest = timezone(timedelta(hours=2))
    payload = _payload(
        methods=("token", "password", "token"),
        expires_at=datetime(2025, 6, 1, 14, 0, 0, 999_999, tzinfo=cest),
    )
    assert payload.methods == ("password", "token")
    assert payload.expires_at == datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    assert payload.expires_at.tzinfo is UTC


@pytest.mark.parametrize(
    "kwargs",
    [
        {"methods": ()},
        {"methods": ("kerberos-ish",)},
        {"expires_at": datetime(2030, 1, 1)},
        {"audit_ids": ()},
        {"audit_ids": (random_audit_id(),) * 3},
        {"audit_ids": ("short",)},
        {"audit_ids": (random_audit_id()[:-1] + "B",)},  # non-canonical last char
        {"project_id": "p", "domain_id": "d"},
        {"system": "all", "project_id": "p"},
        {"app_cred_id": "a"},
        {"user_id": ""},
        {"project_id": ""},
        {"system": ""},
    ],
)
def test_invalid_payloads_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _payload(**kwargs)


def test_audit_ids() -> None:
    audit_id = random_audit_id()
    assert len(audit_id) == 22
    assert len(base64.urlsafe_b64decode(audit_id + "==")) == 16
    parent = _payload()
    own, chain = rescoped_audit_ids(parent)
    assert chain == parent.audit_id and own != parent.audit_id
    child = _payload(audit_ids=(own, chain))
    assert child.audit_id == own and child.audit_chain_id == parent.audit_chain_id
    grandchild = _payload(audit_ids=rescoped_audit_ids(child))
    assert grandchild.audit_chain_id == parent.audit_id


# ------------------------------------------------------------------ rejection


def test_tamper_any_character_is_invalid(formatter: TokenFormatter) -> None:
    token = formatter.pack(_payload(project_id=uuid.uuid4().hex))
    for i in range(len(token)):
        replacement = "A" if token[i] != "A" else "B"
        with pytest.raises(InvalidToken):
            formatter.unpack(token[:i] + replacement + token[i + 1 :], now=NOW)


@pytest.mark.parametrize(
    "garbage", ["", "x", "not a token", "gAAAAA", "é" * 160, "A" * 5000, "%%%%" * 40]
)
def test_garbage_is_invalid(formatter: TokenFormatter, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        formatter.unpack(garbage, now=NOW)


def test_non_canonical_spellings_are_invalid(formatter: TokenFormatter) -> None:
    token = formatter.pack(_payload())
    for variant in (token + "=", token[:10] + "." + token[10:], token + "\n", " " + token):
        with pytest.raises(InvalidToken):
            formatter.unpack(variant, now=NOW)


def test_wrong_key_is_invalid(formatter: TokenFormatter) -> None:
    token = formatter.pack(_payload())
    stranger = TokenFormatter([Fernet.generate_key()])
    with pytest.raises(InvalidToken):
        stranger.unpack(token, now=NOW)


def test_authentic_but_malformed_payload_is_invalid() -> None:
    key = Fernet.generate_key()
    formatter = TokenFormatter([key])
    for plaintext in (
        b"",
        b"\xc1",
        msgpack.packb([99, "u"]),
        msgpack.packb([True, "u", 1, 2**31, b"x" * 16, "d"]),  # bool is not a version
        msgpack.packb({"a": 1}),
        msgpack.packb([2, "u", 1, 1, b"x" * 16]),
    ):
        token = Fernet(key).encrypt(plaintext).rstrip(b"=").decode()
        with pytest.raises(InvalidToken) as info:
            formatter.unpack(token, now=NOW)
        assert not isinstance(info.value, TokenExpired)


def test_expired(formatter: TokenFormatter) -> None:
    token = formatter.pack(_payload(expires_at=NOW))
    with pytest.raises(TokenExpired):
        formatter.unpack(token, now=NOW)
    with pytest.raises(InvalidToken):  # TokenExpired is an InvalidToken
        formatter.unpack(token, now=NOW + timedelta(days=1))
    payload, _ = formatter.unpack(token, now=NOW - timedelta(seconds=1))
    assert payload.expires_at == NOW


def test_allow_expired_window(formatter: TokenFormatter) -> None:
    token = formatter.pack(_payload(expires_at=NOW))
    later = NOW + timedelta(hours=1)
    formatter.unpack(token, now=later, allow_expired_for=timedelta(days=2))
    with pytest.raises(TokenExpired):
        formatter.unpack(token, now=later, allow_expired_for=timedelta(minutes=5))


def test_formatter_without_keys_refuses() -> None:
    with pytest.raises(KeyRepositoryError):
        TokenFormatter([])


# ------------------------------------------------------------------ key repository


def test_initialize_layout_and_modes(tmp_path: Path) -> None:
    repository = FernetKeyRepository(tmp_path / "fernet")
    assert repository.initialize() is True
    assert repository.key_numbers() == [0, 1]
    assert stat.S_IMODE(os.stat(repository.path).st_mode) == 0o700
    for number in (0, 1):
        path = repository.path / str(number)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        Fernet(path.read_bytes())  # a valid urlsafe-b64 Fernet key
    assert not list(repository.path.glob("*.tmp"))


def test_initialize_is_idempotent(repo: FernetKeyRepository) -> None:
    keys = repo.load_keys()
    assert repo.initialize() is False
    assert repo.load_keys() == keys


def test_initialize_repairs_a_missing_staged_key(repo: FernetKeyRepository) -> None:
    repo.rotate()
    (repo.path / "0").unlink()
    assert repo.initialize() is False
    assert repo.key_numbers() == [0, 1, 2]


def test_file_modes_survive_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        repository = FernetKeyRepository(tmp_path / "fernet")
        repository.initialize()
        repository.rotate()
    finally:
        os.umask(old)
    for path in repository.path.iterdir():
        if path.name.isdigit():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_load_keys_orders_primary_first(repo: FernetKeyRepository) -> None:
    repo.rotate()  # 0, 1, 2
    files = {n: (repo.path / str(n)).read_bytes() for n in (0, 1, 2)}
    assert repo.load_keys() == [files[2], files[1], files[0]]


def test_missing_or_empty_repository_raises(tmp_path: Path) -> None:
    missing = FernetKeyRepository(tmp_path / "nope")
    with pytest.raises(KeyRepositoryError, match="does not exist"):
        missing.load_keys()
    with pytest.raises(KeyRepositoryError):
        missing.rotate()
    (tmp_path / "empty").mkdir()
    empty = FernetKeyRepository(tmp_path / "empty")
    with pytest.raises(KeyRepositoryError, match="no keys"):
        empty.load_keys()
    with pytest.raises(KeyRepositoryError, match="empty"):
        empty.rotate()


def test_corrupt_key_raises_naming_the_file(repo: FernetKeyRepository) -> None:
    (repo.path / "1").write_text("not-a-key")
    with pytest.raises(KeyRepositoryError, match="/1 is not a Fernet key"):
        repo.load_keys()


def test_non_key_files_and_trailing_newlines_are_tolerated(repo: FernetKeyRepository) -> None:
    (repo.path / "README").write_text("hello")
    key = (repo.path / "1").read_bytes()
    (repo.path / "1").write_bytes(key + b"\n")
    assert key in repo.load_keys()


def test_max_active_keys_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FernetKeyRepository(tmp_path, max_active_keys=1)


# ------------------------------------------------------------------ rotation


def test_rotate_promotes_staged_key(repo: FernetKeyRepository) -> None:
    staged = (repo.path / "0").read_bytes()
    assert repo.rotate() == 2
    assert (repo.path / "2").read_bytes() == staged
    assert (repo.path / "0").read_bytes() != staged
    assert repo.load_keys()[0] == staged


@pytest.mark.parametrize("max_active_keys", [2, 3, 4, 5])
def test_rotate_keeps_at_most_max_active_keys(tmp_path: Path, max_active_keys: int) -> None:
    repository = FernetKeyRepository(tmp_path / "k", max_active_keys=max_active_keys)
    repository.initialize()
    for rotation in range(1, 8):
        primary = repository.rotate()
        numbers = repository.key_numbers()
        assert primary == rotation + 1
        assert len(numbers) == min(max_active_keys, rotation + 2)
        assert numbers[0] == 0 and numbers[-1] == primary
        assert numbers[1:] == list(range(primary - len(numbers) + 2, primary + 1))


def test_token_survives_rotations_while_its_key_is_active(tmp_path: Path) -> None:
    repository = FernetKeyRepository(tmp_path / "k", max_active_keys=4)
    repository.initialize()
    payload = _payload(project_id=uuid.uuid4().hex)
    token = TokenFormatter.from_repository(repository).pack(payload)  # sealed with key 1
    for _ in range(2):  # max_active_keys - 2 rotations
        repository.rotate()
        assert TokenFormatter.from_repository(repository).unpack(token, now=NOW)[0] == payload
    repository.rotate()  # key 1 is purged
    with pytest.raises(InvalidToken):
        TokenFormatter.from_repository(repository).unpack(token, now=NOW)


def test_default_repository_survives_one_rotation(repo: FernetKeyRepository) -> None:
    token = TokenFormatter.from_repository(repo).pack(_payload())
    repo.rotate()
    TokenFormatter.from_repository(repo).unpack(token, now=NOW)
    repo.rotate()
    with pytest.raises(InvalidToken):
        TokenFormatter.from_repository(repo).unpack(token, now=NOW)


def test_staged_key_validates_tokens_of_a_node_that_rotated_first(tmp_path: Path) -> None:
    node_a = FernetKeyRepository(tmp_path / "a")
    node_a.initialize()
    node_b_keys = node_a.load_keys()  # node B synced before A rotated
    node_a.rotate()
    token = TokenFormatter.from_repository(node_a).pack(_payload())
    assert TokenFormatter(node_b_keys).unpack(token, now=NOW)


def test_rotation_recovers_from_a_crash_between_renames(repo: FernetKeyRepository) -> None:
    (repo.path / "0").rename(repo.path / "2")  # promoted, new staged key never landed
    assert repo.rotate() == 3
    assert repo.key_numbers() == [0, 2, 3]


def test_stale_temp_files_are_cleaned_and_never_loaded(repo: FernetKeyRepository) -> None:
    stale = repo.path / ".key-deadbeef.tmp"
    stale.write_bytes(b"half-written")
    assert len(repo.load_keys()) == 2
    repo.rotate()
    assert not stale.exists()


def test_key_writes_are_atomic(repo: FernetKeyRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p.name: p.read_bytes() for p in repo.path.iterdir() if p.name.isdigit()}

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        repo.rotate()
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in repo.path.iterdir() if p.name.isdigit()}
    assert after == before
    assert not list(repo.path.glob("*.tmp"))
    assert repo.rotate() == 2


def test_concurrent_rotations_are_serialized(tmp_path: Path) -> None:
    repository = FernetKeyRepository(tmp_path / "k", max_active_keys=4)
    repository.initialize()

    def rotate_five_times() -> None:
        for _ in range(5):
            FernetKeyRepository(repository.path, max_active_keys=4).rotate()

    threads = [threading.Thread(target=rotate_five_times) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert repository.key_numbers() == [0, 19, 20, 21]
    assert len(set(repository.load_keys())) == 4
