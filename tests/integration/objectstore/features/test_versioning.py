"""Object versioning, all three of Swift's modes: ``X-Versions-Location`` (stack),
``X-History-Location`` (history) and ``X-Versions-Enabled`` (version ids), with
openstacksdk, python-swiftclient, the swift CLI and raw HTTP."""

from __future__ import annotations

import pytest
from openstack.connection import Connection as SDK
from swiftclient.client import Connection
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import (
    Keystone,
    Persona,
    Swift,
    eventually,
    md5,
    run_cli,
    uniq,
)

DELETE_MARKER = "application/x-deleted;swift_versions_deleted=1"



def test_info_advertises_versioning(swift: Swift) -> None:
    info = swift.http.get("/info").json()
    assert info["versioned_writes"] == {
        "allowed_flags": ["x-versions-location", "x-history-location"]}
    assert info["object_versioning"] == {}


# -- legacy: X-Versions-Location (stack) ---------------------------------------------------------
def test_stack_mode_with_openstacksdk(sdk: SDK, swift: Swift) -> None:
    versions, name = uniq("v"), uniq()
    sdk.object_store.create_container(name=versions)
    sdk.object_store.create_container(name=name, versions_location=versions)
    assert sdk.object_store.get_container_metadata(name).versions_location == versions
    for body in (b"one", b"two", b"three"):
        sdk.object_store.upload_object(container=name, name="doc", data=body)
    kept = [o.name for o in sdk.object_store.objects(versions)]
    assert len(kept) == 2 and all(k.startswith("003doc/") for k in kept)
    assert [swift.get(f"{versions}/{k}").content for k in kept] == [b"one", b"two"]
    for expected in (b"two", b"one"):
        sdk.object_store.delete_object("doc", container=name)
        assert sdk.object_store.download_object("doc", container=name) == expected
    assert list(sdk.object_store.objects(versions)) == []
    sdk.object_store.delete_object("doc", container=name)
    assert swift.get(f"{name}/doc").status_code == 404


def test_stack_mode_keeps_metadata_and_versions_copies(swift: Swift) -> None:
    versions = swift.container(uniq("v"))
    name = swift.container(**{"X-Versions-Location": versions})
    swift.put(f"{name}/o", b"aaaaa", **{"Content-Type": "text/one", "X-Object-Meta-N": "1"})
    swift.put(f"{name}/o", b"bbbbb", **{"Content-Type": "text/two"})
    swift.put(f"{name}/src", b"ccccc")
    swift.ok("COPY", f"{name}/src", 201, headers={"Destination": f"{name}/o"})
    rows = swift.listing(versions)
    assert [r["content_type"] for r in rows] == ["text/one", "text/two"]
    first = swift.get(f"{versions}/{rows[0]['name']}")
    assert first.headers["x-object-meta-n"] == "1" and first.content == b"aaaaa"
    swift.ok("POST", f"{name}/o", headers={"X-Object-Meta-X": "y"})  # no new version
    assert len(swift.listing(versions)) == 2


def test_history_mode_with_swift_cli(cloud: RunningCloud, swift: Swift) -> None:
    history, name = swift.container(uniq("h")), swift.container()
    run_cli(cloud, "swift", "post", "-H", f"X-History-Location: {history}", name)
    assert swift.ok("HEAD", name).headers["x-history-location"] == history
    swift.put(f"{name}/o", b"v1")
    swift.put(f"{name}/o", b"v2")
    swift.ok("DELETE", f"{name}/o")
    assert swift.get(f"{name}/o").status_code == 404
    rows = swift.listing(history)
    assert [r["content_type"] for r in rows][-1] == DELETE_MARKER
    assert [swift.get(f"{history}/{r['name']}").content for r in rows[:2]] == [b"v1", b"v2"]
    run_cli(cloud, "swift", "post", "-H", "X-Remove-History-Location: x", name)
    assert "x-history-location" not in swift.ok("HEAD", name).headers


