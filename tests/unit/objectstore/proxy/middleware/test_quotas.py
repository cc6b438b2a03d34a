"""Container and account quotas against a fake core and fake info (the stats the proxy
would read from the replicas)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from pocketstack.config import ObjectStoreSettings
from pocketstack.identity.middleware import AuthContext
from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPForbidden,
    HTTPRequestEntityTooLarge,
)
from pocketstack.objectstore.proxy.context import Policies, Policy, ProxyContext
from pocketstack.objectstore.proxy.middleware import quotas
from pocketstack.objectstore.proxy.middleware.deferred import refuse_after_authorize
from pocketstack.objectstore.proxy.middleware.quotas import (
    AccountQuotas,
    ContainerQuotas,
    quota_value,
)
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.types import AccountInfo, ContainerInfo, PolicyStats
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
ACCOUNT = "AUTH_a"
TS = Timestamp(1)


def _ctx() -> ProxyContext:
    ring: Any = None
    policies = Policies([Policy(0, "default", True, ring), Policy(1, "single", False, ring)])
    return cast(ProxyContext, SimpleNamespace(settings=ObjectStoreSettings(),
                                              policies=policies))


def _request(method: str, path: str, *, body: bytes = b"", reseller: bool = False,
             **headers: str) -> Request:
    raw = [(k.lower().replace("_", "-").encode(), v.encode("latin-1"))
           for k, v in headers.items()]
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": raw}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    req = Request.from_scope(scope, receive)
    roles = ["ResellerAdmin"] if reseller else ["member"]
    req.auth = cast(AuthContext, SimpleNamespace(
        has_role=lambda *wanted: any(r in roles for r in wanted)))
    return req


class Core:
    """Authorizes like the controllers do (``deny``: the caller may not), then answers."""

    def __init__(self, *, deny: bool = False, head_length: int = 0, used: int = 5,
                 count: int = 3) -> None:
        self.deny, self.head_length = deny, head_length
        self.usage = {"X-Container-Bytes-Used": str(used),
                      "X-Container-Object-Count": str(count)}
        self.seen: list[Request] = []

    async def __call__(self, req: Request) -> Response:
        self.seen.append(req)
        if req.method == "HEAD" and req.obj is not None:
            return Response(200, {}, content_length=self.head_length)
        if req.method == "HEAD" and req.container is not None:
            assert req.authorize is not None
            await req.authorize(req)  # pre-authorized: even for a caller who may not
            return Response(204, dict(self.usage))
        if self.deny:
            raise HTTPForbidden()
        for checked in self.authorized(req):
            assert checked.authorize is not None
            await checked.authorize(checked)
        return Response(201 if req.method in ("PUT", "COPY") else 204)

    @staticmethod
    def authorized(req: Request) -> list[Request]:
        if req.method != "COPY":
            return [req]
        dest = req.headers["destination"].lstrip("/").split("/", 1)
        return [req.subrequest("PUT", f"/v1/{ACCOUNT}/{dest[0]}/{dest[1]}")]


def _container(meta: dict[str, str], *, count: int = 0, used: int = 0,
               policy: int = 0) -> ContainerInfo:
    return ContainerInfo(ACCOUNT, "c", TS, TS, Timestamp(0), TS, count, used, policy, TS,
                         Timestamp(0), 0, 0, "id", False, meta)


def _account(meta: dict[str, str], *, count: int = 0, used: int = 0,
             stats: dict[int, PolicyStats] | None = None) -> AccountInfo:
    return AccountInfo(ACCOUNT, TS, TS, Timestamp(0), TS, False, 1, count, used, "id", False,
                       meta, stats or {})


def _infos(monkeypatch: pytest.MonkeyPatch, container: ContainerInfo | None,
           account: AccountInfo | None = None) -> None:
    async def container_info(ctx: Any, account_name: str, name: str, *,
                             fresh: bool = False) -> ContainerInfo | None:
        return container

    async def account_info(ctx: Any, name: str, *, fresh: bool = False) -> AccountInfo | None:
        return account

    monkeypatch.setattr(quotas, "container_info", container_info)
    monkeypatch.setattr(quotas, "account_info", account_info)


async def _run(middleware: ContainerQuotas | AccountQuotas, req: Request,
               core: Core | None = None) -> Response:
    async def allow(_: Request) -> None:
        return None

    req.authorize = req.authorize or allow
    return await middleware.handle(req, core or Core())


def test_quota_value() -> None:
    meta = {"X-Container-Meta-Quota-Bytes": " 10 ", "X-Container-Meta-Quota-Count": "x"}
    assert quota_value(meta, "x-container-meta-quota-bytes") == 10
    assert quota_value(meta, "x-container-meta-quota-count") is None
    assert quota_value(meta, "x-other") is None


async def test_refusal_waits_for_authorization() -> None:
    req = _request("PUT", f"/v1/{ACCOUNT}/c/o")

    async def deny(_: Request) -> None:
        raise HTTPForbidden()

    req.authorize = deny
    refuse_after_authorize(req, HTTPRequestEntityTooLarge(), lambda r: r.method == "PUT")
    with pytest.raises(HTTPForbidden):
        await req.authorize(req)


# -- container quotas ----------------------------------------------------------------------------
@pytest.mark.parametrize(("header", "message"), [
    ("X-Container-Meta-Quota-Bytes", "Invalid bytes quota."),
    ("X-Container-Meta-Quota-Count", "Invalid count quota.")])
async def test_container_quota_values_are_checked(header: str, message: str) -> None:
    for method in ("PUT", "POST"):
        with pytest.raises(HTTPBadRequest, match=message):
            await _run(ContainerQuotas(_ctx()), _request(method, f"/v1/{ACCOUNT}/c",
                                                         **{header: "1k"}))
    response = await _run(ContainerQuotas(_ctx()), _request("POST", f"/v1/{ACCOUNT}/c",
                                                            **{header: ""}))
    assert response.status == 204


@pytest.mark.parametrize(("meta", "length", "refused"), [
    ({"X-Container-Meta-Quota-Bytes": "10"}, "5", False),
    ({"X-Container-Meta-Quota-Bytes": "10"}, "6", True),
    ({"X-Container-Meta-Quota-Count": "3"}, "0", True),
    ({"X-Container-Meta-Quota-Count": "4"}, "0", False),
    ({"X-Container-Meta-Quota-Bytes": "junk"}, "100", False),
    ({}, "100", False)])
async def test_container_put(monkeypatch: pytest.MonkeyPatch, meta: dict[str, str],
                             length: str, refused: bool) -> None:
    _infos(monkeypatch, _container(meta, count=3, used=5))
    req = _request("PUT", f"/v1/{ACCOUNT}/c/o", content_length=length)
    if refused:
        with pytest.raises(HTTPRequestEntityTooLarge, match="Upload exceeds quota."):
            await _run(ContainerQuotas(_ctx()), req)
    else:
        assert (await _run(ContainerQuotas(_ctx()), req)).status == 201


async def test_refused_caller_hears_its_own_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    _infos(monkeypatch, _container({"X-Container-Meta-Quota-Count": "0"}))
    with pytest.raises(HTTPForbidden):
        await _run(ContainerQuotas(_ctx()), _request("PUT", f"/v1/{ACCOUNT}/c/o"),
                   Core(deny=True))


async def test_copies_use_the_source_size(monkeypatch: pytest.MonkeyPatch) -> None:
    _infos(monkeypatch, _container({"X-Container-Meta-Quota-Bytes": "10"}))
    copy = _request("COPY", f"/v1/{ACCOUNT}/src/o", destination="c/o")
    with pytest.raises(HTTPRequestEntityTooLarge):
        await _run(ContainerQuotas(_ctx()), copy, Core(head_length=11, used=0))
    put = _request("PUT", f"/v1/{ACCOUNT}/c/o", x_copy_from="src/o")
    assert (await _run(ContainerQuotas(_ctx()), put, Core(head_length=10, used=0))
            ).status == 201


async def test_usage_comes_from_the_rest_of_the_pipeline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What later middlewares add to the container's HEAD (object versioning: the bytes of
    the versions) counts, as Swift's ``get_container_info`` through the app does."""
    _infos(monkeypatch, _container({"X-Container-Meta-Quota-Bytes": "10"}, used=0))
    req = _request("PUT", f"/v1/{ACCOUNT}/c/o", content_length="1")
    with pytest.raises(HTTPRequestEntityTooLarge):
        await _run(ContainerQuotas(_ctx()), req, Core(used=10))


