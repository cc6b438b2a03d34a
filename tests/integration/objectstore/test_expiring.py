"""Expiring objects: X-Delete-At / X-Delete-After hide an object when due, and the expirer
(every second on this module's own cloud) removes it from its container for good."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests.integration.conftest import RunningCloud, start_cloud
from tests.integration.objectstore.support import (
    Swift,
    eventually,
    object_files,
    unexpected_tracebacks,
)


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running = start_cloud(tmp_path_factory.mktemp("expiring"),
                          POCKETSTACK_OBJECTSTORE__EXPIRER_INTERVAL="1")
    yield running
    code = running.stop()
    assert code == 0, f"exit {code}\n{running.log()}"
    assert unexpected_tracebacks(running.log()) == []


@pytest.fixture
def account(expiring: RunningCloud) -> Iterator[Swift]:
    token = expiring.admin_token()
    client = Swift(expiring.objectstore_url, "", token)
    projects = client.http.get(f"{expiring.auth_url}/auth/projects",
                               headers={"X-Auth-Token": token}).json()["projects"]
    client.account = "AUTH_" + next(p["id"] for p in projects if p["name"] == "admin")
    yield client
    client.close()


def test_delete_after_hides_then_expirer_removes(expiring: RunningCloud,
                                                 account: Swift) -> None:
    name = account.container()
    account.put(f"{name}/short", b"bye", **{"X-Delete-After": "2"})
    account.put(f"{name}/keep", b"stay")
    head = account.request("HEAD", f"{name}/short")
    assert head.status_code == 200
    delete_at = int(head.headers["x-delete-at"])
    assert abs(delete_at - (time.time() + 2)) <= 2
    assert account.get(f"{name}/short").content == b"bye"

    def gone() -> None:
        assert account.request("GET", f"{name}/short").status_code == 404
        assert account.request("HEAD", f"{name}/short").status_code == 404

    eventually(gone, timeout=6)

    def unlisted() -> None:
        assert account.names(name) == ["keep"]
        assert account.request("HEAD", name).headers["x-container-object-count"] == "1"

    eventually(unlisted, timeout=10)
    assert all(p.suffix == ".ts" for p in
               object_files(expiring.data_dir, account.account, name, "short", suffix=""))
    assert account.get(f"{name}/keep").content == b"stay"


def test_delete_at_set_by_post(account: Swift) -> None:
    name = account.container()
    account.put(f"{name}/o", b"x", **{"X-Object-Meta-A": "1"})
    when = int(time.time()) + 2
    account.ok("POST", f"{name}/o", 202, headers={"X-Delete-At": str(when)})
    assert account.request("HEAD", f"{name}/o").headers["x-delete-at"] == str(when)
    eventually(lambda: _assert_status(account, f"{name}/o", 404), timeout=6)
    eventually(lambda: _assert_names(account, name, []), timeout=10)


def test_newer_put_or_post_cancels_expiry(account: Swift) -> None:
    name = account.container()
    # 2 s, not 1: on a loaded machine the PUT and the POST that cancels it may be a second
    # apart, and the POST would find the object expired already
    account.put(f"{name}/overwritten", b"old", **{"X-Delete-After": "2"})
    account.put(f"{name}/overwritten", b"new")
    account.put(f"{name}/posted", b"p", **{"X-Delete-After": "2"})
    account.ok("POST", f"{name}/posted", 202, headers={"X-Object-Meta-B": "2"})
    time.sleep(4.5)  # due, and at least two expirer passes
    assert account.get(f"{name}/overwritten").content == b"new"
    assert account.get(f"{name}/posted").content == b"p"
    assert "x-delete-at" not in account.request("HEAD", f"{name}/posted").headers
    assert account.names(name) == ["overwritten", "posted"]


def test_expiry_queue_is_not_reachable(account: Swift) -> None:
    hidden = Swift(account.base_url, ".expiring_objects", account.token)
    assert hidden.request("GET").status_code in (401, 403)


def _assert_status(account: Swift, path: str, status: int) -> None:
    assert account.request("GET", path).status_code == status


def _assert_names(account: Swift, container: str, names: list[str]) -> None:
    assert account.names(container) == names
