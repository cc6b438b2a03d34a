"""Swift's request limits and the checks the proxy runs before touching storage.

Pure functions: no I/O. Every failed check raises `ConstraintError` carrying the HTTP status
and the exact body text Swift answers with, so clients that show or match those texts
(python-swiftclient, rclone) see the same thing::

    412  "Invalid UTF8 or contains NULL"          a path segment (proxy/server.py)
    412  "Container name cannot contain slashes"  (and "... cannot be empty")
    400  "Object name length of 1025 longer than 1024"
    400  "Metadata name too long: x-object-meta-Abc..."
    413  "Your request is too large."
    411  "Missing Content-Length header."
    400  "Non-integer X-Delete-At" / "X-Delete-At in past"

The limits live in one frozen `Limits` (Swift's defaults; config may override any field), and
every check takes it as a keyword so tests and config never touch a global.

Header convention: header names and values are *wire strings*, i.e. the raw header bytes
decoded as latin-1 (what ASGI servers and Starlette hand over). Lengths are therefore byte
lengths, as in Swift, whose WSGI strings are the same thing. Names taken from a path are
given as raw bytes (percent-decoded, not yet UTF-8 decoded) or as already-decoded ``str``.

Object names may hold ``/``, ``..`` and any other UTF-8 text: they are data, never paths.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from pocketstack.objectstore.timestamp import Timestamp

TRUE_VALUES: Final = frozenset({"true", "1", "yes", "on", "t", "y"})
"""Swift's ``utils.TRUE_VALUES`` (compared lower-cased)."""

MAX_DELETE_AT: Final = 9_999_999_999
"""X-Delete-At values are clamped to [0, this] (Swift's ``normalize_delete_at_timestamp``)."""

MetaTarget = Literal["account", "container", "object"]
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class ConstraintError(Exception):
    """A request Swift rejects before storage: the status and body text Swift sends.

    ``content_type`` is the Content-Type of that body (``text/plain`` unless Swift sent its
    default HTML type for the same error).
    """

    def __init__(self, status: int, message: str, *, content_type: str = "text/plain") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.content_type = content_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


_HTML: Final = "text/html; charset=UTF-8"  # swob's default Content-Type for error bodies


@dataclass(frozen=True)
class Limits:
    """Swift's ``[swift-constraints]``, with Swift's defaults (published by ``/info``)."""

    max_file_size: int = 5 * 1024 * 1024 * 1024 + 2
    max_meta_name_length: int = 128
    max_meta_value_length: int = 256
    max_meta_count: int = 90
    max_meta_overall_size: int = 4096
    max_header_size: int = 8192
    max_object_name_length: int = 1024
    container_listing_limit: int = 10000
    account_listing_limit: int = 10000
    max_account_name_length: int = 256
    max_container_name_length: int = 256
    valid_api_versions: tuple[str, ...] = ("v1", "v1.0")
    extra_header_count: int = 0

    @property
    def max_header_count(self) -> int:
        """Headers a request may carry: the metadata items, 36 for HTTP/Swift, and extras."""
        return self.max_meta_count + 36 + max(self.extra_header_count, 0)

    def as_info(self) -> dict[str, int | list[str]]:
        """The ``swift`` section of ``GET /info`` (Swift's key names)."""
        info: dict[str, int | list[str]] = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "valid_api_versions"
        }
        info["valid_api_versions"] = list(self.valid_api_versions)
        return info


DEFAULT_LIMITS: Final = Limits()


def config_true_value(value: object) -> bool:
    """Swift's ``config_true_value``: True, or a string in `TRUE_VALUES` (any case)."""
    return value is True or (isinstance(value, str) and value.lower() in TRUE_VALUES)


def valid_api_version(version: str, *, limits: Limits = DEFAULT_LIMITS) -> bool:
    """Is ``version`` (the first path segment, e.g. ``v1``) one Swift serves?

    Swift answers a bad version on an account path with a bare 400 (proxy/server.py).
    """
    return version in limits.valid_api_versions


# -- names -----------------------------------------------------------------------------