def test_stack_mode_delete_marker_restores_the_version_under_it(swift: Swift) -> None:
    history = swift.container(uniq("h"))
    name = swift.container(**{"X-History-Location": history})
    swift.put(f"{name}/o", b"v1")
    swift.ok("DELETE", f"{name}/o")  # history: copy + marker
    swift.ok("POST", name, headers={"X-Versions-Location": history})  # now stack mode
    swift.ok("DELETE", f"{name}/o", (204, 404))
    assert swift.get(f"{name}/o").content == b"v1"
    assert swift.listing(history) == []


@pytest.mark.parametrize(("headers", "status", "text"), [
    ({"X-Versions-Location": "a", "X-History-Location": "b"}, 400,
     "Only one of x-versions-location or x-history-location may be specified"),
    ({"X-Versions-Location": "a/b"}, 412, "Container name cannot contain slashes"),
])
def test_bad_locations(swift: Swift, container: str, headers: dict[str, str], status: int,
                       text: str) -> None:
    response = swift.request("POST", container, headers=headers)
    assert (response.status_code, response.text) == (status, text)
    head = swift.ok("HEAD", container).headers
    assert "x-versions-location" not in head and "x-history-location" not in head


def test_legacy_location_and_version_ids_exclude_each_other(swift: Swift) -> None:
    legacy = swift.container(**{"X-Versions-Location": uniq("v")})
    response = swift.request("POST", legacy, headers={"X-Versions-Enabled": "true"})
    assert response.status_code == 400
    assert "legacy versioned writes" in response.text
    modern = swift.container(**{"X-Versions-Enabled": "true"})
    response = swift.request("POST", modern, headers={"X-History-Location": uniq("h")})
    assert response.status_code == 400
    assert "x-history-location" not in swift.ok("HEAD", modern).headers


def test_legacy_versions_need_only_write_access_to_the_versioned_container(
        keystone: Keystone, owner: Persona) -> None:
    writer = keystone.persona("member")
    stranger = keystone.persona("member")
    mine = owner.swift()
    try:
        versions = mine.container(uniq("v"))
        name = mine.container(**{"X-Versions-Location": versions,
                                 "X-Container-Write": f"{writer.project_id}:*",
                                 "X-Container-Read": f"{writer.project_id}:*"})
        theirs = writer.swift(owner.account)
        theirs.put(f"{name}/o", b"first")
        theirs.put(f"{name}/o", b"second")
        assert len(mine.listing(versions)) == 1
        assert theirs.get(f"{versions}/{mine.listing(versions)[0]['name']}").status_code == 403
        other = stranger.swift(owner.account)
        assert other.request("PUT", f"{name}/o", content=b"x").status_code == 403
        assert other.request("DELETE", f"{name}/o").status_code == 403
        assert len(mine.listing(versions)) == 1
        theirs.ok("DELETE", f"{name}/o")
        assert mine.get(f"{name}/o").content == b"first"
        theirs.close()
        other.close()
    finally:
        mine.close()


def test_versioning_a_symlink_keeps_the_link(swift: Swift) -> None:
    versions = swift.container(uniq("v"))
    name = swift.container(**{"X-Versions-Location": versions})
    swift.put(f"{name}/a", b"aaaaa")
    swift.put(f"{name}/b", b"bbbbb")
    swift.put(f"{name}/link", b"", **{"X-Symlink-Target": f"{name}/a"})
    swift.put(f"{name}/link", b"", **{"X-Symlink-Target": f"{name}/b"})
    kept = swift.listing(versions)[0]
    assert kept["symlink_path"].endswith(f"/{name}/a")
    assert swift.get(f"{versions}/{kept['name']}").content == b"aaaaa"
    swift.ok("DELETE", f"{name}/link")
    assert swift.get(f"{name}/link").content == b"aaaaa"
    assert md5(b"") == swift.ok("HEAD", f"{name}/link", params={"symlink": "get"}).headers[
        "etag"]


