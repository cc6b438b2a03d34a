"""Container sync is not offered: ``/info`` does not list it and ``X-Container-Sync-To`` is
refused with Swift's answer for a cluster without sync realms (``swift post -t``, raw HTTP)."""

from __future__ import annotations

from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Swift, run_cli, uniq

REALM = "//realm/cluster/AUTH_x/target"


def test_info_does_not_offer_container_sync(swift: Swift) -> None:
    assert "container_sync" not in swift.http.get("/info").json()


def test_swift_cli_sync_to_is_refused(cloud: RunningCloud, swift: Swift) -> None:
    container = swift.container()
    result = run_cli(cloud, "swift", "post", "-t", REALM, "-k", "secret", container,
                     check=False)
    assert result.returncode != 0
    assert "400" in result.stderr and "No realm key for 'realm'" in result.stderr
    head = swift.request("HEAD", container).headers
    assert "x-container-sync-to" not in head and "x-container-sync-key" not in head


def test_sync_to_on_put_and_post(cloud: RunningCloud, swift: Swift) -> None:
    name = uniq()
    response = swift.request("PUT", name, headers={"X-Container-Sync-To": REALM})
    assert (response.status_code, response.text) == (400, "No realm key for 'realm'")
    assert swift.request("HEAD", name).status_code == 404  # not created
    container = swift.container(**{"X-Container-Meta-Color": "red"})
    response = swift.request("POST", container, headers={
        "X-Container-Sync-To": "http://127.0.0.1/v1/AUTH_x/c",
        "X-Container-Meta-Color": "blue"})
    assert (response.status_code, response.text) == (
        400, "Invalid host '127.0.0.1' in X-Container-Sync-To")
    assert swift.request("HEAD", container).headers["x-container-meta-color"] == "red"
    response = swift.request("POST", container, headers={"X-Container-Sync-To": "//a/b"})
    assert (response.status_code, response.text) == (
        400, "Invalid X-Container-Sync-To format '//a/b'")
    assert swift.request("POST", container, headers={"X-Container-Sync-To": ""}
                         ).status_code == 204
    anonymous = Swift(cloud.objectstore_url, swift.account, None)
    assert anonymous.request("POST", container, headers={"X-Container-Sync-To": REALM}
                             ).status_code == 401
    anonymous.close()
