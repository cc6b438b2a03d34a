"""Symlinks (``X-Symlink-Target``) with python-swiftclient and raw HTTP, as Swift's
``symlink`` middleware serves them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from swiftclient.client import Connection
from tests.integration.objectstore.support import Persona, Swift

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def target(swift: Swift) -> tuple[str, str]:
    """A container holding ``target`` ("0123456789body"), as (container, etag)."""
    container = swift.container()
    etag = swift.put(f"{container}/target", b"0123456789body",
                     **{"Content-Type": "application/target"}).headers["etag"]
    return container, etag


def link(swift: Swift, path: str, target: str, **headers: str) -> None:
    swift.put(path, **{"X-Symlink-Target": target, **headers})


def test_info_advertises_symlinks(swift: Swift) -> None:
    info = swift.http.get("/info").json()
    assert info["symlink"] == {"symloop_max": 2, "static_links": True}


def test_swiftclient_reads_through_a_link(conn: Connection, target: tuple[str, str]) -> None:
    container, etag = target
    conn.put_object(container, "link", b"", headers={"X-Symlink-Target": f"{container}/target"})
    headers, body = conn.get_object(container, "link")
    assert body == b"0123456789body"
    assert headers["etag"] == etag and headers["content-type"] == "application/target"
    assert headers["content-location"].endswith(f"/{container}/target")
    assert conn.head_object(container, "link")["content-length"] == "14"
    headers, body = conn.get_object(container, "link", query_string="symlink=get")
    assert body == b"" and headers["etag"] == EMPTY_MD5
    assert headers["x-symlink-target"] == f"{container}/target"
    assert headers["content-type"] == "application/symlink"
    assert not [h for h in headers if "sysmeta" in h]
    headers, body = conn.get_object(container, "link", headers={"Range": "bytes=10-13"})
    assert body == b"body"


def test_listing_shows_targets(swift: Swift, target: tuple[str, str]) -> None:
    container, etag = target
    link(swift, f"{container}/dynamic", f"{container}/target")
    link(swift, f"{container}/static", f"{container}/target", **{"X-Symlink-Target-Etag": etag})
    rows = {r["name"]: r for r in swift.listing(container)}
    account = swift.account
    assert rows["dynamic"]["symlink_path"] == f"/v1/{account}/{container}/target"
    assert rows["dynamic"]["hash"] == EMPTY_MD5 and "symlink_etag" not in rows["dynamic"]
    assert rows["static"]["symlink_etag"] == etag and rows["static"]["symlink_bytes"] == 14
    assert rows["static"]["content_type"] == "application/target"  # the target's
    assert "symlink_path" not in rows["target"]
    xml = swift.ok("GET", container, params={"format": "xml"}).text
    assert "symlink_" not in xml and f"<hash>{EMPTY_MD5}</hash>" in xml
    plain = swift.ok("GET", container).text
    assert plain.split() == ["dynamic", "static", "target"]


def test_static_links_check_their_target(swift: Swift, target: tuple[str, str]) -> None:
    container, etag = target
    bad = swift.request("PUT", f"{container}/l1", headers={
        "X-Symlink-Target": f"{container}/target", "X-Symlink-Target-Etag": "0" * 32})
    assert bad.status_code == 409 and bad.text.startswith("Object Etag")
    missing = swift.request("PUT", f"{container}/l2", headers={
        "X-Symlink-Target": f"{container}/nowhere", "X-Symlink-Target-Etag": etag})
    assert (missing.status_code, missing.text) == (409, "X-Symlink-Target does not exist")
    link(swift, f"{container}/l3", f"{container}/target", **{"X-Symlink-Target-Etag": etag})
    swift.put(f"{container}/target", b"changed")
    changed = swift.get(f"{container}/l3")
    assert changed.status_code == 409
    assert changed.headers["content-location"].endswith(f"/{container}/target")
    swift.ok("DELETE", f"{container}/target")
    assert swift.get(f"{container}/l3").status_code == 404  # not-found wins


def test_loops_are_409(swift: Swift, target: tuple[str, str]) -> None:
    container, _ = target
    link(swift, f"{container}/a", f"{container}/b")
    link(swift, f"{container}/b", f"{container}/a")
    response = swift.get(f"{container}/a")
    assert response.status_code == 409
    assert response.text == "Too many levels of symbolic links, maximum allowed is 2"
    assert swift.request("HEAD", f"{container}/b").status_code == 409
    link(swift, f"{container}/c1", f"{container}/target")
    link(swift, f"{container}/c2", f"{container}/c1")
    assert swift.get(f"{container}/c2").content == b"0123456789body"  # two hops: allowed
    link(swift, f"{container}/c3", f"{container}/c2")
    assert swift.get(f"{container}/c3").status_code == 409
    assert swift.ok("GET", f"{container}/c3", params={"symlink": "get"}).content == b""


@pytest.mark.parametrize(("headers", "status", "text"), [
    ({"X-Symlink-Target": "just-an-object"}, 412,
     "X-Symlink-Target header must be of the form <container name>/<object name>"),
    ({"X-Symlink-Target": "/c/o"}, 412,
     "X-Symlink-Target header must be of the form <container name>/<object name>"),
    ({"X-Symlink-Target": "c/"}, 412,
     "X-Symlink-Target header must be of the form <container name>/<object name>"),
    ({"X-Symlink-Target": "c/o%00x"}, 412, "Invalid UTF8 or contains NULL"),
    ({"X-Symlink-Target": "c/o", "X-Symlink-Target-Account": "a/b"}, 412, None),
    ({"X-Symlink-Target": "c/o", "X-Symlink-Target-Etag": 'ab"c'}, 400,
     "Bad X-Symlink-Target-Etag format"),
])
def test_bad_targets(swift: Swift, container: str, headers: dict[str, str], status: int,
                     text: str | None) -> None:
    response = swift.request("PUT", f"{container}/link", headers=headers)
    assert response.status_code == status, response.text
    if text is not None:
        assert response.text == text
    assert swift.get(f"{container}/link").status_code == 404


def test_bad_symlink_writes(swift: Swift, container: str) -> None:
    body = swift.request("PUT", f"{container}/l", content=b"data",
                         headers={"X-Symlink-Target": f"{container}/t"})
    assert (body.status_code, body.text) == (400, "Symlink requests require a zero byte body")
    itself = swift.request("PUT", f"{container}/l",
                           headers={"X-Symlink-Target": f"{container}/l"})
    assert (itself.status_code, itself.text) == (400, "Symlink cannot target itself")
    swift.put(f"{container}/o", b"x")
    post = swift.request("POST", f"{container}/o", headers={"X-Symlink-Target": "c/o"})
    assert (post.status_code, post.text) == (
        400, "A PUT request is required to set a symlink target")


def test_post_to_a_link_redirects(swift: Swift, target: tuple[str, str]) -> None:
    container, _ = target
    link(swift, f"{container}/link", f"{container}/target")
    response = swift.request("POST", f"{container}/link", headers={"X-Object-Meta-A": "1"})
    assert response.status_code == 307
    assert response.headers["location"] == f"/v1/{swift.account}/{container}/target"
    assert not [h for h in response.headers if "sysmeta" in h]
    itself = swift.ok("HEAD", f"{container}/link", params={"symlink": "get"})
    assert itself.headers["x-object-meta-a"] == "1"
    assert "x-object-meta-a" not in swift.ok("HEAD", f"{container}/link").headers


def test_copies(swift: Swift, target: tuple[str, str]) -> None:
    container, etag = target
    link(swift, f"{container}/link", f"{container}/target")
    swift.ok("COPY", f"{container}/link", 201, headers={"Destination": f"{container}/data"})
    copied = swift.get(f"{container}/data")
    assert copied.content == b"0123456789body" and "content-location" not in copied.headers
    swift.ok("PUT", f"{container}/link2", 201, params={"symlink": "get"},
             headers={"X-Copy-From": f"{container}/link"})
    again = swift.ok("GET", f"{container}/link2", params={"symlink": "get"})
    assert again.headers["x-symlink-target"] == f"{container}/target"
    assert swift.get(f"{container}/link2").content == b"0123456789body"
    assert {r["name"]: r.get("symlink_path") for r in swift.listing(container)}["link2"]
    through = swift.ok("PUT", f"{container}/data2", 201,
                       headers={"X-Copy-From": f"{container}/link"})
    assert through.headers["x-copied-from"] == f"{container}/link"
    assert swift.get(f"{container}/data2").headers["etag"] == etag


def test_target_in_an_account_without_rights(owner: Persona, swift: Swift,
                                             target: tuple[str, str]) -> None:
    container, _ = target
    mine = owner.swift()
    try:
        mine.container("links")
        mine.put("links/l", **{"X-Symlink-Target": f"{container}/target",
                               "X-Symlink-Target-Account": swift.account})
        response = mine.get("links/l")
        assert response.status_code == 403
        assert response.headers["content-location"] == \
            f"/v1/{swift.account}/{container}/target"
        swift.ok("POST", container, headers={"X-Container-Read": f"{owner.project_id}:*"})
        assert mine.get("links/l").content == b"0123456789body"
    finally:
        mine.close()


def test_conditional_reads_apply_to_the_target(swift: Swift, target: tuple[str, str]) -> None:
    container, etag = target
    link(swift, f"{container}/link", f"{container}/target")
    assert swift.get(f"{container}/link", **{"If-Match": etag}).status_code == 200
    assert swift.get(f"{container}/link", **{"If-None-Match": etag}).status_code == 304
    assert swift.get(f"{container}/link", **{"If-Match": EMPTY_MD5}).status_code == 412


def test_chunked_symlink_put(swift: Swift, container: str) -> None:
    def empty() -> Iterator[bytes]:
        yield b""

    response = swift.request("PUT", f"{container}/l", content=empty(),
                             headers={"X-Symlink-Target": f"{container}/t"})
    assert response.status_code == 201
    assert json.loads(swift.ok("GET", container, params={"format": "json"}).text)[0][
        "symlink_path"].endswith(f"/{container}/t")


def test_relative_links_resolve_in_their_own_account(owner: Persona, swift: Swift,
                                                     target: tuple[str, str]) -> None:
    container, _ = target
    link(swift, f"{container}/relative", f"{container}/target")  # in the admin's account
    swift.ok("POST", container, headers={"X-Container-Read": f"{owner.project_id}:*"})
    mine = owner.swift()
    try:
        mine.container("links")
        mine.put("links/l", **{"X-Symlink-Target": f"{container}/relative",
                               "X-Symlink-Target-Account": swift.account})
        response = mine.get("links/l")
        assert response.content == b"0123456789body"
        assert response.headers["content-location"] == \
            f"/v1/{swift.account}/{container}/target"
    finally:
        mine.close()
