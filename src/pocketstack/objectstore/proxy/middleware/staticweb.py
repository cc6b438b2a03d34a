"""Static web sites served from containers (Swift's ``staticweb`` middleware, post-auth).

A container's metadata makes it a site: ``X-Container-Meta-Web-Index`` (the object served
for a directory, e.g. ``index.html``), ``-Web-Error`` (``<status><suffix>`` pages, e.g.
``404error.html``, for 404 and for a refused container request), ``-Web-Listings: true``
(an HTML listing of directories without an index; ``-Web-Listings-CSS`` names a style sheet,
``-Web-Listings-Label`` replaces ``/v1/<account>/<container>`` in its title) and
``-Web-Directory-Type`` (the Content-Type of 0- or 1-byte directory markers, which a site
treats as missing; ``application/directory`` by default).

Site mode applies to GET and HEAD by anonymous callers (a public container needs
``X-Container-Read: .r:*``, and ``.rlistings`` for listings), by TempURL callers (listing
links then carry the TempURL), and by authenticated users who send ``X-Web-Mode: true``;
other requests pass through untouched. ``/c/dir`` with an index or listing to show is
redirected to ``/c/dir/`` (301, absolute ``Location``). Everything a site shows is read
with sub-requests as the caller, so ACLs apply to the index, error pages and listings too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.exceptions import HTTPNotFound, HTTPServiceUnavailable, SwiftError
from pocketstack.objectstore.proxy import checks
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.controllers import container as containers
from pocketstack.objectstore.proxy.controllers.base import container_info
from pocketstack.objectstore.proxy.middleware.staticweb_pages import ListingPage, disabled_page
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, read_body, release
from pocketstack.objectstore.proxy.request import Request, Response, wsgi_to_str

SOURCE = "SW"
HTML = "text/html; charset=UTF-8"
DIRECTORY_TYPE = "application/directory"
MAX_LISTING_BODY = 64 * 1024 * 1024  # one page of a container listing, as JSON
MOVED = b"<html><h1>Moved Permanently</h1><p>The resource has moved permanently.</p></html>"
GENERATOR = "X-Backend-Content-Generator"  # tells TempURL the page is a listing


@dataclass(frozen=True)
class SiteConfig:
    """A container's ``X-Container-Meta-Web-*`` settings (text, stripped)."""

    index: str = ""
    error: str = ""
    listings: str = ""
    listings_label: str = ""
    listings_css: str = ""
    directory_type: str = ""

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> SiteConfig:
        web = {k.lower()[len("x-container-meta-web-"):]: wsgi_to_str(v).strip()
               for k, v in metadata.items() if k.lower().startswith("x-container-meta-web-")}
        return cls(index=web.get("index", ""), error=web.get("error", ""),
                   listings=web.get("listings", ""),
                   listings_label=web.get("listings-label", ""),
                   listings_css=web.get("listings-css", ""),
                   directory_type=web.get("directory-type", ""))


@dataclass
class Outcome:
    """A sub-request's answer: a response, or the error the core raised for it."""

    status: int
    response: Response | None = None
    error: Exception | None = None

    @property
    def found(self) -> bool:
        """2xx or 3xx: what a site shows as it is."""
        return 200 <= self.status < 400

    async def discard(self) -> None:
        if self.response is not None:
            await release(self.response)

    def give(self) -> Response:
        """The response to send on (an error is raised again, for the edge to render)."""
        if self.response is not None:
            return self.response
        raise self.error or HTTPNotFound()


def header(response: Response, name: str) -> str | None:
    return next((v for k, v in response.headers.items() if k.lower() == name), None)


class StaticWeb(Middleware):
    name = "staticweb"

    def info(self) -> dict[str, Any]:
        return {}

    def applies(self, req: Request) -> bool:
        return (req.method in ("GET", "HEAD") and req.container is not None
                and req.authorize is not None
                and (req.auth is None or checks.true(req.headers.get("x-web-mode"))))

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.method not in ("GET", "HEAD") or req.container is None or req.authorize is None:
            return await next(req)
        if req.auth is not None and not checks.true(req.headers.get("x-web-mode")):
            return await next(req)  # an authenticated user, not asking for the site
        site = Site(self.ctx, req, next)
        if req.obj is not None:
            return await site.serve_object()
        return await site.serve_container()


