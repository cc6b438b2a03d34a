"""Plain object reads (``proxy/plain_read.py``) answer exactly as the full pipeline does.

Two apps share one proxy context (rings, devices, info cache): the default one, with the
plain-read lane, and one built with ``plain_reads=False``. Every request goes to both;
status, header names in order, header values and bodies must be equal, request ids and
dates aside. A spy on ``Request.from_scope`` (the full path's first step; the lane builds
no `Request`) tells which requests the lane answered: exactly the plain ones.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pocketstack.config import load_settings
from pocketstack.identity.middleware import AccessRule, AuthContext, InvalidToken
from pocketstack.objectstore import runtime
from pocketstack.objectstore.proxy.app import ProxyApp, create_app
from pocketstack.objectstore.proxy.plain_read import acted_on
from pocketstack.objectstore.proxy.request import Request

OWNER = AuthContext(
    token_id="owner", user_id="u1", user_name="alice", user_domain_id="default",
    user_domain_name="Default", project_id="p1", project_name="one",
    project_domain_id="default", project_domain_name="Default", domain_id=None,
    system=False, roles=frozenset({"member", "reader"}),
    expires_at=datetime.now(UTC) + timedelta(hours=1))
TOKENS = {
    "owner": OWNER,
    "other": replace(OWNER, token_id="other", user_id="u2", project_id="p2"),
    "reader": replace(OWNER, token_id="reader", roles=frozenset({"reader"})),
    "reseller": replace(OWNER, token_id="reseller", project_id="p9",
                        roles=frozenset({"ResellerAdmin"})),
    "ruled": replace(OWNER, token_id="ruled", app_cred_id="ac", access_rules=(
        AccessRule(service="object-store", method="GET", path="/v1/AUTH_p1/c/other"),)),
}
ACCOUNT = "/v1/AUTH_p1"
IGNORED = {"x-trans-id", "x-openstack-request-id", "date"}


class Validator:
    async def validate(self, token: str) -> AuthContext:
        if token not in TOKENS:
            raise InvalidToken(token)
        return TOKENS[token]

    async def authenticate(self, user_name: str, project_name: str, password: str
                           ) -> AuthContext:
        raise NotImplementedError


class Pair:
    def __init__(self, tmp_path: Path) -> None:
        settings = load_settings(None, environ={}, overrides={"data_dir": tmp_path / "data"})
        self.runtime = runtime.build(settings, Validator(), access_log=False)
        self.lane = create_app(self.runtime.ctx, access_log=False)
        self.full = create_app(self.runtime.ctx, access_log=False, plain_reads=False)
        self.routed = 0
        self.loop = asyncio.new_event_loop()

    def request(self, app: Any, method: str, path: str, headers: dict[str, str],
                body: bytes = b"") -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport,
                                         base_url="http://swift.test:8080") as client:
                return await client.request(method, path, headers=headers, content=body)

        return self.loop.run_until_complete(call())

    def setup(self, method: str, path: str, headers: dict[str, str] | None = None,
              body: bytes = b"", status: int | None = None) -> None:
        answer = self.request(self.full, method, path,
                              {"X-Auth-Token": "owner", **(headers or {})}, body)
        assert answer.status_code < 300 or answer.status_code == status, answer.text

    def both(self, method: str, path: str, headers: dict[str, str]) -> bool:
        """Ask both apps; True when the lane answered (no `Request` was built)."""
        before = self.routed
        lane = self.request(self.lane, method, path, headers)
        answered = self.routed == before
        full = self.request(self.full, method, path, headers)
        assert (lane.status_code, lane.content) == (full.status_code, full.content), \
            (method, path, headers, lane.text, full.text)
        assert _kept(lane.headers) == _kept(full.headers), (method, path, headers)
        return answered


def _kept(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.multi_items() if k.lower() not in IGNORED]


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    original = Request.from_scope.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Request], scope: Any, receive: Any) -> Request:
        pair.routed += 1
        return original(cls, scope, receive)  # type: ignore[no-any-return]

    monkeypatch.setattr(Request, "from_scope", classmethod(spy))
    yield pair
    pair.loop.run_until_complete(pair.runtime.close())
    pair.loop.close()


def _fill(pair: Pair) -> None:
    pair.setup("PUT", f"{ACCOUNT}/c")
    pair.setup("PUT", f"{ACCOUNT}/c/plain", {
        "Content-Type": "text/plain", "X-Object-Meta-Color": "blue",
        "Content-Disposition": "inline", "Content-Encoding": "identity"}, b"x" * 4096)
    pair.setup("PUT", f"{ACCOUNT}/c/empty", body=b"")
    pair.setup("PUT", f"{ACCOUNT}/c/dir%2F%C3%A9%20%C3%BC", body=b"unicode")
    pair.setup("PUT", f"{ACCOUNT}/c/expiring",
               {"X-Delete-At": str(int(time.time()) + 3600)}, b"soon")
    for n in (1, 2):
        pair.setup("PUT", f"{ACCOUNT}/c/seg_{n}", body=b"seg%d" % n)
    pair.setup("PUT", f"{ACCOUNT}/c/dlo", {"X-Object-Manifest": "c/seg_"})
    manifest = [{"path": f"/c/seg_{n}"} for n in (1, 2)]
    pair.setup("PUT", f"{ACCOUNT}/c/slo?multipart-manifest=put",
               body=json.dumps(manifest).encode())
    pair.setup("PUT", f"{ACCOUNT}/c/link", {"X-Symlink-Target": "c/plain"})
    pair.setup("PUT", f"{ACCOUNT}/c/gone", body=b"gone")
    pair.setup("DELETE", f"{ACCOUNT}/c/gone")
    pair.setup("PUT", f"{ACCOUNT}/vc", {"X-Versions-Enabled": "true"})
    pair.setup("PUT", f"{ACCOUNT}/vc/o", body=b"v1")
    pair.setup("PUT", f"{ACCOUNT}/vc/o", body=b"v2")
    for container in ("c", "vc"):  # the info cache knows them, as after any use
        pair.setup("HEAD", f"{ACCOUNT}/{container}")


PLAIN = ["plain", "empty", "dir%2F%C3%A9%20%C3%BC", "expiring", "gone", "missing"]
ACTED_ON = ["dlo", "slo", "link"]


def test_plain_reads_answer_as_the_pipeline(pair: Pair) -> None:
    _fill(pair)
    owner = {"X-Auth-Token": "owner"}
    for method in ("GET", "HEAD"):
        for name in PLAIN:
            assert pair.both(method, f"{ACCOUNT}/c/{name}", owner), name
        assert pair.both(method, f"{ACCOUNT}/c/plain", {"X-Auth-Token": "reseller"})
        # internal headers a client sends are dropped at the edge, before either path
        assert pair.both(method, f"{ACCOUNT}/c/plain",
                         {**owner, "X-Object-Sysmeta-Symlink-Target": "c/slo"})
        assert pair.both(method, f"{ACCOUNT}/c/plain", {
            **owner, "Accept": "application/json", "User-Agent": "t", "Connection": "close",
            "Accept-Encoding": "gzip"})
        for name in ACTED_ON:  # read by the lane, then answered by the filters
            assert not pair.both(method, f"{ACCOUNT}/c/{name}", owner), name
        assert not pair.both(method, f"{ACCOUNT}/vc/o", owner)
        assert not pair.both(method, f"{ACCOUNT}/nocontainer/o", owner)


@pytest.mark.parametrize("headers", [
    {"X-Auth-Token": "owner", "Range": "bytes=1-3"},
    {"X-Auth-Token": "owner", "If-None-Match": "*"},
    {"X-Auth-Token": "owner", "If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"},
    {"X-Auth-Token": "owner", "X-Newest": "true"},
    {"X-Auth-Token": "owner", "Origin": "http://example.com"},
    {"X-Storage-Token": "owner"},
    {"X-Auth-Token": "other"},
    {"X-Auth-Token": "reader"},
    {"X-Auth-Token": "ruled"},
    {"X-Auth-Token": "expired"},
    {"X-Auth-Token": ""},
    {},
])
def test_other_reads_take_the_full_path(pair: Pair, headers: dict[str, str]) -> None:
    _fill(pair)
    for method in ("GET", "HEAD"):
        assert not pair.both(method, f"{ACCOUNT}/c/plain", headers)


@pytest.mark.parametrize("path", [
    f"{ACCOUNT}/c/plain?format=json", f"{ACCOUNT}/c/plain?multipart-manifest=get",
    f"{ACCOUNT}/c/slo?multipart-manifest=get", f"{ACCOUNT}/c/link?symlink=get",
    f"{ACCOUNT}/c/", f"{ACCOUNT}/c", "/v2/AUTH_p1/c/plain", "/v1/AUTH_p2/c/plain",
    f"{ACCOUNT}/c/%FF", f"{ACCOUNT}//plain",
])
def test_other_paths_take_the_full_path(pair: Pair, path: str) -> None:
    _fill(pair)
    for method in ("GET", "HEAD"):
        assert not pair.both(method, path, {"X-Auth-Token": "owner"})


def test_a_container_the_cache_does_not_hold_is_looked_up_by_the_full_path(
        pair: Pair) -> None:
    _fill(pair)
    pair.runtime.ctx.info.invalidate(("c", "AUTH_p1", "c"))
    assert not pair.both("GET", f"{ACCOUNT}/c/plain", {"X-Auth-Token": "owner"})
    assert pair.both("GET", f"{ACCOUNT}/c/plain", {"X-Auth-Token": "owner"})  # now cached


def test_metadata_a_filter_acts_on() -> None:
    assert not acted_on({"X-Object-Meta-Color": "blue", "Content-Disposition": "inline",
                         "X-Delete-At": "1"})
    for name in ("X-Object-Sysmeta-Symlink-Target", "x-object-sysmeta-anything",
                 "X-Object-Manifest", "X-Static-Large-Object"):
        assert acted_on({name: "x"}), name


def test_every_filter_of_the_pipeline_was_checked_for_plain_reads(pair: Pair) -> None:
    """A new filter must be checked against ``plain_read.py``'s rules: does it act on a
    plain GET or HEAD of an object (the request alone, the container's info, the object's
    metadata)? Then the lane must hand such reads back, and this list gets its name."""
    app = ProxyApp(pair.runtime.ctx)
    assert [m.name for m in app.stack] == [
        "bulk_upload", "bulk_delete", "tempurl", "formpost", "keystoneauth", "container_sync",
        "staticweb", "container_quotas", "account_quotas", "slo", "dlo",
        "versioned_writes", "object_versioning", "symlink"]