# -- account quotas ------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["X-Account-Quota-Bytes", "X-Account-Meta-Quota-Bytes",
                                    "X-Remove-Account-Quota-Count",
                                    "X-Account-Quota-Bytes-Policy-single"])
async def test_only_resellers_set_account_quotas(header: str) -> None:
    with pytest.raises(HTTPForbidden):
        await _run(AccountQuotas(_ctx()), _request("POST", f"/v1/{ACCOUNT}", **{header: "1"}))


async def test_reseller_quotas_become_sysmeta(monkeypatch: pytest.MonkeyPatch) -> None:
    _infos(monkeypatch, None)
    core = Core()
    req = _request("POST", f"/v1/{ACCOUNT}", reseller=True, x_account_meta_quota_bytes="5",
                   x_remove_account_quota_count="t", x_account_quota_count_policy_single="7")
    await _run(AccountQuotas(_ctx()), req, core)
    sent = core.seen[0].headers
    assert sent["x-account-sysmeta-quota-bytes"] == "5"
    assert sent["x-account-sysmeta-quota-count"] == ""
    assert sent["x-account-sysmeta-quota-count-policy-1"] == "7"
    assert "x-account-sysmeta-quota-bytes-policy-0" not in sent
    with pytest.raises(HTTPBadRequest):
        await _run(AccountQuotas(_ctx()), _request("POST", f"/v1/{ACCOUNT}", reseller=True,
                                                   x_account_quota_bytes="-1"))


