"""The storage-node wire format, version 1: what RemoteNode and the storage-node server say.

Both ends import this module and nothing else about each other: the server
(``objectstore/server``) renders with it, `remote_node` parses with it. The HTTP routes
themselves are documented in ``objectstore/server/__init__.py``.

Names travel as path segments, percent-encoded as UTF-8 with nothing left unescaped but
``A-Z a-z 0-9 - _ ~``: ``/`` becomes ``%2F`` and ``.`` becomes ``%2E``, so an object
called ``../x/`` is one opaque segment that no URL normalizer can resolve. The server
splits the *raw* path on ``/`` and unquotes each segment. Invalid UTF-8 survives as
surrogate escapes, both ways.

Documents are JSON objects, ASCII only (``\\uXXXX`` escapes), with ``"v": 1``; in a
header (where a HEAD answer or a streamed body leaves no room for a JSON body) the same
text is the header's value. A dataclass from `types` is encoded field by field under its
field names; `Timestamp` as its ``internal`` string, mappings as JSON objects (integer
keys as decimal strings). A reader ignores keys it does not know and fills missing
fields that have defaults, so adding a defaulted field keeps version 1; anything else
bumps ``v``. Listings: ``{"v", "info": {...}, "entries": [record | {"subdir": name}]}``.

Errors: status = the exception's ``status`` and the header ``X-Backend-Error`` holds
``{"v", "error": [class names, most specific first], "message", "timestamp",
"content_length", "status_deleted", "delete_at"}`` (the last four when set). The
reader re-raises the first class it knows (so a newer server's new subclass still maps to
its known base); with no document at all (a load balancer's 502) it goes by status.

Streams (an object's bytes, async pendings) are frames: a 5-byte header (kind, payload
length: ``>BI``) and the payload. ``D`` carries data, ``Z`` ends the stream cleanly and
``E`` ends it with an error document (e.g. a corrupt object found while reading). A stream
that stops without ``Z`` or ``E`` was cut off (`TruncatedStream`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
import struct
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import UnionType
from typing import Any, Final, TypeVar, Union, get_args, get_origin, get_type_hints
from urllib.parse import parse_qsl, quote, unquote

from pocketstack.objectstore.storage import exceptions
from pocketstack.objectstore.storage.types import (
    AccountInfo,
    AccountListing,
    ByteRange,
    ContainerInfo,
    ContainerListing,
    ContainerRecord,
    DatabaseStatus,
    ListedObject,
    ObjectRecord,
    Subdir,
)
from pocketstack.objectstore.timestamp import Timestamp

WIRE_VERSION: Final = 1
FRAMES_MEDIA_TYPE: Final = "application/x-pocketstack-frames; v=1"
JSON_MEDIA_TYPE: Final = "application/json"

TIMESTAMP_HEADER: Final = "x-timestamp"
POLICY_HEADER: Final = "x-backend-storage-policy-index"
METADATA_HEADER: Final = "x-backend-metadata"
INFO_HEADER: Final = "x-backend-info"
RANGES_HEADER: Final = "x-backend-ranges"
ERROR_HEADER: Final = "x-backend-error"

FRAME_DATA: Final = ord("D")
FRAME_END: Final = ord("Z")
FRAME_ERROR: Final = ord("E")
MAX_FRAME_PAYLOAD: Final = 1 << 28
_FRAME: Final = struct.Struct(">BI")
_ERROR_FIELDS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "timestamp": lambda value: _timestamp(value),
    "content_length": lambda value: _plain(int, value),
    "status_deleted": lambda value: _plain(bool, value),
    "delete_at": lambda value: _plain(int, value),
}
_STATUS_CLASSES: Final[Mapping[int, type[exceptions.StorageError]]] = {
    400: exceptions.BadRequest,
    403: exceptions.Forbidden,
    404: exceptions.NotFound,
    409: exceptions.Conflict,
    422: exceptions.EtagMismatch,
    499: exceptions.ClientDisconnect,
    502: exceptions.NodeUnavailable,
    503: exceptions.NodeUnavailable,
    504: exceptions.NodeUnavailable,
    507: exceptions.InsufficientStorage,
}
D = TypeVar("D")


class WireFormatError(Exception):
    """A document, header or stream that does not follow this format."""


class TruncatedStream(WireFormatError):
    """A frame stream ended without its end frame (the peer went away mid-answer)."""


# -- names -------------------------------------------------------------------------------


def quote_segment(name: str) -> str:
    """One path segment: ``quote_segment("../a b")`` is ``"%2E%2E%2Fa%20b"``."""
    return quote(name, safe="", errors="surrogateescape").replace(".", "%2E")


def build_path(*segments: str | int) -> str:
    """``/seg/seg/...`` with every segment quoted (see `quote_segment`)."""
    return "".join("/" + quote_segment(str(segment)) for segment in segments)


def split_path(raw_path: bytes) -> list[str]:
    """The unquoted segments of a raw (still percent-encoded) request path."""
    try:
        text = raw_path.decode("ascii")
    except UnicodeDecodeError as exc:
        raise WireFormatError("path is not percent-encoded ASCII") from exc
    if not text.startswith("/"):
        raise WireFormatError(f"not an absolute path: {text!r}")
    return [unquote(segment, errors="surrogateescape") for segment in text[1:].split("/")]


def encode_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{quote_segment(k)}={quote_segment(v)}" for k, v in params.items())


def decode_query(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise WireFormatError("query is not percent-encoded ASCII") from exc
    return dict(parse_qsl(text, keep_blank_values=True, errors="surrogateescape"))


# -- documents ---------------------------------------------------------------------------


def dumps(doc: Mapping[str, Any]) -> bytes:
    """A versioned document as compact ASCII JSON (also valid as a header value)."""
    body = {"v": WIRE_VERSION, **doc}
    return json.dumps(body, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes | str) -> dict[str, Any]:
    """Parse a document and check its version; WireFormatError otherwise."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise WireFormatError("a document must be a JSON object")
    if doc.get("v") != WIRE_VERSION:
        raise WireFormatError(f"unsupported wire version {doc.get('v')!r}")
    return doc


