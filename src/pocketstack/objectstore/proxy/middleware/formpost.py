"""FormPost: a browser's ``multipart/form-data`` POST to a container (or prefix) URL becomes
one object PUT per file, signed with the TempURL keys (Swift's ``formpost`` middleware,
pre-auth).

The form's fields come before its files::

    redirect        where to send the browser afterwards (303 with ``status`` and
                    ``message`` added to its query); without it the answer is text
    max_file_size   largest file, in bytes
    max_file_count  most files
    expires         Unix time the form is valid to
    signature       HMAC of "path\\nredirect\\nmax_file_size\\nmax_file_count\\nexpires"
                    (the URL's path, decoded), hex or ``<digest>:<base64>``
    x_delete_at, x_delete_after, content-type, content-encoding (optional, per form or
                    per file part)

Each file is stored at the URL's path plus its file name, streamed from the request body
straight into the object PUT (never held whole); a file larger than ``max_file_size`` stops
the PUT and nothing is stored. Fields after a file only apply to the files after them, as
in Swift. Errors use Swift's texts: ``FormPost: form expired``, ``invalid signature``,
``max_file_size exceeded``, ``max file count exceeded``, ``no files to process``.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from pocketstack.objectstore.constraints import ConstraintError
from pocketstack.objectstore.exceptions import (
    EXPLANATIONS,
    HTTPPreconditionFailed,
    HTTPRequestEntityTooLarge,
    HTTPUnauthorized,
    SwiftError,
    error_for_status,
    render,
)
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.middleware.signing import (
    allowed_digests,
    authorize_within,
    hmac_hex,
    parse_signature,
    same_signature,
    signing_keys,
)
from pocketstack.objectstore.proxy.pipeline import Handler, Middleware, read_body
from pocketstack.objectstore.proxy.request import Request, Response, str_to_wsgi
from pocketstack.objectstore.storage.exceptions import StorageError

# The longest field value kept (the rest is read and dropped), as Swift's MAX_VALUE_LENGTH.
MAX_VALUE_LENGTH = 4096
# The most header bytes one part may have (ours: Swift reads them without a bound).
MAX_PART_HEADER_BYTES = 65536
# How much of a failed PUT's answer is passed back to the browser.
MAX_SUBRESPONSE_BODY = 65536
# Headers of the form request an upload keeps (Swift's make_env list).
COPIED_HEADERS = ("user-agent", "host", "origin", "referer", "access-control-request-method")
ATTRIBUTES_RE = re.compile(r'(\w+)=(".*?"|[^";]+)(; ?|$)')
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")


class FormInvalid(Exception):
    """400 ``FormPost: <message>``."""


class FormUnauthorized(Exception):
    """401 ``FormPost: <Message Title-Cased>``."""


class MimeInvalid(Exception):
    """400 ``FormPost: invalid starting boundary``."""


def parse_content_disposition(header: str) -> tuple[str, dict[str, str]]:
    """``form-data; name="f"; filename="a.txt"`` -> ("form-data", {"name": "f", ...})
    (Swift's ``parse_content_disposition``, also used for ``Content-Type``)."""
    attributes: dict[str, str] = {}
    rest = ""
    if ";" in header:
        header, rest = (x.strip() for x in header.split(";", 1))
    while (match := ATTRIBUTES_RE.match(rest)) is not None and match.group(0):
        rest = rest[len(match.group(0)):]
        attributes[match.group(1)] = match.group(2).strip('"')
    return header, attributes


# -- the multipart body, as it streams in ------------------------------------------------------
class MultipartReader:
    """The parts of a ``multipart/form-data`` body, read as it arrives (Swift's
    ``iter_multipart_mime_documents``): ``start``, then ``next_part`` for each part's
    headers and ``read``/``chunks`` for its data. Memory: the buffer holds about one
    chunk of the client's body, whatever the size of a part."""

    def __init__(self, source: AsyncIterator[bytes], boundary: bytes) -> None:
        self._source = source
        self._boundary = b"--" + boundary
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray()
        self._eof = False
        self._part_done = True
        self._last = False

    async def _fill(self) -> bool:
        """One more piece of the body into the buffer; False at its end."""
        if self._eof:
            return False
        try:
            self._buffer += await anext(self._source)
        except StopAsyncIteration:
            self._eof = True
            return False
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def start(self) -> None:
        """Read up to the first boundary (blank lines before it are allowed)."""
        line = await self._readline(len(self._boundary) + 2)
        while line == b"\r\n":
            line = await self._readline(len(self._boundary) + 2)
        if line.strip() != self._boundary:
            raise MimeInvalid("invalid starting boundary")
        self._part_done, self._last = True, False

    async def _readline(self, limit: int) -> bytes:
        while True:
            newline = self._buffer.find(b"\n", 0, limit)
            if newline != -1:
                return self._take(newline + 1)
            if len(self._buffer) >= limit or not await self._fill():
                return self._take(limit)

    async def next_part(self) -> Message | None:
        """The next part's headers (None after the last part)."""
        while not self._part_done:  # the rest of the current part, unread
            await self.read(65536)
        if self._last:
            return None
        self._part_done = False
        return await self._read_headers()

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the current part's data; b"" at its end."""
        delimiter = self._delimiter
        while not self._part_done:
            found = self._buffer.find(delimiter)
            if found > 0:
                return self._take(min(found, size))
            if found == 0:
                if len(self._buffer) < len(delimiter) + 2 and await self._fill():
                    continue  # the two bytes after the delimiter say if more parts follow
                del self._buffer[:len(delimiter)]
                self._last = self._take(2) == b"--"
                self._part_done = True
                break
            safe = len(self._buffer) - len(delimiter) + 1  # may hold a partial delimiter
            if safe > 0:
                return self._take(min(safe, size))
            if not await self._fill():  # no closing delimiter: the rest is the last part
                if self._buffer:
                    return self._take(min(len(self._buffer), size))
                self._part_done = self._last = True
        return b""

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        while chunk := await self.read(size):
            yield chunk

    async def read_value(self, limit: int) -> bytes:
        """A field's value: its first ``limit`` bytes, the rest read and dropped."""
        value = bytearray()
        async for chunk in self.chunks(65536):
            if len(value) < limit:
                value += chunk[:limit - len(value)]
        return bytes(value)

    async def _read_headers(self) -> Message:
        block = bytearray()
        while (end := _header_end(block)) == -1:
            if len(block) > MAX_PART_HEADER_BYTES:
                raise FormInvalid("MIME part headers too long")
            chunk = await self.read(65536)
            if not chunk:
                end = len(block)
                break
            block += chunk
        self._buffer[0:0] = block[end:]  # the start of the part's data: back in front
        text = "".join(_decode_line(line) for line in bytes(block[:end]).splitlines(True))
        return HeaderParser().parsestr(text)


def _header_end(block: bytearray) -> int:
    """Where a part's headers end (just after the first empty line), or -1."""
    start = 0
    while (newline := block.find(b"\n", start)) != -1:
        if bytes(block[start:newline + 1]) in (b"\r\n", b"\n"):
            return newline + 1
        start = newline + 1
    return -1


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


# -- uploads -----------------------------------------------------------------------------------
@dataclass
class Upload:
    """What one file's PUT answered."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Cap:
    limit: int
    received: int = 0
    exceeded: bool = False


async def _capped(chunks: AsyncIterator[bytes], cap: _Cap) -> AsyncIterator[bytes]:
    """The file's data, broken off once it passes ``max_file_size``."""
    async for chunk in chunks:
        cap.received += len(chunk)
        if cap.received > cap.limit:
            cap.exceeded = True
            raise HTTPRequestEntityTooLarge("max_file_size exceeded")
        yield chunk


def _int_field(attributes: dict[str, str], name: str, problem: str) -> int:
    try:
        return int(attributes.get(name) or 0)
    except ValueError as exc:
        raise FormInvalid(problem) from exc


def _status_line(status: int) -> str:
    reason = EXPLANATIONS[status][0] if status in EXPLANATIONS else _phrase(status)
    return f"{status} {reason}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _as_swift_error(exc: Exception) -> SwiftError:
    if isinstance(exc, SwiftError):
        return exc
    if isinstance(exc, ConstraintError):
        return error_for_status(exc.status, exc.message, content_type=exc.content_type)
    assert isinstance(exc, StorageError)
    return error_for_status(exc.status)


def _safe_location(url: str) -> str:
    """A redirect as a header value: control characters percent-encoded."""
    return "".join(quote(c) if ord(c) < 0x20 or ord(c) == 0x7F else c
                   for c in str_to_wsgi(url))


def _header_value(text: str) -> str:
    """A field's text as a header value: folded or embedded line breaks (and other control
    characters) become spaces, so that no value can smuggle a header into what is stored
    and later sent back."""
    return str_to_wsgi(CONTROL_CHARS.sub(" ", text))


class FormPost(Middleware):
    name = "formpost"

    def __init__(self, ctx: ProxyContext) -> None:
        super().__init__(ctx)
        self.digests = allowed_digests(ctx.settings.tempurl_allowed_digests)

    def info(self) -> dict[str, Any]:
        return self.digests.info()

    def applies(self, req: Request) -> bool:
        return req.method == "POST"

    async def handle(self, req: Request, next: Handler) -> Response:
        if req.method != "POST":
            return await next(req)
        ctype, attrs = parse_content_disposition(req.headers.get("content-type") or "")
        if ctype != "multipart/form-data" or "boundary" not in attrs:
            return await next(req)
        try:
            return await self._translate(req, next, attrs["boundary"])
        except MimeInvalid:
            return _text(400, "FormPost: invalid starting boundary")
        except FormInvalid as exc:
            return _text(400, f"FormPost: {exc}")
        except FormUnauthorized as exc:
            raise HTTPUnauthorized(f"FormPost: {str(exc).title()}",
                                   content_type="text/html; charset=UTF-8") from exc

    async def _translate(self, req: Request, next: Handler, boundary: str) -> Response:
        """Upload each file of the form; the answer for the browser."""
        keys = await self._keys(req)
        reader = MultipartReader(req.body(), boundary.encode("latin-1"))
        await reader.start()
        attributes: dict[str, str] = {}
        upload: Upload | None = None
        message, files = "", 0
        while (headers := await reader.next_part()) is not None:
            disposition, attrs = parse_content_disposition(headers.get("content-disposition",
                                                                       ""))
            if disposition != "form-data" or not attrs.get("filename"):
                value = await reader.read_value(MAX_VALUE_LENGTH)
                if "name" in attrs:
                    attributes[attrs["name"].lower()] = value.decode(
                        "utf-8", "replace").rstrip("\r\n-")
                continue
            files += 1
            if files > _int_field(attributes, "max_file_count",
                                  "max_file_count not an integer"):
                upload, message = Upload(400), "max file count exceeded"
                break
            upload = await self._upload(req, next, _file_fields(attributes, attrs, headers),
                                        reader, keys)
            if not upload.ok:
                break
        if upload is None:
            upload, message = Upload(400), "no files to process"
        return _answer(upload, message, attributes.get("redirect"))

    async def _keys(self, req: Request) -> list[bytes]:
        """The account's and container's keys; none unless the path names a container."""
        if req.version not in ("v1", "v1.0") or not req.account or not req.container:
            return []
        return [key.secret for key in
                await signing_keys(self.ctx, req.account, req.container)]

    async def _upload(self, req: Request, next: Handler, fields: dict[str, str],
                      reader: MultipartReader, keys: list[bytes]) -> Upload:
        """One file's PUT, once the form's signature holds for it."""
        if not keys:
            raise FormUnauthorized("invalid signature")
        cap = _Cap(_int_field(fields, "max_file_size", "max_file_size not an integer"))
        headers = self._upload_headers(req, fields)
        self._check_signature(req, fields, keys)
        path = req.path
        if not path.endswith("/") and path.count("/") < 4:
            path += "/"
        path += fields["filename"] or "filename"
        body = _capped(reader.chunks(self.ctx.settings.chunk_size), cap)
        try:
            if "\x00" in path:
                raise HTTPPreconditionFailed("Invalid UTF8 or contains NULL")
            sub = req.subrequest("PUT", path, headers=headers, body=body, source="FP")
            sub.authorize = authorize_within(req.account or "")
            response = await next(sub)
            answer = Upload(response.status, dict(response.headers),
                            await _small_body(response))
        except (SwiftError, ConstraintError, StorageError) as exc:
            error = _as_swift_error(exc)
            answer = Upload(error.status, {}, bytes(render(error, req.scope).body))
        if cap.exceeded:
            raise FormInvalid("max_file_size exceeded")
        return answer

    @staticmethod
    def _upload_headers(req: Request, fields: dict[str, str]) -> dict[str, str]:
        headers = {name: req.headers[name] for name in COPIED_HEADERS if name in req.headers}
        headers["user-agent"] = f"{headers.get('user-agent', '')} FormPost".strip()
        headers["transfer-encoding"] = "chunked"
        for name, problem in (("x_delete_at", "Unix timestamp required."),
                              ("x_delete_after", "Number of seconds required.")):
            if name in fields:
                try:
                    value = int(fields[name])
                except ValueError as exc:
                    raise FormInvalid(f"{name} not an integer: {problem}") from exc
                headers[name.replace("_", "-")] = str(value)
        if "content-type" in fields:
            headers["content-type"] = _header_value(fields["content-type"]
                                                    or "application/octet-stream")
        if "content-encoding" in fields:
            headers["content-encoding"] = _header_value(fields["content-encoding"])
        return headers

    def _check_signature(self, req: Request, fields: dict[str, str], keys: list[bytes]
                         ) -> None:
        """401 unless the form is unexpired and signed with one of ``keys``."""
        try:
            if int(fields.get("expires") or 0) < time.time():
                raise FormUnauthorized("form expired")
        except ValueError as exc:
            raise FormInvalid("expired not an integer") from exc
        message = "\n".join([req.path, fields.get("redirect") or "",
                             fields.get("max_file_size") or "0",
                             fields.get("max_file_count") or "0",
                             fields.get("expires") or "0"]).encode("utf-8", "surrogateescape")
        try:
            digest, signature = parse_signature(fields.get("signature", ""))
        except ValueError as exc:
            raise FormUnauthorized("invalid signature") from exc
        if digest not in self.digests.allowed:
            raise FormUnauthorized("invalid signature")
        valid = [same_signature(signature, hmac_hex(key, message, digest)) for key in keys]
        if not any(valid):
            raise FormUnauthorized("invalid signature")


def _file_fields(attributes: dict[str, str], attrs: dict[str, str], headers: Message
                 ) -> dict[str, str]:
    """The form's fields so far, with this file's name and its part's type and encoding
    (unless the form sets them for every file)."""
    fields = dict(attributes)
    fields["filename"] = attrs["filename"] or "filename"
    if "content-type" not in attributes and "content-type" in headers:
        fields["content-type"] = headers["content-type"] or "application/octet-stream"
    if "content-encoding" not in attributes and "content-encoding" in headers:
        fields["content-encoding"] = headers["content-encoding"]
    return fields


async def _small_body(response: Response) -> bytes:
    try:
        return await read_body(response, MAX_SUBRESPONSE_BODY)
    except ValueError:
        return b""


def _text(status: int, body: str) -> Response:
    return Response(status, {"Content-Type": "text/plain"}, body.encode("utf-8"))


def _answer(upload: Upload, message: str, redirect: str | None) -> Response:
    """Swift's answer to a form: text with the status (and message), the failed PUT's own
    body, or a 303 to ``redirect`` with ``status`` and ``message`` in its query."""
    headers = {k: v for k, v in upload.headers.items()
               if k.lower().startswith("access-control")}
    status_line = _status_line(upload.status)
    if not redirect:
        text = status_line + (f"\r\nFormPost: {message.title()}" if message else "")
        body = text.encode("utf-8")
        if not upload.ok and upload.body:
            body = upload.body
        return Response(upload.status, {**headers, "Content-Type": "text/plain"}, body)
    location = redirect + ("&" if "?" in redirect else "?")
    location += f"status={quote(str(upload.status))}&message={quote(message)}"
    page = (f'<html><body><p><a href="{html.escape(location)}">Click to continue...</a>'
            "</p></body></html>")  # escaped (Swift's is not): the redirect may be unsigned
    return Response(303, {**headers, "Location": _safe_location(location)},
                    page.encode("utf-8"))
