"""Account and container listings at the API edge: parameters, format negotiation, bodies.

Pure functions for GET on an account or a container, exactly as Swift answers them:

- `listing_params` parses the query (``limit``, ``marker``, ``end_marker``, ``prefix``,
  ``delimiter``, ``path``, ``reverse``): 400 ``"<name>" parameter not valid UTF-8``, 412
  ``Maximum limit is 10000``. A ``limit`` that is not a plain number is ignored, as Swift.
  Delimiters of any length are accepted (Swift dropped its one-character rule).
- `listing_media_type` / `listing_format` pick the body type: a non-empty ``format`` query
  value wins (``json``, ``xml``, anything else is ``plain``); otherwise the ``Accept``
  header, by q-value (400 ``Invalid Accept header``, 406 when nothing offered fits).
- `render_object_listing` / `render_account_listing` build the body: JSON in Swift's key
  order, ASCII-escaped as Swift's ``json.dumps``; XML as Swift's ElementTree output; plain
  text one name per line. `listing_status` says 204 for an empty body (plain), else 200.

Call order that matches Swift's pipeline: `listing_media_type` first (its middleware runs
before the controller), then `listing_params`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_str
from typing import Final, Literal, NamedTuple, cast
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring

from pocketstack.objectstore.constraints import (
    DEFAULT_LIMITS,
    ConstraintError,
    Limits,
    clean_content_type,
    config_true_value,
)
from pocketstack.objectstore.storage.types import ListedObject, Subdir
from pocketstack.objectstore.timestamp import isoformat_of

ListingFormat = Literal["json", "xml", "plain"]
MediaType = Literal["text/plain", "application/json", "application/xml", "text/xml"]
LISTING_MEDIA_TYPES: Final[tuple[MediaType, ...]] = (
    "text/plain", "application/json", "application/xml", "text/xml",
)
"""What a listing can be served as, in Swift's order of preference."""
FORMAT2CONTENT_TYPE: Final[Mapping[str, MediaType]] = {
    "plain": "text/plain", "json": "application/json", "xml": "application/xml",
}

_HTML: Final = "text/html; charset=UTF-8"
NOT_ACCEPTABLE_BODY: Final = (
    "<html><h1>Not Acceptable</h1><p>The resource is not available in a format "
    "acceptable to your browser.</p></html>"
)
"""swob's default 406 body (Content-Type ``text/html; charset=UTF-8``)."""


# -- query parameters ------------------------------------------------------------------


def parse_query(query: bytes | str) -> dict[str, str]:
    """A raw query string as ``name -> value`` wire strings (latin-1; last value wins).

    Percent-escapes and ``+`` are decoded but the bytes are not yet read as UTF-8, so that
    `get_param` can reject invalid UTF-8 as Swift does (a server that decodes the query
    itself would have replaced it with U+FFFD already).
    """
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    return dict(parse_qsl(text, keep_blank_values=True, encoding="latin-1"))


def get_param(params: Mapping[str, str], name: str) -> str | None:
    """One query parameter as text: 400 ``"<name>" parameter not valid UTF-8`` if it isn't."""
    value = params.get(name)
    if not value:
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise ConstraintError(400, f'"{name}" parameter not valid UTF-8') from None


@dataclass(frozen=True)
class ListingParams:
    """A listing request's parameters (field names as the storage layer's ListingQuery)."""

    limit: int
    marker: str = ""
    end_marker: str = ""
    prefix: str | None = None
    delimiter: str | None = None
    path: str | None = None
    """Containers only: list the direct children of this pseudo-directory."""
    reverse: bool = False


_PARAM_ORDER: Final = ("marker", "end_marker", "prefix", "delimiter", "path", "format", "reverse")


def _limit(raw: str | None, maximum: int) -> int:
    if raw and raw.isascii() and raw.isdigit():
        limit = int(raw)
        if limit > maximum:
            raise ConstraintError(412, f"Maximum limit is {maximum}", content_type=_HTML)
        return limit
    return maximum


