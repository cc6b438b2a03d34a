"""HTTP/1.1 on the wire as Swift's (eventlet) server speaks it, on uvicorn's httptools protocol.

Swift clients, and Swift's functional tests, rely on four things uvicorn does otherwise:

- **Raw bytes in the request target, any method.** Clients may send names unquoted
  (``PUT /v1/AUTH_p/c/\\xe2\\x98\\x83``, even invalid UTF-8 to get Swift's 412), and any
  method token (Swift answers ``LICK`` with 405); llhttp rejects both with a 400 before the
  app sees them. `SwiftHttpProtocol` percent-encodes the bytes llhttp refuses (above 0x7E,
  controls, ``#``) in each request line before parsing, which keeps the path's meaning
  (the proxy percent-decodes it anyway), and parses an unusual method as ``GET``, giving
  the app the real one.
- **Title-Cased header names** (``X-Object-Meta-Color``, ``Etag``), as swob sends them;
  uvicorn writes every name lower-cased. The response head is rewritten on its way out.
- **A response that comes before the request's body** (411 for a PUT without a length,
  whose body then reads as a malformed next request; 501 for ``Transfer-Encoding:
  gzip,chunked``, whose body is not chunked): eventlet answers the request, then the
  garbage; uvicorn's parser fails first and its 400 overtakes the answer. Here a parse
  error while a request is in flight lets that request be answered, then closes the
  connection; if the error broke its body off, the body ends there with `BODY_ERROR` set
  in the scope, so that a reader does not take it for a complete body (the proxy answers
  499, as Swift does for a chunked body that breaks off).
- **Connection: keep-alive** is echoed to a client that asked for it, in the head's
  rewrite.

Each response is written through its own `_ResponseWriter`, which also holds the head
back until the body's first bytes (or the response's end), so that a small response
leaves in one ``send``, as eventlet's server sends it.

Only request lines that start a read are rewritten: a pipelined request line that
arrives in the same read as the end of the previous request is parsed as sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, cast

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_ERROR = "pocketstack.body_error"
METHOD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ")
PARSED_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"COPY"})
REFUSED = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff#]")
HEAD_END = b"\r\n\r\n"


def quote_request_line(data: bytes) -> tuple[bytes, bool]:
    """``data`` with the bytes llhttp refuses percent-encoded up to the end of the request
    line; whether the line goes on past ``data``."""
    end = data.find(b"\n")
    line, rest = (data, b"") if end < 0 else (data[:end + 1], data[end + 1:])
    return REFUSED.sub(lambda m: b"%%%02X" % m.group()[0], line) + rest, end < 0


def stand_in_method(data: bytes) -> tuple[bytes, str | None]:
    """A request line with a method llhttp may not take (or treats specially, as CONNECT)
    rewritten to ``GET``; the real method, or None if it is left as is."""
    match = METHOD.match(data)
    if match is None or match.group(1) in PARSED_METHODS:
        return data, None
    return b"GET" + data[match.end(1):], match.group(1).decode("ascii")


def title_case_head(data: bytes, *, keep_alive: bool = False) -> bytes:
    """A response head (and whatever follows it) with Title-Cased header names, and
    ``Connection: keep-alive`` added when ``keep_alive`` (the client asked for it); a
    ``Connection: close`` wins over keep-alive."""
    head, sep, rest = data.partition(HEAD_END)
    status, _, fields = head.partition(b"\r\n")
    out = [status]
    close = False
    for line in fields.split(b"\r\n") if fields else ():  # a loop: every response passes
        name, _, value = line.partition(b":")
        name = name.strip().title()
        if name == b"Connection" and b"close" in value.lower():
            close = True
        out.append(name + b":" + value)
    if keep_alive:
        out.append(b"Connection: keep-alive")
    if close:
        out = [line for line in out if not (line.startswith(b"Connection:")
                                            and b"keep-alive" in line.lower())]
    return b"\r\n".join(out) + sep + rest


def _is_final_head(data: bytes) -> bool:
    return data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 100 ")


class _Heads:
    """The connection's transport for what the protocol writes itself (its 400s), with
    the head Title-Cased."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        self._transport.write(title_case_head(data) if _is_final_head(data) else data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _ResponseWriter:
    """One request's view of the transport. Its response's head is Title-Cased (with the
    keep-alive echo) and held back until the first body bytes or the response's end, then
    sent with them: one ``send`` for a small response instead of two."""

    __slots__ = ("_transport", "_keep_alive", "_head", "_head_seen", "_on_response")

    def __init__(self, transport: asyncio.Transport, keep_alive: bool,
                 on_response: Callable[[], None]) -> None:
        self._transport = transport
        self._keep_alive = keep_alive
        self._head: bytes | None = None
        self._head_seen = False
        self._on_response = on_response

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif not self._head_seen and _is_final_head(data):
            self._head_seen = True
            self._head = title_case_head(data, keep_alive=self._keep_alive)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def response_complete(self) -> None:
        self.flush()  # a HEAD's or a bodiless response's head
        self._on_response()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _asks_keep_alive(scope: Scope) -> bool:
    if scope.get("http_version") != "1.1":
        return False
    for name, value in scope.get("headers", ()):
        if name == b"connection" and b"keep-alive" in value.lower():
            return True
    return False


class SwiftHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with eventlet's manners (see the module docstring)."""

    _at_line_start = True   # the next bytes begin or continue a request line
    _line_open = False      # ... continue it
    _between = True         # the last request was parsed to its end
    _method: str | None = None  # the real method of the request line parsed as GET

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses (common.eventloop)
        self._raw_transport = cast(asyncio.Transport, transport)
        super().connection_made(_Heads(transport))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._line_open = self._at_line_start and self._line_open
        if self._at_line_start:
            if not self._line_open:
                data, self._method = stand_in_method(data)
            data, self._line_open = quote_request_line(data)
        super().data_received(data)
        self._at_line_start = self._line_open or self._between

    def on_headers_complete(self) -> None:
        method, self._method = self._method, None
        previous = self.cycle
        super().on_headers_complete()  # the app's task starts later, on the loop
        if method is not None:
            self.scope["method"] = method
        cycle = self.cycle
        if cycle is not None and cycle is not previous:
            writer = _ResponseWriter(self._raw_transport, _asks_keep_alive(self.scope),
                                     cycle.on_response)
            cycle.transport = writer  # type: ignore[assignment]
            cycle.on_response = writer.response_complete

    def on_message_begin(self) -> None:
        self._between = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._between = True

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            super().send_400_response(msg)
            return
        cycle.keep_alive = False  # answer the request in flight first, then hang up
        self.flow.pause_reading()
        if cycle.more_body:  # its body broke off
            cycle.scope[BODY_ERROR] = msg  # type: ignore[literal-required]
            cycle.more_body = False
            cycle.message_event.set()