def encode(value: Any) -> bytes:
    """A dataclass as a versioned document (its fields at the top level, plus ``v``)."""
    return dumps(to_doc(value))


def decode(cls: type[D], data: bytes | str) -> D:
    """The dataclass ``cls`` from an `encode` document."""
    return from_doc(cls, loads(data))


def to_doc(value: Any) -> Any:
    """A dataclass (or mapping, Timestamp, plain value) as JSON-ready data."""
    if isinstance(value, Timestamp):
        return value.internal
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_doc(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_doc(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [to_doc(item) for item in value]
    return value


def from_doc(cls: type[D], doc: Any) -> D:
    """The dataclass ``cls`` from `to_doc` output; WireFormatError if it does not fit."""
    if not isinstance(doc, dict):
        raise WireFormatError(f"{cls.__name__}: expected an object")
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = _decoder(cls)
    return decoder(doc)  # type: ignore[no-any-return]


_DECODERS: Final[dict[type[Any], Callable[[dict[str, Any]], Any]]] = {}


def _decoder(cls: type[Any]) -> Callable[[dict[str, Any]], Any]:
    """A decoder for ``cls`` built once from its fields' types (cached in _DECODERS)."""
    hints = get_type_hints(cls)
    spec = [(f.name, _converter(hints[f.name]), _has_default(f)) for f in dataclasses.fields(cls)]

    def decode(doc: dict[str, Any]) -> Any:
        kwargs = {}
        for name, convert, optional in spec:
            if name in doc:
                kwargs[name] = convert(doc[name])
            elif not optional:
                raise WireFormatError(f"{cls.__name__}: missing {name!r}")
        return cls(**kwargs)

    return decode


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _converter(hint: Any) -> Callable[[Any], Any]:
    """A checking converter from JSON data to the field type ``hint``."""
    if hint is Timestamp:
        return _timestamp
    if hint in (str, int, bool):
        return functools.partial(_plain, hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return functools.partial(from_doc, hint)
    origin = get_origin(hint)
    if origin is Mapping:
        key_type, value_type = get_args(hint)
        key = _int_key if key_type is int else _converter(key_type)
        return functools.partial(_mapping, key, _converter(value_type))
    if origin is tuple and len(get_args(hint)) == 2 and get_args(hint)[1] is Ellipsis:
        return functools.partial(_tuple, _converter(get_args(hint)[0]))
    if origin in (Union, UnionType) and type(None) in get_args(hint):
        (inner,) = [arg for arg in get_args(hint) if arg is not type(None)]
        return functools.partial(_optional, _converter(inner))
    raise TypeError(f"no wire encoding for {hint!r}")


def _tuple(item: Callable[[Any], Any], data: Any) -> tuple[Any, ...]:
    if not isinstance(data, list):
        raise WireFormatError(f"expected a list, got {data!r}")
    return tuple(item(value) for value in data)


def _optional(inner: Callable[[Any], Any], data: Any) -> Any:
    return None if data is None else inner(data)


def _plain(kind: type[Any], value: Any) -> Any:
    if type(value) is not kind:
        raise WireFormatError(f"expected {kind.__name__}, got {value!r}")
    return value


def _int_key(value: Any) -> int:
    """A mapping's integer key (JSON object keys are strings)."""
    if not isinstance(value, str) or not value.lstrip("-").isdigit():
        raise WireFormatError(f"expected an integer key, got {value!r}")
    return int(value)


def _timestamp(value: Any) -> Timestamp:
    if not isinstance(value, str):
        raise WireFormatError(f"expected a timestamp string, got {value!r}")
    try:
        return Timestamp(value)
    except ValueError as exc:
        raise WireFormatError(str(exc)) from exc


def _mapping(key: Callable[[Any], Any], value: Callable[[Any], Any], data: Any) -> dict[Any, Any]:
    if not isinstance(data, dict):
        raise WireFormatError(f"expected an object, got {data!r}")
    return {key(k): value(v) for k, v in data.items()}


# -- request documents -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ObjectRowUpdate:
    """Body of ``PUT /containers/<dev>/<part>/<a>/<c>/<o>`` (update_container_listing)."""

    timestamp: Timestamp
    size: int
    content_type: str
    etag: str
    deleted: bool = False
    policy_index: int = 0


@dataclasses.dataclass(frozen=True)
class ContainerRowUpdate:
    """Body of ``PUT /accounts/<dev>/<part>/<a>/<c>`` (update_account_listing)."""

    put_timestamp: Timestamp
    delete_timestamp: Timestamp
    object_count: int
    bytes_used: int
    policy_index: int = 0


@dataclasses.dataclass(frozen=True)
class DatabaseMerge:
    """Body of ``POST /db-merge/<kind>/<dev>/<part>/<a>[/<c>]`` (merge_db), with ``rows``:
    the records of that kind (`record_class`) as a list next to these fields."""

    source_id: str
    sync_point: int
    status: DatabaseStatus


DbRecord = ObjectRecord | ContainerRecord
_DB_RECORDS: Final[Mapping[str, type[Any]]] = {
    "containers": ObjectRecord,
    "accounts": ContainerRecord,
}


def record_class(kind: str) -> type[Any]:
    """The row type of a database kind (``containers``: ObjectRecord, ``accounts``:
    ContainerRecord); WireFormatError for anything else."""
    try:
        return _DB_RECORDS[kind]
    except KeyError:
        raise WireFormatError(f"not a database kind: {kind!r}") from None


def encode_merge(merge: DatabaseMerge, rows: Sequence[DbRecord]) -> bytes:
    return dumps({**to_doc(merge), "rows": [to_doc(row) for row in rows]})


def decode_merge(kind: str, data: bytes) -> tuple[DatabaseMerge, list[Any]]:
    doc = loads(data)
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise WireFormatError("a merge without rows")
    cls = record_class(kind)
    return from_doc(DatabaseMerge, doc), [from_doc(cls, row) for row in rows]


def encode_rows(rows: Sequence[tuple[int, DbRecord]]) -> bytes:
    """``{"v", "rows": [[row id, record], ...]}`` (get_db_rows)."""
    return dumps({"rows": [[rowid, to_doc(row)] for rowid, row in rows]})


def decode_rows(kind: str, data: bytes) -> list[tuple[int, Any]]:
    rows = loads(data).get("rows")
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == 2 and type(r[0]) is int for r in rows
    ):
        raise WireFormatError("no rows in the answer")
    cls = record_class(kind)
    return [(rowid, from_doc(cls, row)) for rowid, row in rows]


def encode_list(key: str, items: Sequence[Any]) -> bytes:
    """``{"v", key: [item document, ...]}``."""
    return dumps({key: [to_doc(item) for item in items]})


def decode_list(cls: type[D], key: str, data: bytes) -> list[D]:
    items = loads(data).get(key)
    if not isinstance(items, list):
        raise WireFormatError(f"no {key!r} list in the answer")
    return [from_doc(cls, item) for item in items]


# -- listings and ranges -----------------------------------------------------------------

_LISTED_TYPES: Final = tuple(get_type_hints(ListedObject).values())
_STORED_TIMESTAMP: Final = re.compile(r"[0-9]{10}\.[0-9]{5}(?:_[0-9a-f]{16})?")
"""`Timestamp.internal` as brokers store it (checked without parsing, per listed row)."""


def _listed_object(doc: Any) -> ListedObject:
    if not isinstance(doc, list) or len(doc) != len(_LISTED_TYPES) or any(
            type(value) is not kind for value, kind in zip(doc, _LISTED_TYPES, strict=True)
    ) or not _STORED_TIMESTAMP.fullmatch(doc[1]):
        raise WireFormatError(f"not a listed object: {doc!r}")
    return ListedObject._make(doc)


_LISTINGS: Final[Mapping[type[Any], tuple[type[Any], Callable[[Any], Any]]]] = {
    ContainerListing: (ContainerInfo, _listed_object),
    AccountListing: (AccountInfo, functools.partial(from_doc, ContainerRecord)),
}
L = TypeVar("L", ContainerListing, AccountListing)


def encode_listing(listing: ContainerListing | AccountListing) -> bytes:
    """A listing as JSON; object entries as arrays (ListedObject's fields, in order)."""
    entries = [
        {"subdir": e.name} if isinstance(e, Subdir) else e if isinstance(e, tuple) else to_doc(e)
        for e in listing.entries
    ]
    return dumps({"info": to_doc(listing.info), "entries": entries})


def decode_listing(cls: type[L], data: bytes) -> L:
    doc = loads(data)
    info_cls, decode_entry = _LISTINGS[cls]
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise WireFormatError("listing without entries")
    return cls(
        from_doc(info_cls, doc.get("info")),
        tuple(
            Subdir(_plain(str, e["subdir"]))
            if isinstance(e, dict) and "subdir" in e
            else decode_entry(e)
            for e in entries
        ),
    )


def encode_ranges(ranges: list[ByteRange] | list[tuple[int, int]]) -> str:
    return json.dumps([list(r) for r in ranges], separators=(",", ":"))


def decode_ranges(text: str) -> list[tuple[int, Any]]:
    """``[[start, stop|null], ...]``; stop is None only in requests (open-ended)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WireFormatError(f"bad ranges: {text!r}") from exc
    if not isinstance(data, list) or not all(_is_range(r) for r in data):
        raise WireFormatError(f"bad ranges: {text!r}")
    return [(r[0], r[1]) for r in data]


def _is_range(item: Any) -> bool:
    return (
        isinstance(item, list)
        and len(item) == 2
        and type(item[0]) is int
        and (item[1] is None or type(item[1]) is int)
    )


# -- errors ------------------------------------------------------------------------------


def encode_error(exc: BaseException) -> bytes:
    """The error document of a storage exception (or ValueError: a bad argument)."""
    names = [c.__name__ for c in type(exc).__mro__ if c.__name__ in _error_classes()]
    doc: dict[str, Any] = {"error": names, "message": str(exc)}
    for name in _ERROR_FIELDS:
        value = getattr(exc, name, None)
        if value is not None:
            doc[name] = value.internal if isinstance(value, Timestamp) else value
    return dumps(doc)


def error_status(exc: BaseException) -> int:
    if isinstance(exc, exceptions.StorageError):
        return exc.status
    return 400 if isinstance(exc, ValueError) else 500


def decode_error(status: int, header: str | None) -> Exception:
    """The exception an error answer stands for (see the module docstring)."""
    try:
        doc = loads(header) if header else {}
        cls = next((c for c in map(_error_classes().get, doc.get("error", ())) if c), None)
        if cls is not None:
            return _build_error(cls, doc)
    except (WireFormatError, TypeError, ValueError):
        pass  # an unreadable document: fall back to the status alone
    fallback = _STATUS_CLASSES.get(status, exceptions.StorageError)
    return fallback(f"storage node answered {status}")


def _build_error(cls: type[Exception], doc: Mapping[str, Any]) -> Exception:
    values = {name: _ERROR_FIELDS[name](doc[name]) for name in _ERROR_FIELDS if name in doc}
    accepted = _KEYWORDS.get(cls)
    if accepted is None:
        accepted = _KEYWORDS[cls] = _keyword_params(cls)
    error = cls(str(doc.get("message", "")), **{k: values[k] for k in accepted if k in values})
    for name in _ERROR_FIELDS:
        if name in values and name not in accepted and hasattr(error, name):
            setattr(error, name, values[name])
    return error


_KEYWORDS: Final[dict[type[Exception], frozenset[str]]] = {}


def _keyword_params(cls: type[Exception]) -> frozenset[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


@functools.cache
def _error_classes() -> Mapping[str, type[Exception]]:
    """The classes of `exceptions` by name (plus ValueError: the contract's bad arguments)."""
    found: dict[str, type[Exception]] = {"ValueError": ValueError}
    for name, value in vars(exceptions).items():
        if isinstance(value, type) and issubclass(value, exceptions.StorageError):
            found[name] = value
    return found


# -- frames ------------------------------------------------------------------------------


def frame(kind: int, payload: bytes = b"") -> bytes:
    return _FRAME.pack(kind, len(payload)) + payload


class FrameReader:
    """Frames from a byte stream cut anywhere (as the network delivers it)."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._buffer = bytearray()

    async def read(self) -> tuple[int, bytes]:
        """The next frame's kind and payload; TruncatedStream if the bytes run out."""
        buffer = self._buffer
        while True:
            if len(buffer) >= _FRAME.size:
                kind, size = _FRAME.unpack_from(buffer)
                if size > MAX_FRAME_PAYLOAD or kind not in (FRAME_DATA, FRAME_END, FRAME_ERROR):
                    raise WireFormatError(f"bad frame header {bytes(buffer[: _FRAME.size])!r}")
                end = _FRAME.size + size
                if len(buffer) >= end:
                    with memoryview(buffer) as view:
                        payload = bytes(view[_FRAME.size : end])
                    del buffer[:end]
                    return kind, payload
            chunk = await anext(self._source, None)
            if chunk is None:
                raise TruncatedStream(f"stream ended inside a frame ({len(buffer)} bytes left)")
            buffer += chunk

    async def finish(self) -> None:
        """Read the source to its end after the last frame (so an HTTP connection is
        complete and goes back to its pool); WireFormatError if bytes follow the frame."""
        async for chunk in self._source:
            self._buffer += chunk
        if self._buffer:
            raise WireFormatError(f"{len(self._buffer)} bytes after the last frame")