def listing_params(
    query: bytes | str | Mapping[str, str],
    *,
    target: Literal["account", "container"] = "container",
    limits: Limits = DEFAULT_LIMITS,
) -> ListingParams:
    """Parse and validate a listing query.

    ``query`` is the raw query string (``bytes`` or ``str``, still percent-encoded: its
    values are checked as UTF-8 here, 400 naming the first bad parameter), or a mapping of
    parameters a server has already decoded to text. ``limit`` defaults to the listing limit
    of ``target``; a larger one is 412. ``path`` is only read for containers (Swift's
    account server ignores it). Empty ``prefix`` and ``delimiter`` mean none; an empty
    ``path`` is kept (it lists the top level only).
    """
    names = (*_PARAM_ORDER, "limit")
    if isinstance(query, Mapping):
        values = {name: query.get(name) for name in names}
    else:
        wire = parse_query(query)
        values = {name: get_param(wire, name) for name in names}
    maximum = (
        limits.container_listing_limit if target == "container" else limits.account_listing_limit
    )
    return ListingParams(
        limit=_limit(values["limit"], maximum),
        marker=values["marker"] or "",
        end_marker=values["end_marker"] or "",
        prefix=values["prefix"] or None,
        delimiter=values["delimiter"] or None,
        path=values["path"] if target == "container" else None,
        reverse=config_true_value(values["reverse"]),
    )


# -- Accept negotiation ----------------------------------------------------------------

_TOKEN: Final = r'[^()<>@,;:\\"/\[\]?={}\x00-\x20\x7f]+'
_QUOTED: Final = r'"(?:[^"]|\\.)*"'
_PARAM: Final = rf"(?:\s*;\s*(?:{_TOKEN})\s*=\s*(?:{_TOKEN}|{_QUOTED}))"
_MEDIA_RANGE: Final = re.compile(rf"^\s*({_TOKEN})/({_TOKEN})({_PARAM}*?\s*)$")


def _quality(params: str) -> float:
    quality, seen_q = 1.0, False
    for param in (p.strip() for p in params.split(";")):
        if not param:
            continue
        name, value = param.split("=")  # ValueError unless exactly one "=", as swob
        if name.strip() == "q":
            if seen_q:
                raise ValueError('Multiple "q" params')
            seen_q, quality = True, float(value.strip())
    return quality


def accept_patterns(accept: str | None) -> list[str]:
    """The media ranges of an Accept header as regexes, best first (ValueError if malformed).

    Sorted by q-value, then exact types before wildcards; ties keep header order. Like swob,
    a range with ``q=0`` is still acceptable (just least preferred), and type names compare
    case-sensitively.
    """
    if not accept:
        return []
    ranked: list[tuple[str, float, bool]] = []
    for item in accept.split(","):
        match = _MEDIA_RANGE.match(item)
        if match is None:
            raise ValueError("Invalid accept header")
        kind, subtype, params = match.groups()
        pattern = "^{}/{}$".format(
            _TOKEN if kind == "*" else re.escape(kind),
            _TOKEN if subtype == "*" else re.escape(subtype),
        )
        ranked.append((pattern, _quality(params), "*" not in (kind, subtype)))
    ranked.sort(key=lambda entry: (entry[1], entry[2]), reverse=True)
    return [pattern for pattern, _q, _exact in ranked]


def best_match(accept: str | None, offers: Sequence[str]) -> str | None:
    """The first offer the best-ranked media range accepts (the first offer when no
    Accept is given); None when none fits; ValueError for a malformed header."""
    patterns = accept_patterns(accept)
    if not patterns:
        return offers[0] if offers else None
    for pattern in patterns:
        for offer in offers:
            if re.match(pattern, offer):
                return offer
    return None


def listing_media_type(query_format: str | bytes | None, accept: str | None) -> MediaType:
    """The Content-Type (without charset) of a listing, as Swift's listing_formats.

    ``query_format`` is the ``format`` query value: text, or raw bytes to be checked as
    UTF-8 (400 ``"format" parameter not valid UTF-8``). ConstraintError 400 ``Invalid Accept
    header``, 406 when the Accept header allows no listing type.
    """
    if isinstance(query_format, bytes):
        query_format = get_param({"format": query_format.decode("latin-1")}, "format")
    if query_format:
        accept = FORMAT2CONTENT_TYPE.get(query_format.lower(), "text/plain")
    try:
        chosen = best_match(accept, LISTING_MEDIA_TYPES)
    except ValueError:
        raise ConstraintError(400, "Invalid Accept header", content_type=_HTML) from None
    if chosen is None:
        raise ConstraintError(406, NOT_ACCEPTABLE_BODY, content_type=_HTML)
    return cast(MediaType, chosen)


