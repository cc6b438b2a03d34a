"""TempURL: signature forms, expiry, scope, header rules and responses, against a fake core
(account and container info come from the proxy's info cache)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

import pytest

from pocketstack.config import ObjectStoreSettings
from pocketstack.objectstore.exceptions import HTTPBadRequest, HTTPUnauthorized, SwiftError
from pocketstack.objectstore.proxy.context import InfoCache, ProxyContext
from pocketstack.objectstore.proxy.middleware.signing import (
    KeyScope,
    allowed_digests,
    authorize_within,
    keys_in,
    parse_signature,
    tempurl_message,
)
from pocketstack.objectstore.proxy.middleware.tempurl import (
    HeaderFilter,
    Target,
    TempURL,
    TempUrlParams,
    disposition,
    expiry_time,
)
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.storage.types import AccountInfo, ContainerInfo
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
ACCOUNT = "AUTH_a"
KEY = "secret"


# -- pure parts --------------------------------------------------------------------------------
def test_parse_signature_forms() -> None:
    raw = hmac.new(b"k", b"m", hashlib.sha512).digest()
    assert parse_signature("a" * 40) == ("sha1", "a" * 40)
    assert parse_signature("b" * 64) == ("sha256", "b" * 64)
    assert parse_signature("c" * 128) == ("sha512", "c" * 128)
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                    base64.b64encode(raw).decode().rstrip("=")):
        assert parse_signature(f"sha512:{encoded}") == ("sha512", raw.hex())
    for bad in ("a" * 41, "g" * 40, "", "sha1:a*b", "sha1:ab cd", "\u00e9" * 40, "sha1:a"):
        with pytest.raises(ValueError):
            parse_signature(bad)


def test_allowed_digests() -> None:
    assert allowed_digests([]).allowed == ("sha1", "sha256", "sha512")
    digests = allowed_digests(["SHA512", "md5", "sha256"])
    assert digests.allowed == ("sha256", "sha512") and digests.deprecated == ()
    assert digests.info() == {"allowed_digests": ["sha256", "sha512"]}
    assert allowed_digests(["sha1"]).info() == {"allowed_digests": ["sha1"],
                                                "deprecated_digests": ["sha1"]}
    with pytest.raises(ValueError):
        allowed_digests(["md5"])


def test_tempurl_message() -> None:
    assert tempurl_message("GET", 5, "/v1/a/c/o") == b"GET\n5\n/v1/a/c/o"
    assert tempurl_message("GET", 5, "/v1/a/c/o", "1.2.3.4") == b"ip=1.2.3.4\nGET\n5\n/v1/a/c/o"


def test_keys_in_metadata() -> None:
    metadata = {"X-Account-Meta-Temp-Url-Key": "k1", "x-account-meta-temp-url-key-2": "k\xc3\xa9",
                "X-Account-Meta-Temp-Url-Key-3": "no", "X-Account-Meta-Other": "no"}
    keys = keys_in(metadata, "account", KeyScope.ACCOUNT)
    assert sorted(k.secret for k in keys) == [b"k1", "k\u00e9".encode()]
    assert keys_in(metadata, "container", KeyScope.CONTAINER) == []


def test_expiry_time() -> None:
    now = 1_700_000_000
    assert expiry_time(None, now) is None
    assert expiry_time(str(now + 5), now) == now + 5
    assert expiry_time("2023-11-14T22:13:25Z", now) == now + 5
    assert expiry_time(str(now - 1), now) == 0
    for bad in ("soon", "2023-11-14 22:13:25", "", "1e12"):
        assert expiry_time(bad, now) == 0


def test_params_take_the_first_value() -> None:
    raw = b"temp_url_sig=a&temp_url_sig=b&temp_url_expires=1&inline&filename=x%20y&" \
          b"temp_url_prefix=&temp_url_ip_range=1.2.3.4"
    params = TempUrlParams.from_query(raw)
    assert params == TempUrlParams(sig="a", expires="1", prefix="", filename="x y",
                                   inline=True, ip_range="1.2.3.4")
    assert TempUrlParams.from_query(b"") == TempUrlParams()


def test_header_filter() -> None:
    rules = HeaderFilter(("x-object-meta-*", "x-timestamp"), ("x-object-meta-public-*",))
    assert rules.removes("X-Object-Meta-Color") and rules.removes("x-timestamp")
    assert not rules.removes("X-Object-Meta-Public-Color")
    assert not rules.removes("Content-Type") and not rules.removes("x-timestamps")


def test_signed_path_and_prefix() -> None:
    target = Target("a", "c", "pre/obj")
    assert target.signed_path(None) == "/v1/a/c/pre/obj"
    assert target.signed_path("pre/") == "prefix:/v1/a/c/pre/"
    assert target.signed_path("") == "prefix:/v1/a/c/"
    assert target.signed_path("other") is None


def test_disposition() -> None:
    assert disposition("attachment", "a b/\u00e9\"") == \
        "attachment; filename=\"a b/%C3%A9%22\"; filename*=UTF-8''a%20b/%C3%A9%22"


async def test_authorize_within() -> None:
    same_account, same_container = authorize_within("A"), authorize_within("A", "c")
    await same_account(_request("/v1/A/other/o"))
    await same_container(_request("/v1/A/c"))
    await same_container(_request("/v1/A/c/o"))
    for check, path in ((same_account, "/v1/B/c/o"), (same_container, "/v1/A/d/o"),
                        (same_container, "/v1/A")):
        with pytest.raises(HTTPUnauthorized):
            await check(_request(path))


# -- the middleware ----------------------------------------------------------------------------
def _ctx(account_meta: dict[str, str] | None = None,
         container_meta: dict[str, str] | None = None, **settings: Any) -> ProxyContext:
    info = InfoCache(3600)
    ts = Timestamp(1)
    info.put(("a", ACCOUNT), AccountInfo(
        ACCOUNT, ts, ts, Timestamp(0), ts, False, 0, 0, 0, "id", False,
        {"X-Account-Meta-Temp-Url-Key": KEY} if account_meta is None else account_meta))
    for container in ("c", "d"):
        info.put(("c", ACCOUNT, container), ContainerInfo(
            ACCOUNT, container, ts, ts, Timestamp(0), ts, 0, 0, 0, ts, Timestamp(0), 0, 0,
            "id", False, container_meta or {}))
    return cast(ProxyContext, SimpleNamespace(settings=ObjectStoreSettings(**settings),
                                              info=info))


def _request(path: str, method: str = "GET", query: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, client: str = "127.0.0.1") -> Request:
    raw_query = urlencode(query or {}).encode()
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": raw_query, "client": (client, 1234),
             "headers": [(k.lower().encode(), v.encode("latin-1"))
                         for k, v in (headers or {}).items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request.from_scope(scope, receive)


def _signed(method: str, path: str, *, key: str = KEY, digest: str = "sha256",
            expires: int | None = None, prefix: str | None = None, ip: str | None = None,
            **extra: str) -> dict[str, str]:
    expires = expires or int(time.time()) + 60
    container_path = "/".join(path.split("/")[:4])
    signed = f"prefix:{container_path}/{prefix}" if prefix is not None else path
    body = tempurl_message(method, expires, signed, ip)
    query = {"temp_url_sig": hmac.new(key.encode(), body, digest).hexdigest(),
             "temp_url_expires": str(expires), **extra}
    if prefix is not None:
        query["temp_url_prefix"] = prefix
    if ip is not None:
        query["temp_url_ip_range"] = ip
    return query


class Core:
    """The rest of the pipeline: records what it saw, answers with ``response``."""

    def __init__(self, response: Response | None = None) -> None:
        self.seen: list[Request] = []
        self.response = response or Response(200, {
            "Content-Type": "text/plain", "X-Object-Meta-Secret": "s",
            "X-Object-Meta-Public-Color": "blue", "Expires": "stored"}, b"data")

    async def __call__(self, req: Request) -> Response:
        self.seen.append(req)
        if req.authorize is not None:
            await req.authorize(req)
        return self.response


async def _run(req: Request, core: Core | None = None, ctx: ProxyContext | None = None
               ) -> Response:
    return await TempURL(ctx or _ctx()).handle(req, core or Core())


async def test_requests_without_tempurl_pass_through() -> None:
    core = Core()
    req = _request("/v1/AUTH_a/c/o", query={"temp_url_prefix": "x", "format": "json"})
    await _run(req, core)
    assert core.seen[0].authorize is None and core.seen[0].query["format"] == "json"
    options = _request("/v1/AUTH_a/c/o", "OPTIONS", query={"temp_url_sig": "x"})
    await _run(options, core)
    assert len(core.seen) == 2


async def test_valid_get_is_authorized_and_rewritten() -> None:
    core = Core()
    query = _signed("GET", "/v1/AUTH_a/c/o", multipart="get", filename="f.txt")
    req = _request("/v1/AUTH_a/c/o", query=query,
                   headers={"X-Timestamp": "1", "X-Open-Expired": "true", "X-Keep": "1"})
    response = await _run(req, core)
    seen = core.seen[0]
    assert seen.authorize is not None
    assert set(seen.query) == {"temp_url_sig", "temp_url_expires", "filename"}
    assert b"multipart" not in seen.scope["query_string"]
    assert "x-timestamp" not in seen.headers and "x-open-expired" not in seen.headers
    assert seen.headers["x-keep"] == "1"
    assert "X-Object-Meta-Secret" not in response.headers
    assert response.headers["X-Object-Meta-Public-Color"] == "blue"
    assert response.headers["Content-Disposition"] == \
        "attachment; filename=\"f.txt\"; filename*=UTF-8''f.txt"
    assert response.headers["Expires"].endswith(" GMT") and \
        response.headers["Expires"] != "stored"


@pytest.mark.parametrize("signed_as", ["HEAD", "GET", "PUT", "POST"])
async def test_head_accepts_signatures_of_reading_and_writing_methods(signed_as: str
                                                                      ) -> None:
    query = _signed(signed_as, "/v1/AUTH_a/c/o")
    response = await _run(_request("/v1/AUTH_a/c/o", "HEAD", query=query))
    assert response.status == 200


@pytest.mark.parametrize(("method", "signed_as"), [("GET", "HEAD"), ("PUT", "GET"),
                                                   ("DELETE", "PUT"), ("POST", "PUT")])
async def test_other_methods_need_their_own_signature(method: str, signed_as: str) -> None:
    query = _signed(signed_as, "/v1/AUTH_a/c/o")
    with pytest.raises(HTTPUnauthorized) as caught:
        await _run(_request("/v1/AUTH_a/c/o", method, query=query))
    assert caught.value.body == "401 Unauthorized: Temp URL invalid\n"


async def test_methods_come_from_the_settings() -> None:
    ctx = _ctx(tempurl_methods=["GET", "HEAD"])
    query = _signed("PUT", "/v1/AUTH_a/c/o")
    with pytest.raises(HTTPUnauthorized):
        await _run(_request("/v1/AUTH_a/c/o", "PUT", query=query), ctx=ctx)
    assert TempURL(ctx).info()["methods"] == ["GET", "HEAD"]


async def test_digests_come_from_the_settings() -> None:
    ctx = _ctx(tempurl_allowed_digests=["sha512"])
    with pytest.raises(HTTPUnauthorized):
        await _run(_request("/v1/AUTH_a/c/o", query=_signed("GET", "/v1/AUTH_a/c/o")),
                   ctx=ctx)
    query = _signed("GET", "/v1/AUTH_a/c/o", digest="sha512")
    assert (await _run(_request("/v1/AUTH_a/c/o", query=query), ctx=ctx)).status == 200


@pytest.mark.parametrize("path", ["/v1/AUTH_a/c", "/v1/AUTH_a/c/", "/v1/AUTH_a/c//",
                                  "/v1/AUTH_a", "/v1.0/AUTH_a/c/o"])
async def test_only_object_paths(path: str) -> None:
    with pytest.raises(HTTPUnauthorized):
        await _run(_request(path, query=_signed("GET", path)))


async def test_head_401_has_no_body() -> None:
    with pytest.raises(HTTPUnauthorized) as caught:
        await _run(_request("/v1/AUTH_a/c/o", "HEAD", query={"temp_url_sig": "x",
                                                            "temp_url_expires": "1"}))
    assert caught.value.body is None


async def test_no_keys_no_access() -> None:
    ctx = _ctx(account_meta={})
    with pytest.raises(HTTPUnauthorized):
        await _run(_request("/v1/AUTH_a/c/o", query=_signed("GET", "/v1/AUTH_a/c/o")),
                   ctx=ctx)


async def test_key_scopes() -> None:
    """An account key grants its account; a container key only its container."""
    ctx = _ctx(container_meta={"X-Container-Meta-Temp-Url-Key-2": "ck"})
    core = Core()
    await _run(_request("/v1/AUTH_a/c/o", query=_signed("GET", "/v1/AUTH_a/c/o")), core, ctx)
    await core.seen[0].authorize(_request("/v1/AUTH_a/d/o"))  # type: ignore[misc]
    query = _signed("GET", "/v1/AUTH_a/c/o", key="ck")
    await _run(_request("/v1/AUTH_a/c/o", query=query), core, ctx)
    authorize = core.seen[1].authorize
    assert authorize is not None
    await authorize(_request("/v1/AUTH_a/c/seg"))
    with pytest.raises(HTTPUnauthorized):
        await authorize(_request("/v1/AUTH_a/d/seg"))


async def test_prefix_signatures() -> None:
    query = _signed("GET", "/v1/AUTH_a/c/pre/x/y", prefix="pre/")
    assert (await _run(_request("/v1/AUTH_a/c/pre/x/y", query=query))).status == 200
    with pytest.raises(HTTPUnauthorized):
        await _run(_request("/v1/AUTH_a/c/other", query=query))
    plain = _signed("GET", "/v1/AUTH_a/c/pre")
    with pytest.raises(HTTPUnauthorized):  # an object signature is not a prefix signature
        await _run(_request("/v1/AUTH_a/c/pre", query={**plain, "temp_url_prefix": "pre"}))


async def test_ip_ranges() -> None:
    for ip, client, ok in (("127.0.0.1", "127.0.0.1", True), ("10.0.0.0/8", "10.2.3.4", True),
                           ("10.0.0.0/8", "127.0.0.1", False), ("10.0.0.1/8", "10.0.0.1", False),
                           ("bogus", "127.0.0.1", False), ("::1", "127.0.0.1", False)):
        req = _request("/v1/AUTH_a/c/o", query=_signed("GET", "/v1/AUTH_a/c/o", ip=ip),
                       client=client)
        if ok:
            assert (await _run(req)).status == 200
        else:
            with pytest.raises(HTTPUnauthorized):
                await _run(req)


@pytest.mark.parametrize("header", ["X-Object-Manifest", "X-Symlink-Target", "X-Copy-From"])
async def test_pointer_headers_are_400_on_writes(header: str) -> None:
    core = Core()
    for method in ("PUT", "POST"):
        req = _request("/v1/AUTH_a/c/o", method, query=_signed(method, "/v1/AUTH_a/c/o"),
                       headers={header: "c/x"})
        with pytest.raises(HTTPBadRequest) as caught:
            await _run(req, core)
        assert caught.value.body == f"The header '{header}' is not allowed in this tempurl"
    assert core.seen == []
    get = _request("/v1/AUTH_a/c/o", query=_signed("GET", "/v1/AUTH_a/c/o"),
                   headers={header: "c/x"})
    assert (await _run(get, core)).status == 200


async def test_inline_and_stored_disposition() -> None:
    stored = Response(200, {"content-disposition": "attachment; filename=kept"}, b"")
    query = _signed("GET", "/v1/AUTH_a/c/dir/o.txt")
    response = await _run(_request("/v1/AUTH_a/c/dir/o.txt", query=query), Core(stored))
    assert response.headers == {"Content-Disposition": "attachment; filename=kept",
                                "Expires": response.headers["Expires"]}
    response = await _run(_request("/v1/AUTH_a/c/dir/o.txt", query={**query, "inline": ""}),
                          Core(Response(200, {}, b"")))
    assert response.headers["Content-Disposition"] == "inline"
    response = await _run(_request("/v1/AUTH_a/c/dir/o.txt", query=query),
                          Core(Response(200, {}, b"")))
    assert response.headers["Content-Disposition"] == \
        "attachment; filename=\"o.txt\"; filename*=UTF-8''o.txt"


async def test_errors_and_writes_get_no_disposition() -> None:
    query = _signed("PUT", "/v1/AUTH_a/c/o")
    response = await _run(_request("/v1/AUTH_a/c/o", "PUT", query=query),
                          Core(Response(201, {"X-Object-Meta-A": "1"})))
    assert response.headers == {}
    query = _signed("GET", "/v1/AUTH_a/c/o")
    response = await _run(_request("/v1/AUTH_a/c/o", query=query), Core(Response(304, {})))
    assert response.headers == {}


async def test_container_root_only_for_staticweb() -> None:
    query = _signed("GET", "/v1/AUTH_a/c/", prefix="")
    with pytest.raises(HTTPUnauthorized):
        await _run(_request("/v1/AUTH_a/c/", query=query), Core(Response(200, {}, b"list")))
    page = Response(200, {"X-Backend-Content-Generator": "staticweb"}, b"<html>")
    response = await _run(_request("/v1/AUTH_a/c/", query=query), Core(page))
    assert response.headers["Content-Disposition"] == "inline"
    with pytest.raises(HTTPUnauthorized):  # only for reads
        await _run(_request("/v1/AUTH_a/c/", "PUT", query=_signed("PUT", "/v1/AUTH_a/c/",
                                                                    prefix="")))


async def test_far_future_expiry_has_no_expires_header() -> None:
    query = _signed("GET", "/v1/AUTH_a/c/o", expires=10 ** 20)
    response = await _run(_request("/v1/AUTH_a/c/o", query=query))
    assert response.status == 200 and "Expires" not in response.headers


def test_info() -> None:
    info = TempURL(_ctx()).info()
    assert info["allowed_digests"] == ["sha1", "sha256", "sha512"]
    assert info["deprecated_digests"] == ["sha1"]
    assert info["outgoing_allow_headers"] == ["x-object-meta-public-*"]


def test_unauthorized_is_a_swift_error() -> None:
    assert issubclass(HTTPUnauthorized, SwiftError)
