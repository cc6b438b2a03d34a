"""The proxy's view of one HTTP request and the way responses go out.

Paths are decoded from the raw bytes the client sent (``%2F`` and ``//`` survive, invalid
UTF-8 is detected instead of being replaced), because object names are data: whatever bytes
a client names an object with come back the same in listings.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlencode

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from pocketstack.common.http import request_id_of
from pocketstack.identity.middleware import AuthContext
from pocketstack.objectstore.exceptions import (
    HTTPBadRequest,
    HTTPClientDisconnect,
    HTTPNotFound,
    HTTPPreconditionFailed,
    HTTPRequestEntityTooLarge,
    HTTPRequestTimeout,
)
from pocketstack.objectstore.proxy.http1 import BODY_ERROR

Authorizer = Callable[["Request"], Awaitable[None]]
# Seconds a client may leave a request body stalled before the proxy answers 408 (Swift's
# ``client_timeout``).
CLIENT_TIMEOUT = 60.0


def decode_path(raw: bytes) -> str:
    """Percent-decode a raw request path; 412 for invalid UTF-8 or NUL (as Swift)."""
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPPreconditionFailed("Invalid UTF8 or contains NULL") from exc
    if "\x00" in path:
        raise HTTPPreconditionFailed("Invalid UTF8 or contains NULL")
    return path


def split_path(path: str) -> tuple[str, str | None, str | None, str | None]:
    """``/v1/a/c/o/with/slashes`` -> ("v1", "a", "c", "o/with/slashes"), as Swift's
    ``split_path(path, 1, 4, rest_with_last=True)``: missing or empty trailing parts are
    None; an empty part before the last one (``/v1//c``, ``/v1/a//o``, ``//v1/a``, ``/``)
    is a path Swift's proxy answers 404 for."""
    segments = path.split("/", 4)
    if segments[0] or len(segments) < 2 or not segments[1] or not all(segments[1:-1]):
        raise HTTPNotFound()
    padded = [*segments[1:], None, None, None][:4]
    version, account, container, obj = (p or None for p in padded)
    return version or "", account, container, obj


@dataclass
class Request:
    scope: Scope
    receive: Receive
    method: str
    path: str
    version: str
    account: str | None
    container: str | None
    obj: str | None
    query: dict[str, str]
    headers: Headers
    auth: AuthContext | None = None
    service_auth: AuthContext | None = None
    authorize: Authorizer | None = None
    acl_groups: tuple[str, ...] = ()
    state: dict[str, Any] = field(default_factory=dict)
    _body_started: bool = False

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        path = decode_path(raw.split(b"?", 1)[0])
        query = _parse_query(scope.get("query_string", b""))
        version, account, container, obj = split_path(path)
        return cls(scope=scope, receive=receive, method=scope["method"], path=path,
                   version=version, account=account, container=container, obj=obj,
                   query=query, headers=Headers(scope=scope))

    @property
    def trans_id(self) -> str:
        return request_id_of(self.scope)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError as exc:
            raise HTTPBadRequest("Invalid Content-Length header value") from exc
        if length < 0:
            raise HTTPBadRequest("Invalid Content-Length header value")
        return length

    @property
    def is_chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def remote_addr(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else ""

    async def body(self, *, limit: int | None = None, timeout: float = CLIENT_TIMEOUT
                   ) -> AsyncIterator[bytes]:
        """The request body as it streams in; 499 when the client goes away mid-body (or its
        chunked framing breaks off, see ``http1``), 408
        when it sends nothing for ``timeout`` seconds, 413 ("Your request is too large.")
        once it passes ``limit`` bytes (a chunked body announces no length up front)."""
        self._body_started = True
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(self.receive(), timeout)
            except TimeoutError as exc:
                raise HTTPRequestTimeout() from exc
            if message["type"] == "http.disconnect":
                raise HTTPClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                raise HTTPRequestEntityTooLarge("Your request is too large.")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                if BODY_ERROR in self.scope:  # it broke off: not a complete body
                    raise HTTPClientDisconnect()
                return

    async def read_body(self, limit: int) -> bytes:
        """A small body, whole (413 when larger than ``limit``)."""
        return b"".join([chunk async for chunk in self.body(limit=limit)])

    def header_items(self) -> Iterable[tuple[str, str]]:
        return self.headers.items()

    def subrequest(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                   body: bytes | AsyncIterable[bytes] | None = None,
                   query: Mapping[str, str] | None = None, source: str = "") -> Request:
        """A request the proxy makes itself (Swift's ``make_subrequest``): the caller's
        identity and deferred authorization, its own method, path (decoded ``/v1/a/c/o``),
        headers, query and body. ``source`` names the feature that made it (logs, loops)."""
        wire = [(k.lower().encode("latin-1"), _header_value(v))
                for k, v in (headers or {}).items()]
        if isinstance(body, bytes) and not any(k == b"content-length" for k, _ in wire):
            wire.append((b"content-length", str(len(body)).encode()))
        query = dict(query or {})
        scope = {**self.scope, "method": method, "path": path, "headers": wire,
                 "raw_path": quote(path.encode("utf-8"), safe="/").encode("ascii"),
                 "query_string": urlencode(query).encode("ascii")}
        version, account, container, obj = split_path(path)
        return Request(scope=scope, receive=_receiver(body), method=method, path=path,
                       version=version, account=account, container=container, obj=obj,
                       query=query, headers=Headers(scope=scope), auth=self.auth,
                       service_auth=self.service_auth, authorize=self.authorize,
                       acl_groups=self.acl_groups, state={"swift_source": source})


def _receiver(body: bytes | AsyncIterable[bytes] | None) -> Receive:
    """An ASGI ``receive`` that hands out a sub-request's body."""
    if body is None or isinstance(body, bytes):
        sent = False

        async def receive_once() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body or b"", "more_body": False}

        return receive_once
    chunks = aiter(body)

    async def receive_stream() -> Message:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    return receive_stream


def _parse_query(raw: bytes) -> dict[str, str]:
    """Query parameters as text, the last value winning (as Swift's ``req.params``);
    bytes that are not UTF-8 survive as surrogates, for the readers that must reject them
    (``listing.listing_params`` answers 400 naming the parameter)."""
    text = raw.decode("latin-1") if raw else ""
    return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8",
                          errors="surrogateescape"))