def format_of(media_type: MediaType | ListingFormat) -> ListingFormat:
    """``json``, ``xml`` or ``plain`` for a listing media type (or a format name)."""
    if media_type in ("json", "xml", "plain"):
        return media_type
    if media_type.endswith("/xml"):
        return "xml"
    return "json" if media_type == "application/json" else "plain"


def listing_format(query_format: str | bytes | None, accept: str | None) -> ListingFormat:
    """`listing_media_type` reduced to the body format (``text/xml`` and
    ``application/xml`` are both ``xml``)."""
    return format_of(listing_media_type(query_format, accept))


# -- rows and bodies -------------------------------------------------------------------


class ObjectRow(NamedTuple):
    """One object of a container listing. ``last_modified`` is ISO (Timestamp.isoformat).

    A tuple rather than a dataclass: a listing renders up to 10 000 of them.
    """

    name: str
    hash: str
    bytes: int
    content_type: str
    last_modified: str
    extra: tuple[tuple[str, object], ...] = ()
    """More JSON keys after Swift's five (e.g. ``symlink_path``); not rendered in XML."""


@dataclass(frozen=True)
class SubdirRow:
    """A pseudo-directory rolled up by ``delimiter`` (``subdir`` ends with it)."""

    subdir: str


@dataclass(frozen=True)
class ContainerRow:
    """One container of an account listing."""

    name: str
    count: int
    bytes: int
    last_modified: str
    storage_policy: str | None = None
    """Newer Swift adds the policy name after ``last_modified``; None leaves it out."""


def _media(fmt: MediaType | ListingFormat) -> MediaType:
    return FORMAT2CONTENT_TYPE[fmt] if fmt in FORMAT2CONTENT_TYPE else cast(MediaType, fmt)


def content_type_of(fmt: MediaType | ListingFormat) -> str:
    """The Content-Type of a listing in ``fmt``."""
    return f"{_media(fmt)}; charset=utf-8"


def _object_record(row: ObjectRow | SubdirRow) -> dict[str, object]:
    if isinstance(row, SubdirRow):
        return {"subdir": row.subdir}
    name, etag, size, content_type, last_modified, extra = row
    record: dict[str, object] = {
        "bytes": size, "hash": etag, "name": name,
        "content_type": content_type, "last_modified": last_modified,
    }
    if extra:
        record.update(extra)
    return record


def _container_record(row: ContainerRow | SubdirRow) -> dict[str, object]:
    if isinstance(row, SubdirRow):
        return {"subdir": row.subdir}
    record: dict[str, object] = {
        "name": row.name, "count": row.count, "bytes": row.bytes,
        "last_modified": row.last_modified,
    }
    if row.storage_policy is not None:
        record["storage_policy"] = row.storage_policy
    return record


def _to_xml(document: Element) -> bytes:
    raw: bytes = tostring(document, encoding="UTF-8")
    body = raw.replace(
        b"<?xml version='1.0' encoding='UTF-8'?>",
        b'<?xml version="1.0" encoding="UTF-8"?>',
        1,
    )
    if not body.startswith(b"<?xml "):
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return body


def _container_xml(container_name: str, rows: Sequence[ObjectRow | SubdirRow]) -> bytes:
    document = Element("container", name=container_name)
    for row in rows:
        if isinstance(row, SubdirRow):
            entry = SubElement(document, "subdir", name=row.subdir)
            SubElement(entry, "name").text = row.subdir
            continue
        entry = SubElement(document, "object")
        for tag, value in (("name", row.name), ("hash", row.hash), ("bytes", row.bytes),
                           ("content_type", row.content_type),
                           ("last_modified", row.last_modified)):
            SubElement(entry, tag).text = str(value)
    return _to_xml(document)


def _account_xml(account_name: str, rows: Sequence[ContainerRow | SubdirRow]) -> bytes:
    document = Element("account", name=account_name)
    document.text = "\n"
    for row in rows:
        if isinstance(row, SubdirRow):
            entry = SubElement(document, "subdir", name=row.subdir)
        else:
            entry = SubElement(document, "container")
            for tag, value in _container_record(row).items():
                SubElement(entry, tag).text = str(value)
        entry.tail = "\n"
    return _to_xml(document)


def _plain(rows: Sequence[ObjectRow | ContainerRow | SubdirRow]) -> bytes:
    names = (row.subdir if isinstance(row, SubdirRow) else row.name for row in rows)
    return b"".join(name.encode("utf-8") + b"\n" for name in names)


