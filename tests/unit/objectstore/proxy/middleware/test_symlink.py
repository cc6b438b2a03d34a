"""Symlinks: the target a PUT asks for, and links in listings."""

from __future__ import annotations

import pytest

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.exceptions import SwiftError
from pocketstack.objectstore.proxy.middleware.symlink import listed_target, parse_target
from pocketstack.objectstore.proxy.middleware.symlink_links import Link, link_of
from pocketstack.objectstore.proxy.request import Request, Response


def _put(headers: dict[str, str], path: str = "/v1/AUTH_a/c/link") -> Request:
    scope = {"type": "http", "method": "PUT", "path": path, "raw_path": path.encode(),
             "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request.from_scope(scope, receive)


def test_targets_are_normalized_and_quoted() -> None:
    link = parse_target(_put({"X-Symlink-Target": "tc/dealde%2Fl04 011e%204c8df/f.png"}))
    assert link.target == "tc/dealde/l04%20011e%204c8df/f.png"
    assert link.account is None and link.etag is None
    other = parse_target(_put({"X-Symlink-Target": "c/ö", "X-Symlink-Target-Account": "AUTH_b",
                               "X-Symlink-Target-Etag": '"abc"'}))
    assert (other.target, other.account, other.etag) == ("c/%C3%B6", "AUTH_b", "abc")


@pytest.mark.parametrize(("headers", "status"), [
    ({"X-Symlink-Target": "o"}, 412),
    ({"X-Symlink-Target": "/c/o"}, 412),
    ({"X-Symlink-Target": "c/%00"}, 412),
    ({"X-Symlink-Target": "c/o", "X-Symlink-Target-Account": ""}, 412),
    ({"X-Symlink-Target": "c/o", "X-Symlink-Target-Account": "a%2Fb"}, 412),
    ({"X-Symlink-Target": "c/link"}, 400),
    ({"X-Symlink-Target": "c/o", "X-Symlink-Target-Etag": "a;b"}, 400),
])
def test_bad_targets(headers: dict[str, str], status: int) -> None:
    with pytest.raises((SwiftError, ConstraintError)) as caught:
        parse_target(_put(headers))
    assert getattr(caught.value, "status", None) == status


def test_override_etag_carries_the_target() -> None:
    link = Link(target="c/o", account="AUTH_b", etag="e1")
    assert link.override_etag(None, "14") == (
        "d41d8cd98f00b204e9800998ecf8427e; symlink_target=c/o; "
        "symlink_target_account=AUTH_b; symlink_target_etag=e1; symlink_target_bytes=14")
    row = {"name": "l", "hash": link.override_etag("x; slo_etag=s", "14")}
    listed_target(row, "v1", "AUTH_a")
    assert row == {"name": "l", "hash": "x; slo_etag=s", "symlink_path": "/v1/AUTH_b/c/o",
                   "symlink_etag": "e1", "symlink_bytes": 14}
    plain = {"name": "p", "hash": "abc"}
    listed_target(plain, "v1", "AUTH_a")
    assert plain == {"name": "p", "hash": "abc"}


def test_links_are_read_from_system_metadata() -> None:
    assert link_of(Response(200, {"ETag": "x"})) is None
    found = link_of(Response(200, {"X-Object-Sysmeta-Symlink-Target": "c/o",
                                   "x-object-sysmeta-symloop-extend": "true"}))
    assert found == Link(target="c/o", extends_loop=True)