Body = bytes | AsyncIterable[bytes] | None


@dataclass
class Response:
    """A response the controllers build; ``send`` streams it out."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Body = None
    content_length: int | None = None
    on_close: Callable[[], Awaitable[None]] | None = None

    async def send(self, scope: Scope, send: Send) -> None:
        head_only = scope.get("method") == "HEAD"
        headers = dict(self.headers)
        if isinstance(self.body, bytes | bytearray):
            headers.setdefault("Content-Length", str(len(self.body)))
        elif self.body is None:
            headers.setdefault("Content-Length", "0" if self.content_length is None
                               else str(self.content_length))
        elif self.content_length is not None:
            headers["Content-Length"] = str(self.content_length)
        if self.status in (204, 304):
            headers["Content-Length"] = "0"
        raw = [(k.lower().encode("latin-1"), _header_value(v)) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        try:
            await self._send_body(send, head_only)
        finally:
            if self.on_close is not None:
                await self.on_close()

    async def _send_body(self, send: Send, head_only: bool) -> None:
        body = self.body
        if head_only or body is None or self.status in (204, 304):
            await send({"type": "http.response.body", "body": b""})
            if body is not None and not isinstance(body, bytes | bytearray):
                await _close(body)
            return
        if isinstance(body, bytes | bytearray):
            await send({"type": "http.response.body", "body": bytes(body)})
            return
        async for chunk in body:
            # A body that knows it just gave its last chunk (``exhausted``: a storage body
            # read whole ahead) ends the response with it: one message fewer to relay.
            last = getattr(body, "exhausted", False)
            if chunk or last:
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            if last:
                return
        await send({"type": "http.response.body", "body": b""})


def _header_value(value: str) -> bytes:
    """Header values travel as the bytes the client sent (Swift's WSGI strings, decoded as
    latin-1 on the way in); a real non-latin-1 string goes out as UTF-8, as Swift sends it."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def wsgi_to_str(value: str) -> str:
    """A header value as text: the client's bytes read as UTF-8 (unchanged if they aren't)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def str_to_wsgi(value: str) -> str:
    """Text as a header value (UTF-8 bytes seen as latin-1)."""
    return value.encode("utf-8").decode("latin-1")


async def _close(body: Any) -> None:
    closer = getattr(body, "aclose", None)
    if closer is not None:
        await closer()