def listed_size(content_type: str, size: int) -> tuple[str, int]:
    """A listed type without its ``;swift_bytes=N`` parameter, and N as the listed size
    when present (a static large object lists its total size, while the container's
    bytes used count its manifest: Swift's ``override_bytes_from_content_type``)."""
    cleaned = clean_content_type(content_type)
    if cleaned == content_type:
        return content_type, size
    value = content_type[len(cleaned) + 1:].strip().removeprefix("swift_bytes=")
    return cleaned, int(value) if value.isdigit() else size


def object_rows(entries: Iterable[ListedObject | Subdir]) -> list[ObjectRow | SubdirRow]:
    """The listing rows of what a container database listed."""
    rows: list[ObjectRow | SubdirRow] = []
    for entry in entries:
        if type(entry) is Subdir:
            rows.append(SubdirRow(subdir=entry.name))
            continue
        name, created_at, size, content_type, etag = entry
        if ";" in content_type:
            content_type, size = listed_size(content_type, size)
        rows.append(ObjectRow(name, etag, size, content_type, isoformat_of(created_at)))
    return rows


def render_stored_listing(
    container_name: str,
    entries: Sequence[ListedObject | Subdir],
    fmt: MediaType | ListingFormat,
) -> tuple[bytes, str]:
    """`render_object_listing` of `object_rows` (entries), byte for byte; a JSON listing
    is written straight from the entries (no row objects: at 10 000 rows, building them
    was a third of the listing's time)."""
    media = _media(fmt)
    if media != "application/json":
        return render_object_listing(container_name, object_rows(entries), media)
    parts = []
    for entry in entries:
        if type(entry) is ListedObject:
            name, created_at, size, content_type, etag = entry
            if ";" not in content_type and type(size) is int:
                try:
                    parts.append(_object_json(size, etag, name, content_type,
                                              isoformat_of(created_at)))
                    continue
                except TypeError:  # not a string: the general path renders it (or fails)
                    pass
        parts.extend(map(_row_json, object_rows([entry])))
    return f"[{', '.join(parts)}]".encode("ascii"), content_type_of(media)


def render_object_listing(
    container_name: str,
    rows: Sequence[ObjectRow | SubdirRow],
    fmt: MediaType | ListingFormat,
) -> tuple[bytes, str]:
    """(body, Content-Type) of a container listing in ``fmt`` (a format or media type)."""
    media = _media(fmt)
    if media.endswith("/xml"):
        body = _container_xml(container_name, rows)
    elif media == "application/json":
        body = _objects_json(rows)
    else:
        body = _plain(rows)
    return body, content_type_of(media)


def _objects_json(rows: Sequence[ObjectRow | SubdirRow]) -> bytes:
    """``json.dumps([_object_record(row) ...])``, byte for byte, at a third of its cost
    (listings of 10 000 rows): only the strings go through the JSON string encoder."""
    return f"[{', '.join(map(_row_json, rows))}]".encode("ascii")


def _row_json(row: ObjectRow | SubdirRow) -> str:
    """``json.dumps(_object_record(row))``."""
    if isinstance(row, SubdirRow) or row.extra or type(row.bytes) is not int:
        return json.dumps(_object_record(row))
    name, etag, size, content_type, last_modified, _ = row
    try:
        return _object_json(size, etag, name, content_type, last_modified)
    except TypeError:  # a value that is not a string (rows rebuilt by a middleware)
        return json.dumps(_object_record(row))


def _object_json(size: int, etag: str, name: str, content_type: str,
                 last_modified: str) -> str:
    """One object's JSON record in Swift's key order (TypeError if a value is no str)."""
    return (f'{{"bytes": {size}, "hash": {_json_str(etag)}, "name": {_json_str(name)}, '
            f'"content_type": {_json_str(content_type)}, '
            f'"last_modified": {_json_str(last_modified)}}}')


def render_account_listing(
    account_name: str,
    rows: Sequence[ContainerRow | SubdirRow],
    fmt: MediaType | ListingFormat,
) -> tuple[bytes, str]:
    """(body, Content-Type) of an account listing in ``fmt`` (a format or media type)."""
    media = _media(fmt)
    if media.endswith("/xml"):
        body = _account_xml(account_name, rows)
    elif media == "application/json":
        body = json.dumps([_container_record(row) for row in rows]).encode("ascii")
    else:
        body = _plain(rows)
    return body, content_type_of(media)


def listing_status(body: bytes) -> int:
    """Swift answers a listing with an empty body (plain, no rows) 204, others 200."""
    return 204 if not body else 200