async def test_quotas_are_shown_on_account_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    _infos(monkeypatch, None, _account({"X-Account-Sysmeta-Quota-Bytes": "5",
                                        "X-Account-Sysmeta-Quota-Count-Policy-1": "2",
                                        "X-Account-Sysmeta-Quota-Count": ""}))
    response = await _run(AccountQuotas(_ctx()), _request("HEAD", f"/v1/{ACCOUNT}"))
    assert response.headers == {"X-Account-Quota-Bytes": "5",
                                "X-Account-Quota-Count-Policy-single": "2"}


@pytest.mark.parametrize(("meta", "length", "message"), [
    ({"X-Account-Sysmeta-Quota-Bytes": "100"}, "51", "Upload exceeds quota."),
    ({"X-Account-Meta-Quota-Bytes": "100"}, "51", "Upload exceeds quota."),
    ({"X-Account-Sysmeta-Quota-Count": "4"}, "0", "Upload exceeds quota."),
    ({"X-Account-Sysmeta-Quota-Bytes-Policy-1": "30"}, "11", "Upload exceeds policy quota."),
    ({"X-Account-Sysmeta-Quota-Count-Policy-1": "2"}, "0", "Upload exceeds policy quota."),
    ({"X-Account-Sysmeta-Quota-Bytes-Policy-0": "1"}, "10", None),
    ({"X-Account-Sysmeta-Quota-Bytes": "100"}, "50", None)])
async def test_account_put(monkeypatch: pytest.MonkeyPatch, meta: dict[str, str],
                           length: str, message: str | None) -> None:
    stats = {1: PolicyStats(container_count=1, object_count=2, bytes_used=20)}
    _infos(monkeypatch, _container({}, policy=1), _account(meta, count=4, used=50,
                                                           stats=stats))
    req = _request("PUT", f"/v1/{ACCOUNT}/c/o", content_length=length)
    if message is None:
        assert (await _run(AccountQuotas(_ctx()), req)).status == 201
        return
    with pytest.raises(HTTPRequestEntityTooLarge, match=message):
        await _run(AccountQuotas(_ctx()), req)
    reseller = _request("PUT", f"/v1/{ACCOUNT}/c/o", content_length=length, reseller=True)
    assert (await _run(AccountQuotas(_ctx()), reseller)).status == 201
