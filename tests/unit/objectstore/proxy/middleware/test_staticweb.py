"""Static web: the site settings, Swift's listing markup, and which requests are served as
a site (the flows run against real clouds in the integration and conformance tests)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from pocketstack.identity.middleware import AuthContext
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.staticweb import SiteConfig, StaticWeb
from pocketstack.objectstore.proxy.middleware.staticweb_pages import (
    ListingPage,
    css_path,
    disabled_page,
    human_readable,
)
from pocketstack.objectstore.proxy.request import Request, Response

pytestmark = pytest.mark.anyio


def test_site_config_from_metadata() -> None:
    config = SiteConfig.from_metadata({
        "X-Container-Meta-Web-Index": " index.html ", "x-container-meta-web-error": "e.html",
        "X-Container-Meta-Web-Listings": "true", "X-Container-Meta-Web-Listings-Css": "s.css",
        "X-Container-Meta-Web-Listings-Label": "caf\xc3\xa9",
        "X-Container-Meta-Web-Directory-Type": "text/dir", "X-Container-Meta-Other": "x"})
    assert config == SiteConfig(index="index.html", error="e.html", listings="true",
                                listings_label="caf\u00e9", listings_css="s.css",
                                directory_type="text/dir")


def test_human_readable_sizes() -> None:
    assert [human_readable(v) for v in (0, 1023, 1024, 1536, 1048576, 5 * 2**40)] == \
        ["0", "1023", "1Ki", "2Ki", "1Mi", "5Ti"]


def test_css_paths() -> None:
    assert css_path("s.css", "") == "s.css"
    assert css_path("s.css", "a/b/") == "../../s.css"
    assert css_path("/static/s s.css", "a/") == "/static/s%20s.css"
    assert css_path("https://cdn.example/s.css", "a/") == "https://cdn.example/s.css"


def test_listing_markup() -> None:
    page = ListingPage(label="/v1/a/c/d/", prefix="d/").render([
        {"subdir": "d/sub/"},
        {"name": "d/x <y>.txt", "bytes": 2048, "content_type": "text/plain",
         "last_modified": "2026-01-02T03:04:05.123456"}])
    assert "<title>Listing of /v1/a/c/d/</title>" in page
    assert '<td class="colname"><a href="../">../</a></td>' in page
    assert '<a href="./sub/">sub/</a>' in page
    assert '<tr class="item type-text type-plain">' in page
    assert '<a href="./x%20%3Cy%3E%2Etxt">x &lt;y&gt;.txt</a>' in page
    assert '<td class="colsize">2Ki</td>' in page
    assert '<td class="coldate">2026-01-02 03:04:05</td>' in page


def test_listing_links_carry_the_tempurl() -> None:
    page = ListingPage(label="/v1/a/c/", prefix="", tempurl_query="?temp_url_sig=s",
                       tempurl_prefix="").render([{"subdir": "d/"}])
    assert '<a href="./d/?temp_url_sig=s">d/</a>' in page
    assert "../" not in page


def test_disabled_page() -> None:
    page = disabled_page("/v1/a/c/", css="", index="<i>.html", prefix="")
    assert "<h1>Web Listing Disabled</h1>" in page
    assert "X-Container-Meta-Web-Index: &lt;i&gt;.html" in page


def _request(path: str, method: str = "GET", auth: bool = False, **headers: str) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(k.lower().replace("_", "-").encode(),
                                                v.encode()) for k, v in headers.items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    req = Request.from_scope(scope, receive)

    async def allow(_: Request) -> None:
        return None

    req.authorize = allow
    if auth:
        req.auth = cast(AuthContext, SimpleNamespace())
    return req


@pytest.mark.parametrize(("path", "method", "auth", "headers"), [
    ("/v1/a/c/o", "PUT", False, {}),
    ("/v1/a", "GET", False, {}),
    ("/v1/a/c/", "GET", True, {}),
    ("/v1/a/c/", "HEAD", True, {"x_web_mode": "false"})])
async def test_requests_that_are_not_for_a_site_pass_through(
        path: str, method: str, auth: bool, headers: dict[str, str]) -> None:
    seen: list[Request] = []

    async def core(req: Request) -> Response:
        seen.append(req)
        return Response(204)

    middleware = StaticWeb(cast(ProxyContext, SimpleNamespace()))
    req = _request(path, method, auth, **headers)
    assert (await middleware.handle(req, core)).status == 204
    assert seen == [req]