def test_swiftclient_sets_and_clears_versions_location(conn: Connection, swift: Swift) -> None:
    name, versions = uniq(), uniq("v")
    conn.put_container(versions)
    conn.put_container(name, headers={"X-Versions-Location": versions})
    assert conn.head_container(name)["x-versions-location"] == versions
    conn.post_container(name, {"X-Versions-Location": ""})
    assert "x-versions-location" not in conn.head_container(name)
    conn.put_object(name, "o", b"1")
    conn.put_object(name, "o", b"2")
    assert swift.listing(versions) == []


def test_legacy_location_given_as_raw_utf8_bytes(swift: Swift) -> None:
    versions = swift.container(uniq("v") + "☃")
    name = swift.container(**{"X-History-Location": versions.encode()})  # type: ignore[arg-type]
    swift.put(f"{name}/ö", b"v1")
    swift.put(f"{name}/ö", b"v2")
    swift.ok("DELETE", f"{name}/ö")
    swift.ok("POST", name, headers={"X-Versions-Location": versions.encode()})
    swift.ok("DELETE", f"{name}/ö")  # stack: the marker goes, v2 (under it) comes back
    assert swift.get(f"{name}/ö").content == b"v2"
    swift.ok("DELETE", f"{name}/ö")
    assert swift.get(f"{name}/ö").content == b"v1"


# -- X-Versions-Enabled ----------------------------------------------------------------------------
def versioned(swift: Swift) -> str:
    return swift.container(**{"X-Versions-Enabled": "true"})


def write(swift: Swift, path: str, data: bytes, **headers: str) -> str:
    return swift.put(path, data, **headers).headers["x-object-version-id"]