class Site:
    """One request in site mode (Swift's ``_StaticWebContext``)."""

    def __init__(self, ctx: ProxyContext, req: Request, next: Handler) -> None:
        self.ctx, self.req, self.next = ctx, req, next
        self.config = SiteConfig()
        self.container_path = f"/{req.version}/{req.account}/{req.container}"
        agent = f"{req.headers.get('user-agent', '')} StaticWeb".strip()
        self.forwarded = {"User-Agent": agent}
        if "referer" in req.headers:
            self.forwarded["Referer"] = req.headers["referer"]

    async def load(self) -> Any:
        """The container's info and its site settings; none when no replica answered (as
        Swift's ``get_container_info``: the request goes on, and is answered as without
        a site)."""
        try:
            info = await container_info(self.ctx, self.req.account or "",
                                        self.req.container or "")
        except HTTPServiceUnavailable:
            info = None
        self.config = SiteConfig.from_metadata(info.metadata if info is not None else {})
        return info

    @property
    def web_mode(self) -> bool:
        return checks.true(self.req.headers.get("x-web-mode"))

    async def fetch(self, method: str, path: str, *, headers: Mapping[str, str],
                    query: Mapping[str, str] | None = None) -> Outcome:
        try:
            sub = self.req.subrequest(method, path, headers=headers, query=query,
                                      source=SOURCE)
            response = await self.next(sub)
        except (SwiftError, ConstraintError) as exc:
            return Outcome(exc.status, error=exc)
        return Outcome(response.status, response=response)

    async def error_page(self, status: int) -> Response | None:
        """The container's ``<status><web-error>`` object, answered with ``status``."""
        if not self.config.error:
            return None
        page = await self.fetch("GET", f"{self.container_path}/{status}{self.config.error}",
                                headers=self.forwarded)
        if page.response is None or page.status // 100 != 2:
            await page.discard()
            return None
        page.response.status = status
        return page.response

    async def fail(self, outcome: Outcome) -> Response:
        """An error answer: its error page when the site has one, else itself."""
        page = await self.error_page(outcome.status)
        if page is None:
            return outcome.give()
        await outcome.discard()
        return page

    def redirect(self) -> Response:
        """301 to the same path with a slash (absolute, by the request's Host)."""
        scope = self.req.scope
        host = self.req.headers.get("host")
        if not host:
            server = scope.get("server") or ("localhost", 80)
            host = f"{server[0]}:{server[1]}"
        location = quote(self.req.path.encode("utf-8", "surrogateescape") + b"/", safe="/")
        headers = {"Location": f"{scope.get('scheme', 'http')}://{host}{location}",
                   "Content-Type": HTML}
        return Response(301, headers, MOVED)

    # -- the container ------------------------------------------------------------------------
    async def serve_container(self) -> Response:
        info = await self.load()
        try:
            await containers.authorize(self.ctx, self.req, info)
        except SwiftError as exc:
            return await self.fail(Outcome(exc.status, error=exc))
        config = self.config
        if not config.listings and not config.index:
            if self.web_mode:
                raise HTTPNotFound()
            return await self.next(self.req)
        if not self.req.path.endswith("/"):
            return self.redirect()
        if not config.index:
            return await self.listing("")
        index = await self.fetch(self.req.method, self.req.path + config.index,
                                 headers=dict(self.req.headers), query=self.req.query)
        if index.status == 404:
            await index.discard()
            return await self.listing("")
        if not index.found:
            return await self.fail(index)
        return index.give()

    # -- an object path -----------------------------------------------------------------------
    async def serve_object(self) -> Response:
        first = await self.fetch_itself()
        await self.load()
        status = first.status
        if first.found:
            if not self.is_directory_marker(first):
                return first.give()
            status = 404
        config = self.config
        if status != 404 or (not config.listings and not config.index):
            return first.give()  # other errors, or no site here: as they are
        await first.discard()
        if config.index:
            index = await self.fetch_index()
            if index.found:
                if self.req.path.endswith("/"):
                    return index.give()
                await index.discard()
                return self.redirect()
            if index.status != 404:
                return await self.fail(index)
            await index.discard()
        if not self.req.path.endswith("/"):
            return await self.redirect_if_directory()
        return await self.listing(self.req.obj or "")

    async def fetch_itself(self) -> Outcome:
        try:
            response = await self.next(self.req)
        except (SwiftError, ConstraintError) as exc:
            return Outcome(exc.status, error=exc)
        return Outcome(response.status, response=response)

    async def fetch_index(self) -> Outcome:
        path = self.req.path if self.req.path.endswith("/") else self.req.path + "/"
        return await self.fetch(self.req.method, path + self.config.index,
                                headers=dict(self.req.headers), query=self.req.query)

    def is_directory_marker(self, outcome: Outcome) -> bool:
        response = outcome.response
        if response is None:
            return False
        length = response.content_length
        if length is None:
            value = header(response, "content-length") or "0"
            length = int(value) if value.isdigit() else 0
        wanted = self.config.directory_type or DIRECTORY_TYPE
        return header(response, "content-type") == wanted and length <= 1

    async def redirect_if_directory(self) -> Response:
        """``/c/dir`` names a pseudo-directory when something is listed under ``dir/``."""
        probe = await self.fetch("GET", self.container_path, headers=self.forwarded, query={
            "limit": "1", "delimiter": "/", "prefix": f"{self.req.obj}/", "format": "json"})
        entries = await self.entries(probe)
        if not entries:
            return await self.fail(Outcome(404, error=HTTPNotFound()))
        return self.redirect()

    async def entries(self, outcome: Outcome) -> list[dict[str, Any]]:
        """The rows of a listing sub-request ([] when it failed)."""
        if outcome.response is None or outcome.status // 100 != 2:
            await outcome.discard()
            return []
        try:
            body = await read_body(outcome.response, MAX_LISTING_BODY)
            rows = json.loads(body) if body else []
        except ValueError:
            return []
        return rows if isinstance(rows, list) else []

    # -- listings -----------------------------------------------------------------------------
    def label(self) -> str:
        if not self.config.listings_label:
            return self.req.path
        return f"{self.config.listings_label}/" + "/".join(self.req.path.split("/")[4:])

    async def listing(self, prefix: str) -> Response:
        config = self.config
        if not checks.true(config.listings):
            text = disabled_page(self.label(), css=config.listings_css, index=config.index,
                                 prefix=prefix)
            disabled = Response(404, {"Content-Type": HTML}, text.encode("utf-8"))
            return await self.error_page(404) or disabled
        query = {"delimiter": "/", "format": "json", **({"prefix": prefix} if prefix else {})}
        outcome = await self.fetch("GET", self.container_path, headers=self.forwarded,
                                   query=query)
        if outcome.status // 100 != 2:
            return await self.fail(outcome)
        entries = await self.entries(outcome)
        if prefix and not entries:
            return await self.fail(Outcome(404, error=HTTPNotFound()))
        page = ListingPage(label=self.label(), prefix=prefix, css=config.listings_css,
                           **self.tempurl_links())
        return Response(200, {"Content-Type": HTML, GENERATOR: "staticweb"},
                        page.render(entries).encode("utf-8"))

    def tempurl_links(self) -> dict[str, str]:
        """The TempURL query listing links carry (when a TempURL with a prefix let the
        caller in), and the prefix it covers."""
        query = self.req.query
        if "temp_url_sig" not in query or "temp_url_prefix" not in query:
            return {}
        prefix = query["temp_url_prefix"]
        parts = [f"temp_url_prefix={quote(prefix)}",
                 f"temp_url_expires={quote(query.get('temp_url_expires', ''))}",
                 f"temp_url_sig={query['temp_url_sig']}"]
        if "temp_url_ip_range" in query:
            parts.append(f"temp_url_ip_range={quote(query['temp_url_ip_range'])}")
        if "inline" in query:
            parts.append("inline")
        return {"tempurl_query": "?" + "&amp;".join(parts), "tempurl_prefix": prefix}