def _wire_bytes(text: str) -> bytes:
    """The bytes a wire string stands for (see the module docstring)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def decode_utf8(raw: str | bytes) -> str | None:
    """``raw`` as text if it is valid UTF-8 without NUL (Swift's ``check_utf8``), else None.

    ``bytes`` are decoded strictly; a ``str`` is taken as already decoded text and is only
    checked for lone surrogates and NUL.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        text = raw
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return None if "\x00" in text else text


def _checked_name(raw: str | bytes, kind: str, *, slashes_allowed: bool) -> str:
    name = decode_utf8(raw)
    if name is None:
        raise ConstraintError(412, "Invalid UTF8 or contains NULL", content_type=_HTML)
    if not name:
        raise ConstraintError(412, f"{kind} name cannot be empty", content_type=_HTML)
    if not slashes_allowed and "/" in name:
        raise ConstraintError(412, f"{kind} name cannot contain slashes", content_type=_HTML)
    return name


def _check_length(name: str, kind: str, maximum: int) -> None:
    length = len(name.encode("utf-8"))
    if length > maximum:
        # Swift's proxy sets only the body for accounts and containers (swob's HTML type).
        content_type = "text/plain" if kind == "Object" else _HTML
        raise ConstraintError(
            400, f"{kind} name length of {length} longer than {maximum}", content_type=content_type
        )


def check_account_name(
    raw: str | bytes, *, limits: Limits = DEFAULT_LIMITS, check_length: bool = True
) -> str:
    """Decode and validate an account name; return it as text.

    412 for invalid UTF-8/NUL, empty, or a slash (the last two only arise from headers such
    as X-Copy-From-Account). 400 when longer than ``max_account_name_length`` UTF-8 bytes:
    Swift checks that on account GET/HEAD and PUT alike.
    """
    name = _checked_name(raw, "Account", slashes_allowed=False)
    if check_length:
        _check_length(name, "Account", limits.max_account_name_length)
    return name


def check_container_name(
    raw: str | bytes, *, limits: Limits = DEFAULT_LIMITS, check_length: bool = True
) -> str:
    """Decode and validate a container name; return it as text.

    412 for invalid UTF-8/NUL, empty, or a slash. 400 when longer than
    ``max_container_name_length`` UTF-8 bytes; Swift only checks the length on container
    PUT (pass ``check_length=False`` elsewhere, where a too-long name is simply not found).
    """
    name = _checked_name(raw, "Container", slashes_allowed=False)
    if check_length:
        _check_length(name, "Container", limits.max_container_name_length)
    return name


def check_object_name(
    raw: str | bytes, *, limits: Limits = DEFAULT_LIMITS, check_length: bool = True
) -> str:
    """Decode and validate an object name; return it as text.

    Any UTF-8 text without NUL is a legal object name, ``a/../b`` included: it is data, and
    must never be joined into a filesystem path. 412 for invalid UTF-8/NUL or empty; 400 when
    longer than ``max_object_name_length`` UTF-8 bytes (Swift checks it on PUT, in
    ``check_object_creation``; pass ``check_length=False`` for reads).
    """
    name = _checked_name(raw, "Object", slashes_allowed=True)
    if check_length:
        _check_length(name, "Object", limits.max_object_name_length)
    return name


# -- metadata --------------------------------------------------------------------------


def _header_items(headers: Headers) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def _wsgi_title(text: str) -> str:
    """Header-name case as Swift's WSGI layer shows it (ASCII-only ``title()``)."""
    return _wire_bytes(text).title().decode("latin-1")


def _check_meta_item(key: str, value: str, prefix: str, target: MetaTarget, limits: Limits) -> None:
    if not key:
        raise ConstraintError(400, "Metadata name cannot be empty")
    if target in ("account", "container"):
        bad_key = decode_utf8(_wire_bytes(key)) is None
        bad_value = bool(value) and decode_utf8(_wire_bytes(value)) is None
        if bad_key or bad_value:
            raise ConstraintError(400, "Metadata must be valid UTF-8")
    if len(_wire_bytes(key)) > limits.max_meta_name_length:
        raise ConstraintError(400, f"Metadata name too long: {prefix}{key}")
    if len(_wire_bytes(value)) > limits.max_meta_value_length:
        raise ConstraintError(
            400, f"Metadata value longer than {limits.max_meta_value_length}: {prefix}{key}"
        )


def check_metadata(
    headers: Headers, target_type: MetaTarget, *, limits: Limits = DEFAULT_LIMITS
) -> None:
    """Check the user metadata (``X-<Target>-Meta-*``) of one request, as Swift does.

    In header order: any header value over ``max_header_size`` bytes (400 "Header value too
    long: <Name>"); an empty meta name; for accounts and containers, names and values that
    are not UTF-8; per-item name and value lengths; then the running item count and the
    running total of name+value bytes. Only this request's headers are checked: limits on
    the metadata already stored are the database's business.
    """
    prefix = f"x-{target_type}-meta-"
    count = size = 0
    for name, value in _header_items(headers):
        if len(_wire_bytes(value)) > limits.max_header_size:
            title = _wsgi_title(name)[: limits.max_meta_name_length]
            raise ConstraintError(400, f"Header value too long: {title}")
        if not name.lower().startswith(prefix):
            continue
        key = _wsgi_title(name)[len(prefix):]
        _check_meta_item(key, value, prefix, target_type, limits)
        count += 1
        size += len(_wire_bytes(key)) + len(_wire_bytes(value))
        if count > limits.max_meta_count:
            raise ConstraintError(400, f"Too many metadata items; max {limits.max_meta_count}")
        if size > limits.max_meta_overall_size:
            raise ConstraintError(
                400, f"Total metadata too large; max {limits.max_meta_overall_size}"
            )


def check_metadata_total(
    stored: Mapping[str, str],
    updates: Mapping[str, str],
    target_type: Literal["account", "container"],
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """The limits on an account's or container's metadata *after* a write, as Swift's
    ``DatabaseBroker.validate_metadata`` checks them: ``updates`` (header -> value, an empty
    value removes the key) merged over ``stored``; then the count of non-empty
    ``X-<Target>-Meta-*`` items (400 "Too many metadata items; max 90") and the total bytes
    of their names (without the prefix) and values (400 "Total metadata too large; max
    4096"). A request that is fine alone can still take the total over the limit.
    """
    merged = {name.lower(): value for name, value in stored.items()}
    merged.update((name.lower(), value) for name, value in updates.items())
    prefix = f"x-{target_type}-meta-"
    count = size = 0
    for name, value in merged.items():
        if value and name.startswith(prefix):
            count += 1
            size += len(_wire_bytes(name[len(prefix):])) + len(_wire_bytes(value))
    if count > limits.max_meta_count:
        raise ConstraintError(400, f"Too many metadata items; max {limits.max_meta_count}")
    if size > limits.max_meta_overall_size:
        raise ConstraintError(400, f"Total metadata too large; max {limits.max_meta_overall_size}")


# -- object PUT ------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectCreation:
    """What `check_object_creation` learned: the body's framing and its expiry time."""

    content_length: int | None
    """The declared length; None for a chunked body."""
    chunked: bool
    delete_at: int | None
    """Epoch seconds from X-Delete-At / X-Delete-After (None: the object never expires)."""


def _lower_headers(headers: Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in _header_items(headers)}


def message_length(headers: Headers) -> tuple[int | None, bool]:
    """(Content-Length, chunked) of a request body, as swob's ``message_length``.

    501 when Transfer-Encoding lists several codings; 400 for a Transfer-Encoding other than
    ``chunked`` or a Content-Length that is not a non-negative integer. Content-Length is
    ignored for a chunked body.
    """
    lowered = _lower_headers(headers)
    coding = lowered.get("transfer-encoding")
    if coding:
        codings = coding.split(",")
        if len(codings) > 1:
            raise ConstraintError(
                501,
                "Unsupported Transfer-Coding header value specified in "
                "Transfer-Encoding header",
            )
        if codings[-1].strip().lower() != "chunked":
            raise ConstraintError(400, "Invalid Transfer-Encoding header value")
        return None, True
    raw = lowered.get("content-length")
    if raw is None:
        return None, False
    try:
        length = int(raw)
    except ValueError:
        length = -1
    if length < 0:
        raise ConstraintError(400, "Invalid Content-Length header value")
    return length, False


def check_object_creation(
    headers: Headers,
    object_name: str,
    *,
    now: float,
    limits: Limits = DEFAULT_LIMITS,
) -> ObjectCreation:
    """Swift's ``check_object_creation`` for an object PUT, in Swift's order.

    413 "Your request is too large." over ``max_file_size``; 411 "Missing Content-Length
    header." without a length or chunked coding; 400 for a too-long name, a missing
    Content-Type ("No content type": call `resolve_content_type` first, as Swift's proxy
    does), bad expiry headers, a non-UTF-8 Content-Type, and bad metadata. ``now`` is the
    request's timestamp in seconds.
    """
    length, chunked = message_length(headers)
    if length is not None and length > limits.max_file_size:
        raise ConstraintError(413, "Your request is too large.")
    if length is None and not chunked:
        raise ConstraintError(411, "Missing Content-Length header.")
    name_length = len(object_name.encode("utf-8", "surrogateescape"))
    if name_length > limits.max_object_name_length:
        raise ConstraintError(
            400,
            f"Object name length of {name_length} longer than {limits.max_object_name_length}",
        )
    lowered = _lower_headers(headers)
    if "content-type" not in lowered:
        raise ConstraintError(400, "No content type")
    delete_at = check_delete_headers(lowered, now=now)
    if decode_utf8(_wire_bytes(lowered["content-type"])) in (None, ""):
        raise ConstraintError(400, "Invalid Content-Type")
    check_metadata(headers, "object", limits=limits)
    return ObjectCreation(content_length=length, chunked=chunked, delete_at=delete_at)


def clean_content_type(value: str) -> str:
    """Drop a trailing ``;swift_bytes=N`` parameter (internal to Swift) from a type."""
    left, sep, right = value.rpartition(";")
    if sep and right.lstrip().startswith("swift_bytes="):
        return left
    return value


def resolve_content_type(headers: Headers, object_name: str) -> str:
    """The Content-Type an object PUT stores, as Swift's proxy ``_update_content_type``.

    Guessed from the name's extension (default ``application/octet-stream``) when the client
    sent none, an empty one, or ``X-Detect-Content-Type: true``; otherwise the client's,
    without any ``swift_bytes`` parameter.
    """
    lowered = _lower_headers(headers)
    given = lowered.get("content-type")
    if config_true_value(lowered.get("x-detect-content-type")) or not given:
        # A leading "/" keeps names like "data:x" from being read as URLs by mimetypes.
        guessed, _encoding = mimetypes.guess_type("/" + object_name, strict=True)
        return guessed or "application/octet-stream"
    return clean_content_type(given)


# -- timestamps and expiry -------------------------------------------------------------


def parse_timestamp_header(value: str | None) -> Timestamp:
    """An ``X-Timestamp`` value as a Timestamp; 400 when missing or not a Swift timestamp."""
    if value is None:
        raise ConstraintError(400, "Missing X-Timestamp header")
    try:
        return Timestamp(value)
    except ValueError:
        raise ConstraintError(
            400, f"X-Timestamp should be a UNIX timestamp float value; was {value!r}"
        ) from None


def normalize_delete_at(value: float) -> int:
    """Clamp an expiry time to Swift's range [0, 9999999999] and drop the fraction."""
    if value <= 0:
        return 0
    if value >= MAX_DELETE_AT:
        return MAX_DELETE_AT
    return int(value)


def check_delete_headers(headers: Headers, *, now: float) -> int | None:
    """The object's expiry (epoch seconds) from X-Delete-After / X-Delete-At, or None.

    X-Delete-After (seconds from ``now``) wins over X-Delete-At. Both must be integers
    (400 "Non-integer X-Delete-After" / "Non-integer X-Delete-At") and in the future
    (400 "X-Delete-After in past" / "X-Delete-At in past"). Use on object PUT and POST.
    """
    lowered = _lower_headers(headers)
    if "x-delete-after" in lowered:
        try:
            after = int(lowered["x-delete-after"])
        except ValueError:
            raise ConstraintError(400, "Non-integer X-Delete-After") from None
        # Clamped first so that a huge integer cannot overflow the float addition.
        after = max(-2 * MAX_DELETE_AT, min(after, 2 * MAX_DELETE_AT))
        delete_at = normalize_delete_at(now + after)
        if delete_at <= now:
            raise ConstraintError(400, "X-Delete-After in past")
        return delete_at
    if "x-delete-at" in lowered:
        try:
            delete_at = normalize_delete_at(int(lowered["x-delete-at"]))
        except ValueError:
            raise ConstraintError(400, "Non-integer X-Delete-At") from None
        if delete_at <= now:
            raise ConstraintError(400, "X-Delete-At in past")
        return delete_at
    return None
