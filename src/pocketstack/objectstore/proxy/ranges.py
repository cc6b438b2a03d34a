"""Range requests, multipart/byteranges framing and conditional requests, as Swift's swob.

Ranges are **half-open**: ``(start, stop)`` covers bytes ``start .. stop - 1``, so a range's
size is ``stop - start`` and ``data[start:stop]`` is its body (swob's convention too).
``Content-Range`` shows the inclusive last byte: ``bytes {start}-{stop - 1}/{length}``.

What a ``Range`` header leads to (`parse_range`)::

    absent, or syntactically invalid anywhere    None -> 200 with the whole body (RFC 7233)
    some satisfiable range                       [(start, stop), ...] -> 206
    none satisfiable, or "egregious"             RangeNotSatisfiable -> 416,
                                                 Content-Range: bytes */<length>
    a suffix range ("bytes=-N") of a 0-byte body None -> 200 (nothing to point at)

"Egregious" (RFC 7233 §6.1, swob's limits): more than 50 ranges, more than 2 overlapping
pairs, or 8 or more ranges out of ascending order.

Conditional requests (`evaluate_conditions`) follow swob's order for GET/HEAD: If-None-Match
(304), If-Match (412), If-Match ``*`` on a missing object (412), If-Modified-Since (304),
If-Unmodified-Since (412). Dates compare at whole seconds against the Last-Modified the
client saw, i.e. the object's timestamp rounded *up* (`http_date`).
"""

from __future__ import annotations

import calendar
import datetime
import email.utils
import math
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Final

from pocketstack.objectstore.constraints import ConstraintError

MAX_RANGES: Final = 50
MAX_RANGE_OVERLAPS: Final = 2
MAX_NONASCENDING_RANGES: Final = 8

RANGE_NOT_SATISFIABLE_BODY: Final = (
    b"<html><h1>Requested Range Not Satisfiable</h1>"
    b"<p>The Range requested is not available.</p></html>"
)
"""swob's default body for a 416 (Content-Type ``text/html; charset=UTF-8``)."""

ByteRange = tuple[int, int]
RangeSpec = tuple[int | None, int | None]
"""One byte-range-spec as written: (first, last) inclusive; (None, N) is the suffix ``-N``."""
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class RangeNotSatisfiable(Exception):
    """Answer 416 with ``Content-Range: bytes */<length>`` and `RANGE_NOT_SATISFIABLE_BODY`."""

    status: Final = 416

    def __init__(self, length: int) -> None:
        super().__init__(f"no satisfiable range in {length} bytes")
        self.length = length

    @property
    def content_range(self) -> str:
        return f"bytes */{self.length}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Range": self.content_range}


# -- Range -----------------------------------------------------------------------------


