"""Static web sites (Swift's ``staticweb``): set up with the ``swift`` CLI as its docs show,
browsed anonymously and with ``X-Web-Mode`` over raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Swift, run_cli, uniq

HTML = "text/html; charset=UTF-8"


@pytest.fixture
def anonymous(cloud: RunningCloud, swift: Swift) -> Iterator[Swift]:
    client = Swift(cloud.objectstore_url, swift.account, None)
    yield client
    client.close()


@pytest.fixture
def site(cloud: RunningCloud, swift: Swift) -> str:
    """A public container with an index, pages, a pseudo-directory and a marker."""
    container = swift.container()
    run_cli(cloud, "swift", "post", "-r", ".r:*,.rlistings", container)
    swift.put(f"{container}/index.html", b"<h1>home</h1>", **{"Content-Type": "text/html"})
    swift.put(f"{container}/404error.html", b"not here", **{"Content-Type": "text/html"})
    swift.put(f"{container}/401error.html", b"go away", **{"Content-Type": "text/html"})
    swift.put(f"{container}/style.css", b"h1 {}", **{"Content-Type": "text/css"})
    swift.put(f"{container}/docs/index.html", b"docs home")
    swift.put(f"{container}/docs/a.txt", b"a" * 2048)
    swift.put(f"{container}/empty", b"", **{"Content-Type": "application/directory"})
    swift.put(f"{container}/empty/x <b>.txt", b"x")
    return container


def get(client: Swift, path: str, method: str = "GET", **headers: str) -> httpx.Response:
    return client.request(method, path, headers=headers)


def test_info_advertises_staticweb(swift: Swift) -> None:
    assert swift.http.get("/info").json()["staticweb"] == {}


def test_index_pages_and_slash_redirects(cloud: RunningCloud, swift: Swift,
                                         anonymous: Swift, site: str) -> None:
    run_cli(cloud, "swift", "post", "-m", "web-index:index.html", site)
    response = get(anonymous, f"{site}/")
    assert (response.status_code, response.content) == (200, b"<h1>home</h1>")
    response = get(anonymous, site)
    assert response.status_code == 301
    assert response.headers["location"] == f"{cloud.objectstore_url}{swift.url(site)}/"
    assert get(anonymous, f"{site}/docs/").content == b"docs home"
    response = get(anonymous, f"{site}/docs")
    assert response.status_code == 301
    assert response.headers["location"].endswith(f"{swift.url(site)}/docs/")
    head = get(anonymous, f"{site}/", method="HEAD")
    assert head.status_code == 200 and head.headers["content-length"] == "13"
    assert get(anonymous, f"{site}/docs/a.txt").content == b"a" * 2048


def test_error_pages(cloud: RunningCloud, anonymous: Swift, swift: Swift, site: str) -> None:
    swift.ok("POST", site, headers={"X-Container-Meta-Web-Error": "error.html",
                                    "X-Container-Meta-Web-Index": "index.html"})
    response = get(anonymous, f"{site}/no/such/page.html")
    assert (response.status_code, response.content) == (404, b"not here")
    response = get(anonymous, f"{site}/no-such-dir/")
    assert (response.status_code, response.content) == (404, b"not here")
    swift.ok("POST", site, headers={"X-Container-Read": ".r:*"})  # no .rlistings
    response = get(anonymous, f"{site}/")  # the container itself: not readable
    assert (response.status_code, response.content) == (401, b"go away")


def test_listings_with_default_style_and_css(swift: Swift, anonymous: Swift,
                                             site: str) -> None:
    swift.ok("POST", site, headers={"X-Container-Meta-Web-Listings": "true"})
    response = get(anonymous, f"{site}/")
    assert response.status_code == 200
    assert response.headers["content-type"] == HTML
    page = response.text
    assert f"<title>Listing of {swift.url(site)}/</title>" in page
    assert "<style type=\"text/css\">" in page
    assert '<a href="./docs/">docs/</a>' in page
    assert '<a href="./style%2Ecss">style.css</a>' in page
    assert '<tr class="item type-text type-css">' in page
    assert "x-backend" not in {k.lower()[:9] for k in response.headers}
    swift.ok("POST", site, headers={"X-Container-Meta-Web-Listings-CSS": "style.css"})
    page = get(anonymous, f"{site}/docs/").text
    assert '<link rel="stylesheet" type="text/css" href="../style%2Ecss" />' not in page
    assert '<link rel="stylesheet" type="text/css" href="../style.css" />' in page
    assert '<a href="../">../</a>' in page
    assert '<td class="colsize">2Ki</td>' in page
    assert '<a href="./a%2Etxt">a.txt</a>' in page


def test_directory_markers_and_escaping(swift: Swift, anonymous: Swift, site: str) -> None:
    swift.ok("POST", site, headers={"X-Container-Meta-Web-Listings": "true",
                                    "X-Container-Meta-Web-Listings-Label": "example.com"})
    response = get(anonymous, f"{site}/empty")  # a marker object: a directory
    assert response.status_code == 301
    page = get(anonymous, f"{site}/empty/").text
    assert "Listing of example.com/empty/" in page
    assert "x &lt;b&gt;.txt" in page and "<b>" not in page
    swift.put(f"{site}/typed", b"", **{"Content-Type": "text/directory"})
    swift.put(f"{site}/typed/f", b"1")
    assert get(anonymous, f"{site}/typed").status_code == 200  # not this site's marker type
    swift.ok("POST", site, headers={"X-Container-Meta-Web-Directory-Type": "text/directory"})
    assert get(anonymous, f"{site}/typed").status_code == 301


def test_listing_disabled_page(swift: Swift, anonymous: Swift, site: str) -> None:
    swift.ok("POST", site, headers={"X-Container-Meta-Web-Index": "missing.html"})
    response = get(anonymous, f"{site}/")
    assert response.status_code == 404
    assert "Web Listing Disabled" in response.text
    assert "X-Container-Meta-Web-Index: missing.html" in response.text


def test_web_mode_for_authenticated_users(swift: Swift, site: str) -> None:
    listing = get(swift, f"{site}/")
    assert listing.status_code == 200 and "index.html" in listing.text.splitlines()
    assert get(swift, site, **{"X-Web-Mode": "true"}).status_code == 404  # no site yet
    swift.ok("POST", site, headers={"X-Container-Meta-Web-Index": "index.html"})
    assert get(swift, f"{site}/", **{"X-Web-Mode": "true"}).content == b"<h1>home</h1>"
    assert get(swift, site, **{"X-Web-Mode": "true"}).status_code == 301
    assert get(swift, site).status_code == 200  # no X-Web-Mode: the API as usual


def test_private_containers_stay_private(swift: Swift, anonymous: Swift) -> None:
    container = swift.container(**{"X-Container-Meta-Web-Index": "index.html",
                                   "X-Container-Meta-Web-Listings": "true"})
    swift.put(f"{container}/index.html", b"secret")
    assert get(anonymous, f"{container}/").status_code == 401
    assert get(anonymous, f"{container}/index.html").status_code == 401
    assert get(anonymous, container).status_code == 401
    assert get(anonymous, uniq()).status_code == 401
    assert get(anonymous, f"{uniq()}/x").status_code == 401
