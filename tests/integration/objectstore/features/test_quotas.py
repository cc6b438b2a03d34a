"""Container and account quotas (Swift's ``container_quotas`` and ``account_quotas``): the
``swift`` CLI's ``post -m quota-...``, raw HTTP for the rest, bypass attempts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import (
    Keystone,
    Persona,
    Swift,
    eventually,
    run_cli,
    uniq,
)

TOO_BIG = "Upload exceeds quota."


def cli_as(cloud: RunningCloud, persona: Persona, *args: str, storage_url: str | None = None
           ) -> str:
    """The ``swift`` CLI logged in as ``persona`` (on ``storage_url`` if given)."""
    env = {"OS_USERNAME": persona.user["name"], "OS_PASSWORD": persona.password,
           "OS_PROJECT_ID": persona.project_id, "OS_PROJECT_NAME": "",
           "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}
    extra = ["--os-storage-url", storage_url] if storage_url else []
    return run_cli(cloud, "swift", *extra, *args, env=env).stdout


def put(client: Swift, path: str, data: bytes = b"", **headers: str) -> httpx.Response:
    return client.request("PUT", path, content=data, headers=headers)


@pytest.fixture
def reseller(keystone: Keystone) -> Iterator[Persona]:
    yield keystone.persona("ResellerAdmin")


@pytest.fixture
def owned(owner: Persona) -> Iterator[Swift]:
    client = owner.swift()
    yield client
    client.close()


def test_info_advertises_both_quota_middlewares(swift: Swift) -> None:
    info = swift.http.get("/info").json()
    assert info["container_quotas"] == {} and info["account_quotas"] == {}


# -- container quotas ----------------------------------------------------------------------------
def test_container_bytes_quota_set_with_the_swift_cli(cloud: RunningCloud, swift: Swift) -> None:
    container = swift.container()
    run_cli(cloud, "swift", "post", "-m", "quota-bytes:10", container)
    assert swift.request("HEAD", container).headers["x-container-meta-quota-bytes"] == "10"
    response = put(swift, f"{container}/o", b"01234567890")
    assert (response.status_code, response.text) == (413, TOO_BIG)
    assert put(swift, f"{container}/o", b"0123456789").status_code == 201
    assert put(swift, f"{container}/p", b"x").status_code == 413
    assert put(swift, f"{container}/p").status_code == 201  # 0 more bytes fit
    swift.ok("POST", container, headers={"X-Remove-Container-Meta-Quota-Bytes": "x"})
    assert put(swift, f"{container}/p", b"x" * 100).status_code == 201


def test_container_count_quota(swift: Swift) -> None:
    container = swift.container(**{"X-Container-Meta-Quota-Count": "2"})
    assert put(swift, f"{container}/a", b"1").status_code == 201
    assert put(swift, f"{container}/b", b"1").status_code == 201
    assert put(swift, f"{container}/c", b"1").status_code == 413
    assert put(swift, f"{container}/a", b"2").status_code == 413  # an overwrite counts too
    swift.ok("DELETE", f"{container}/b")
    assert put(swift, f"{container}/c", b"1").status_code == 201


@pytest.mark.parametrize(("header", "message"), [
    ("X-Container-Meta-Quota-Bytes", "Invalid bytes quota."),
    ("X-Container-Meta-Quota-Count", "Invalid count quota.")])
@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_invalid_container_quotas(swift: Swift, header: str, message: str,
                                  value: str) -> None:
    response = swift.request("PUT", uniq(), headers={header: value})
    assert (response.status_code, response.text) == (400, message)
    container = swift.container()
    response = swift.request("POST", container, headers={header: value})
    assert (response.status_code, response.text) == (400, message)


def test_chunked_upload_is_refused_once_the_quota_is_reached(swift: Swift) -> None:
    container = swift.container(**{"X-Container-Meta-Quota-Bytes": "10"})

    def body() -> Iterator[bytes]:
        yield b"x" * 50

    assert swift.request("PUT", f"{container}/a", content=body()).status_code == 201
    assert swift.request("PUT", f"{container}/b", content=body()).status_code == 413


def test_copies_count_the_source_size(swift: Swift) -> None:
    source = swift.container()
    swift.put(f"{source}/big", b"x" * 100)
    swift.put(f"{source}/small", b"x" * 5)
    target = swift.container(**{"X-Container-Meta-Quota-Bytes": "50"})
    response = swift.request("COPY", f"{source}/big", headers={"Destination": f"{target}/b"})
    assert (response.status_code, response.text) == (413, TOO_BIG)
    response = put(swift, f"{target}/b", b"", **{"X-Copy-From": f"{source}/big"})
    assert response.status_code == 413
    response = put(swift, f"{target}/s", b"", **{"X-Copy-From": f"/{source}/small"})
    assert response.status_code == 201
    response = swift.request("COPY", f"{source}/small", headers={"Destination": f"{target}/t"})
    assert response.status_code == 201
    assert sorted(swift.names(target)) == ["s", "t"]


def test_quota_answers_after_authorization(cloud: RunningCloud, swift: Swift,
                                          owned: Swift) -> None:
    """A caller who may not write there gets 401/403, never the 413 that would tell it
    about the container."""
    container = swift.container(**{"X-Container-Meta-Quota-Count": "0"})
    stranger = Swift(cloud.objectstore_url, swift.account, owned.token)
    assert put(stranger, f"{container}/o", b"1").status_code == 403
    anonymous = Swift(cloud.objectstore_url, swift.account, None)
    assert put(anonymous, f"{container}/o", b"1").status_code == 401
    assert put(swift, f"{container}/o", b"1").status_code == 413
    stranger.close()
    anonymous.close()


# -- account quotas -----------------------------------------------------------------------------
@pytest.mark.parametrize("header", [
    "X-Account-Quota-Bytes", "X-Account-Meta-Quota-Bytes", "X-Account-Quota-Count",
    "X-Account-Quota-Bytes-Policy-default", "X-Account-Quota-Count-Policy-single",
    "X-Remove-Account-Quota-Bytes", "X-Remove-Account-Meta-Quota-Bytes",
    "X-Remove-Account-Quota-Count-Policy-default"])
def test_owner_cannot_set_or_remove_its_own_quota(owned: Swift, header: str) -> None:
    assert owned.request("POST", headers={header: "0"}).status_code == 403


def test_clients_cannot_write_quota_sysmeta(owned: Swift) -> None:
    owned.ok("POST", headers={"X-Account-Sysmeta-Quota-Bytes": "0",
                              "X-Account-Sysmeta-Quota-Count": "0"})
    head = owned.request("HEAD").headers
    assert "x-account-quota-bytes" not in head and "x-account-quota-count" not in head
    assert put(owned, owned.container() + "/o", b"data").status_code == 201


def test_reseller_sets_account_bytes_quota_with_the_swift_cli(
        cloud: RunningCloud, reseller: Persona, owner: Persona, owned: Swift) -> None:
    container = owned.container()
    cli_as(cloud, reseller, "post", "-m", "quota-bytes:10", storage_url=owner.storage_url)
    head = owned.request("HEAD").headers
    assert head["x-account-quota-bytes"] == "10" and head["x-account-meta-quota-bytes"] == "10"
    assert put(owned, f"{container}/a", b"x" * 11).status_code == 413
    assert put(owned, f"{container}/a", b"x" * 8).status_code == 201

    def refused() -> None:
        response = put(owned, f"{container}/b", b"xxx")
        assert (response.status_code, response.text) == (413, TOO_BIG)

    eventually(refused)  # once the account has heard of the first object
    as_reseller = reseller.swift(owned.account)
    assert put(as_reseller, f"{container}/r", b"x" * 100).status_code == 201  # not limited
    cli_as(cloud, reseller, "post", "-m", "quota-bytes:", storage_url=owner.storage_url)
    assert "x-account-quota-bytes" not in owned.request("HEAD").headers
    assert put(owned, f"{container}/b", b"xxx").status_code == 201
    as_reseller.close()


def test_reseller_sets_count_and_policy_quotas(reseller: Persona, owned: Swift) -> None:
    admin = reseller.swift(owned.account)
    admin.ok("POST", headers={"X-Account-Quota-Count-Policy-default": "1",
                              "X-Account-Quota-Bytes-Policy-single": "100"})
    head = owned.request("HEAD").headers
    assert head["x-account-quota-count-policy-default"] == "1"
    assert head["x-account-quota-bytes-policy-single"] == "100"
    default = owned.container()
    single = owned.container(**{"X-Storage-Policy": "single"})
    assert put(owned, f"{default}/a", b"1").status_code == 201

    def refused() -> None:
        response = put(owned, f"{default}/b", b"1")
        assert (response.status_code, response.text) == (413, "Upload exceeds policy quota.")

    eventually(refused)
    assert put(owned, f"{single}/a", b"x" * 100).status_code == 201
    assert put(owned, f"{single}/b", b"x" * 101).status_code == 413
    admin.ok("POST", headers={"X-Account-Quota-Count": "1",
                              "X-Remove-Account-Quota-Count-Policy-default": "x",
                              "X-Account-Quota-Bytes-Policy-single": ""})
    head = owned.request("HEAD").headers
    assert head["x-account-quota-count"] == "1"
    assert "x-account-quota-count-policy-default" not in head
    assert "x-account-quota-bytes-policy-single" not in head
    eventually(lambda: _assert_status(put(owned, f"{single}/c", b"1"), 413))
    admin.ok("POST", headers={"X-Remove-Account-Quota-Count": "x"})
    assert put(owned, f"{single}/c", b"1").status_code == 201
    admin.close()


def _assert_status(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text


def test_reseller_quota_values_must_be_digits(reseller: Persona, owned: Swift) -> None:
    admin = reseller.swift(owned.account)
    for header in ("X-Account-Quota-Bytes", "X-Account-Quota-Count-Policy-default"):
        assert admin.request("POST", headers={header: "lots"}).status_code == 400
        assert admin.request("POST", headers={header: "-1"}).status_code == 400
    admin.close()


def test_account_quota_applies_to_copies_and_bulk_uploads(reseller: Persona,
                                                          owned: Swift) -> None:
    container = owned.container()
    owned.put(f"{container}/src", b"x" * 40)
    admin = reseller.swift(owned.account)
    admin.ok("POST", headers={"X-Account-Quota-Bytes": "60"})
    eventually(lambda: _assert_status(
        owned.request("COPY", f"{container}/src", headers={"Destination": f"{container}/d"}),
        413))
    assert put(owned, f"{container}/e", b"", **{"X-Copy-From": f"{container}/src"}).status_code \
        == 413
    admin.close()