def _digits(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _parse_spec(spec: str) -> RangeSpec | None:
    first_text, dash, last_text = spec.partition("-")
    if not dash:
        return None
    first = _digits(first_text) if first_text else None
    last = _digits(last_text) if last_text else None
    if (first_text and first is None) or (last_text and last is None):
        return None
    if first is None and last is None:
        return None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def parse_range_header(header: str | None) -> list[RangeSpec] | None:
    """The byte-range-specs of a Range header, or None if it must be ignored.

    As swob: spaces are dropped, the unit must be ``bytes`` (any case), and one malformed
    spec (no ``-``, non-digits, ``first > last``, a bare ``-``, an empty item) invalidates
    the whole header. Only ASCII digits are numbers.
    """
    if not header:
        return None
    value = header.replace(" ", "")
    if not value.lower().startswith("bytes="):
        return None
    specs: list[RangeSpec] = []
    for item in value[len("bytes="):].split(","):
        spec = _parse_spec(item)
        if spec is None:
            return None
        specs.append(spec)
    return specs


def _resolve(spec: RangeSpec, length: int) -> ByteRange | None:
    """One spec against a body of ``length`` bytes (None: unsatisfiable, skip it)."""
    first, last = spec
    if first is None:
        assert last is not None
        if last == 0:
            return None
        return (max(length - last, 0), length)
    if first >= length:
        return None
    return (first, length if last is None else min(last + 1, length))


def _overlap(a: ByteRange, b: ByteRange) -> bool:
    """swob's test: an end point strictly inside the other range (equal ranges don't count)."""
    (s1, e1), (s2, e2) = a, b
    return s1 < s2 < e1 or s1 < e2 < e1 or s2 < s1 < e2 or s2 < e1 < e2


def is_egregious(ranges: list[ByteRange]) -> bool:
    """Too many, too overlapping, or too disordered to serve (RFC 7233 §6.1)."""
    if len(ranges) > MAX_RANGES:
        return True
    overlaps = 0
    for a, b in combinations(ranges, 2):
        if _overlap(a, b):
            overlaps += 1
            if overlaps > MAX_RANGE_OVERLAPS:
                return True
    ascending = all(a <= b for a, b in zip(ranges, ranges[1:], strict=False))
    return not ascending and len(ranges) >= MAX_NONASCENDING_RANGES


def parse_range(header: str | None, length: int) -> list[ByteRange] | None:
    """The half-open ranges of ``length`` bytes to send, in request order; see the module
    docstring for None and `RangeNotSatisfiable`. Unsatisfiable specs among satisfiable ones
    are dropped; overlapping ranges are kept as asked (no coalescing, as swob)."""
    specs = parse_range_header(header)
    if specs is None:
        return None
    ranges = [r for r in (_resolve(spec, length) for spec in specs) if r is not None]
    if not ranges or is_egregious(ranges):
        raise RangeNotSatisfiable(length)
    if length == 0:
        return None
    return ranges


def content_range(start: int, stop: int, length: int) -> str:
    """``Content-Range`` of the half-open range ``(start, stop)`` of ``length`` bytes."""
    return f"bytes {start}-{stop - 1}/{length}"


# -- multipart/byteranges --------------------------------------------------------------

PART_END: Final = b"\r\n"
"""Written after each part's data (before the next ``--boundary``)."""


@dataclass(frozen=True)
class MultipartPart:
    """One part: ``header`` bytes, then body bytes ``start .. stop - 1``, then `PART_END`."""

    header: bytes
    start: int
    stop: int


@dataclass(frozen=True)
class MultipartBody:
    """The plan of a multi-range 206 body: headers to send, then parts and the trailer."""

    content_type: str
    """``multipart/byteranges;boundary=<boundary>`` (no space, as Swift)."""
    parts: tuple[MultipartPart, ...]
    trailer: bytes
    content_length: int


def new_boundary() -> str:
    """A fresh boundary: 32 random hex digits, as swob's."""
    return f"{secrets.randbits(128):032x}"


def _part_header(boundary: bytes, content_type: bytes, cr: str) -> bytes:
    return b"".join(
        [b"--", boundary, b"\r\nContent-Type: ", content_type,
         b"\r\nContent-Range: ", cr.encode("ascii"), b"\r\n\r\n"]
    )


def multipart_byteranges(
    ranges: Iterable[ByteRange], length: int, content_type: str, boundary: str
) -> MultipartBody:
    """Frame ``ranges`` of a ``length``-byte body of type ``content_type`` exactly as Swift::

        --B\\r\\nContent-Type: T\\r\\nContent-Range: bytes a-b/L\\r\\n\\r\\n<data>\\r\\n
        ... one such part per range ...
        --B--
    """
    mark = boundary.encode("ascii")
    try:  # a wire string (the client's bytes as latin-1), as the object stores it
        kind = content_type.encode("latin-1")
    except UnicodeEncodeError:
        kind = content_type.encode("utf-8")
    parts = tuple(
        MultipartPart(_part_header(mark, kind, content_range(s, e, length)), s, e)
        for s, e in ranges
    )
    trailer = b"--" + mark + b"--"
    size = sum(len(p.header) + (p.stop - p.start) + len(PART_END) for p in parts)
    return MultipartBody(
        content_type=f"multipart/byteranges;boundary={boundary}",
        parts=parts,
        trailer=trailer,
        content_length=size + len(trailer),
    )


def multipart_content_length(
    ranges: Iterable[ByteRange], length: int, content_type: str, boundary: str
) -> int:
    """The Content-Length of `multipart_byteranges`' body (for HEAD-like uses)."""
    return multipart_byteranges(ranges, length, content_type, boundary).content_length


async def stream_multipart(
    body: MultipartBody, read_range: Callable[[int, int], AsyncIterable[bytes]]
) -> AsyncIterator[bytes]:
    """Yield the whole multipart body; ``read_range(start, stop)`` streams one range's data."""
    for part in body.parts:
        yield part.header
        async for chunk in read_range(part.start, part.stop):
            yield chunk
        yield PART_END
    yield body.trailer


# -- conditional requests --------------------------------------------------------------


def http_date(ts: float) -> str:
    """``Last-Modified`` for a timestamp: RFC 7231 date, rounded *up* to the second."""
    return email.utils.formatdate(math.ceil(ts), usegmt=True)


def parse_http_date(value: str | None) -> int | None:
    """Epoch seconds of an HTTP date (RFC 1123, RFC 850 or asctime), None if unparsable.

    Like swob, a zone offset in the text is ignored (HTTP dates are always GMT).
    """
    if not value:
        return None
    try:
        parsed = email.utils.parsedate(value)
        if parsed is None:
            return None
        moment = datetime.datetime(*parsed[:6], tzinfo=datetime.UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    return calendar.timegm(moment.timetuple())


def normalize_etag(tag: str) -> str:
    """An entity tag without its surrounding double quotes."""
    if len(tag) >= 2 and tag.startswith('"') and tag.endswith('"'):
        return tag[1:-1]
    return tag


def parse_etags(value: str) -> frozenset[str]:
    """The tags of an If-Match / If-None-Match value (``*`` kept as is; weak tags not
    understood, as swob)."""
    return frozenset(normalize_etag(tag.strip()) for tag in value.split(",") if tag.strip())


def etag_matches(tags: frozenset[str], etag: str) -> bool:
    """Is ``etag`` (quoted or not) among ``tags``, or ``tags`` ``*``?"""
    return "*" in tags or normalize_etag(etag) in tags


def _lower(headers: Headers) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name.lower(): value for name, value in items}


def _read_conditions(
    h: dict[str, str], etag: str | None, last_modified: float | None
) -> int | None:
    none_match, match = h.get("if-none-match"), h.get("if-match")
    if etag and none_match is not None and etag_matches(parse_etags(none_match), etag):
        return 304
    if etag and match is not None and not etag_matches(parse_etags(match), etag):
        return 412
    if etag is None and match is not None and "*" in parse_etags(match):
        return 412
    if last_modified is None:
        return None
    seconds = math.ceil(last_modified)
    since = parse_http_date(h.get("if-modified-since"))
    if since is not None and seconds <= since:
        return 304
    unmodified = parse_http_date(h.get("if-unmodified-since"))
    if unmodified is not None and seconds > unmodified:
        return 412
    return None


def evaluate_conditions(
    method: str, headers: Headers, etag: str | None, last_modified: float | None
) -> int | None:
    """304, 412 or None (go on) for a request on an object, as Swift.

    ``etag`` is the object's ETag and ``last_modified`` its timestamp in seconds; pass
    ``etag=None`` when the object does not exist. GET and HEAD run the swob checks of the
    module docstring. PUT only honours ``If-None-Match`` (412 when the object exists and the
    value is ``*`` or its ETag; see `check_put_if_none_match` for the 400). Swift ignores
    preconditions on POST and DELETE, and so does this.
    """
    h = _lower(headers)
    method = method.upper()
    if method in ("GET", "HEAD"):
        return _read_conditions(h, etag, last_modified)
    if method == "PUT":
        none_match = h.get("if-none-match")
        if etag and none_match is not None and etag_matches(parse_etags(none_match), etag):
            return 412
    return None


def check_put_if_none_match(headers: Headers) -> None:
    """Swift's proxy takes only ``If-None-Match: *`` on an object PUT: else 400."""
    none_match = _lower(headers).get("if-none-match")
    if none_match is not None and "*" not in parse_etags(none_match):
        raise ConstraintError(400, "If-None-Match only supports *")