def test_versions_with_swift_cli(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container()
    run_cli(cloud, "swift", "post", "-H", "X-Versions-Enabled: true", name)
    assert swift.ok("HEAD", name).headers["x-versions-enabled"] == "True"
    first = write(swift, f"{name}/doc", b"one", **{"Content-Type": "text/one"})
    second = write(swift, f"{name}/doc", b"two!", **{"Content-Type": "text/two"})
    lines = run_cli(cloud, "swift", "list", "--versions", name).stdout.splitlines()
    assert [line.split()[3] for line in lines] == [second, first]
    assert [line.split()[-2] for line in lines] == ["text/two", "text/one"]
    assert run_cli(cloud, "swift", "list", name).stdout.split() == ["doc"]
    assert swift.ok("HEAD", name).headers["x-container-bytes-used"] == "7"


def test_version_ids_with_swiftclient(conn: Connection, swift: Swift) -> None:
    name = versioned(swift)
    v1 = write(swift, f"{name}/o", b"first")
    v2 = write(swift, f"{name}/o", b"second")
    headers, body = conn.get_object(name, "o")
    assert (body, headers["x-object-version-id"]) == (b"second", v2)
    assert headers["content-location"].endswith(f"/{name}/o?version-id={v2}")
    headers, body = conn.get_object(name, "o", query_string=f"version-id={v1}")
    assert (body, headers["x-object-version-id"]) == (b"first", v1)
    assert conn.head_object(name, "o", query_string=f"version-id={v1}")["etag"] == md5(
        b"first")
    conn.put_object(name, "o", b"", query_string=f"version-id={v1}")  # v1 current again
    assert conn.get_object(name, "o")[1] == b"first"
    listing = swift.listing(name, versions="")
    assert [(r["version_id"], r["is_latest"]) for r in listing] == [(v2, False), (v1, True)]
    conn.delete_object(name, "o", query_string=f"version-id={v2}")
    assert [r["version_id"] for r in swift.listing(name, versions="")] == [v1]


def test_delete_markers_and_listings(swift: Swift) -> None:
    name = versioned(swift)
    v1 = write(swift, f"{name}/o", b"data", **{"Content-Type": "text/x"})
    gone = swift.ok("DELETE", f"{name}/o")
    marker = gone.headers["x-object-version-id"]
    assert swift.get(f"{name}/o").status_code == 404
    assert swift.listing(name) == []
    head = swift.request("HEAD", f"{name}/o", params={"version-id": marker})
    assert head.status_code == 404 and head.headers["content-type"] == DELETE_MARKER
    rows = swift.listing(name, versions="")
    assert [(r["version_id"], r["is_latest"], r["content_type"]) for r in rows] == [
        (marker, True, DELETE_MARKER), (v1, False, "text/x")]
    again = swift.request("DELETE", f"{name}/o")  # a second marker, still 404
    assert again.status_code == 404 and again.headers["x-object-version-id"] != marker
    page = swift.listing(name, versions="", marker="o", version_marker=marker)
    assert [r["version_id"] for r in page] == [v1]
    swift.ok("PUT", f"{name}/o", 201, params={"version-id": v1})
    assert swift.get(f"{name}/o").content == b"data"


def test_plain_listing_shows_the_current_versions(swift: Swift) -> None:
    name = versioned(swift)
    v1 = write(swift, f"{name}/o", b"12345")
    row = swift.listing(name)[0]
    assert (row["bytes"], row["hash"], row["version_symlink"]) == (5, md5(b"12345"), True)
    assert row["symlink_path"].endswith(f"/{name}/o?version-id={v1}")
    xml = swift.ok("GET", name, params={"format": "xml"}).text
    assert "<bytes>5</bytes>" in xml and "version_symlink" not in xml
    assert swift.ok("GET", name).text == "o\n"


def test_versioning_off_keeps_versions(swift: Swift) -> None:
    name = versioned(swift)
    v1 = write(swift, f"{name}/o", b"one")
    swift.ok("POST", name, headers={"X-Versions-Enabled": "false"})
    assert swift.ok("HEAD", name).headers["x-versions-enabled"] == "False"
    assert "x-object-version-id" not in swift.put(f"{name}/o", b"two").headers
    rows = swift.listing(name, versions="")
    assert [(r["version_id"], r["is_latest"]) for r in rows] == [("null", True), (v1, False)]
    assert swift.get(f"{name}/o", ).content == b"two"
    assert swift.ok("GET", f"{name}/o", params={"version-id": v1}).content == b"one"


def test_versioned_container_deletion(swift: Swift) -> None:
    name = versioned(swift)
    v1 = write(swift, f"{name}/o", b"x")
    swift.ok("DELETE", f"{name}/o")
    refused = swift.request("DELETE", name)
    assert (refused.status_code, refused.text) == (
        409, "Delete all versions before deleting container.")
    for row in swift.listing(name, versions=""):
        swift.ok("DELETE", f"{name}/o", params={"version-id": row["version_id"]})
    assert v1 and swift.listing(name, versions="") == []
    swift.ok("DELETE", name)
    assert not [c for c in swift.names() if "versions" in c]


def test_hidden_containers_stay_hidden(swift: Swift) -> None:
    name = versioned(swift)
    write(swift, f"{name}/o", b"x")
    assert all("\x00" not in c for c in swift.names())
    assert name in swift.names(prefix=name)
    assert swift.request("GET", f"%00versions%00{name}", raw=True).status_code == 412
    link = swift.request("PUT", f"{name}/l", headers={
        "X-Symlink-Target": f"%00versions%00{name}/x"})
    assert link.status_code == 412


@pytest.mark.parametrize(("method", "params", "status", "text"), [
    ("GET", {"version-id": "bad"}, 400, "Invalid version parameter"),
    ("POST", {"version-id": "1700000000.00000"}, 400,
     "POST to a specific version is not allowed"),
    ("PUT", {"version-id": "null"}, 400, "Invalid version parameter"),
    ("GET", {"version-id": "1234567890.12345"}, 404, None),
])
def test_bad_version_requests(swift: Swift, method: str, params: dict[str, str],
                              status: int, text: str | None) -> None:
    name = versioned(swift)
    write(swift, f"{name}/o", b"x")
    response = swift.request(method, f"{name}/o", params=params, content=b"")
    assert response.status_code == status, response.text
    if text is not None:
        assert text in response.text


def test_bad_version_listings(swift: Swift) -> None:
    name = versioned(swift)
    assert swift.request("GET", name, params={"versions": "", "format": "xml"}
                         ).status_code == 406
    assert swift.request("GET", name, params={"versions": ""},
                         headers={"Accept": "text/plain"}).status_code == 406
    for params, text in (({"version_marker": "1"}, "version_marker param requires marker"),
                         ({"marker": "a", "version_marker": "x"},
                          "invalid version_marker param"),
                         ({"delimiter": "1"}, "invalid delimiter param")):
        response = swift.request("GET", name, params={"versions": "", **params})
        assert (response.status_code, response.text) == (400, text)
    unversioned = swift.container()
    response = swift.request("GET", f"{unversioned}/o", params={"version-id": "1.0"})
    assert response.status_code == 400


def test_version_reads_need_an_owner(keystone: Keystone, owner: Persona) -> None:
    reader = keystone.persona("member")
    mine = owner.swift()
    theirs = reader.swift(owner.account)
    try:
        name = mine.container(**{"X-Versions-Enabled": "true",
                                 "X-Container-Read": f"{reader.project_id}:*"})
        v1 = mine.put(f"{name}/o", b"data").headers["x-object-version-id"]
        assert theirs.get(f"{name}/o").content == b"data"
        denied = theirs.request("GET", f"{name}/o", params={"version-id": v1})
        assert denied.status_code == 403
    finally:
        mine.close()
        theirs.close()


def test_copies_and_versions(swift: Swift) -> None:
    name = versioned(swift)
    v1 = write(swift, f"{name}/o", b"first")
    write(swift, f"{name}/o", b"second")
    swift.ok("COPY", f"{name}/o", 201, params={"version-id": v1},
             headers={"Destination": f"{name}/o"})
    assert swift.get(f"{name}/o").content == b"first"
    assert len(swift.listing(name, versions="")) == 3
    other = swift.container()
    swift.ok("PUT", f"{other}/copy", 201, headers={"X-Copy-From": f"{name}/o"})
    copied = swift.get(f"{other}/copy")
    assert copied.content == b"first" and "content-location" not in copied.headers


def test_sdk_reads_versioned_objects(sdk: SDK, swift: Swift) -> None:
    name = versioned(swift)
    write(swift, f"{name}/o", b"one")
    sdk.object_store.upload_object(container=name, name="o", data=b"two")
    assert sdk.object_store.download_object("o", container=name) == b"two"
    assert [o.name for o in sdk.object_store.objects(name)] == ["o"]
    assert len(swift.listing(name, versions="")) == 2


def test_copy_into_a_versioned_container_needs_read_rights_on_the_source(
        owner: Persona, swift: Swift) -> None:
    secret = swift.container()
    swift.put(f"{secret}/s", b"secret")
    mine = owner.swift()
    try:
        name = mine.container(**{"X-Versions-Enabled": "true"})
        response = mine.request("PUT", f"{name}/o", headers={
            "X-Copy-From": f"{secret}/s", "X-Copy-From-Account": swift.account})
        assert response.status_code == 403
        assert mine.listing(name, versions="") == []
    finally:
        mine.close()


def test_account_listing_counts_versions(swift: Swift) -> None:
    name = versioned(swift)
    write(swift, f"{name}/o", b"12345")
    write(swift, f"{name}/o", b"123")

    def listed() -> None:
        rows = swift.listing("", prefix=name)
        assert [(r["name"], r["bytes"]) for r in rows] == [(name, 8)]

    eventually(listed)
    xml = swift.ok("GET", "", params={"format": "xml", "prefix": name}).text
    assert "<bytes>8</bytes>" in xml and xml.count("<container>") == 1
    assert swift.ok("GET", "", params={"prefix": name}).text == f"{name}\n"


def test_missing_versions_container_refuses_overwrites(swift: Swift) -> None:
    name = swift.container(**{"X-Versions-Location": uniq("missing")})
    swift.put(f"{name}/o", b"first")
    response = swift.request("PUT", f"{name}/o", content=b"second")
    assert response.status_code == 412
    assert swift.get(f"{name}/o").content == b"first"
