"""Swift time: the one clock every write is stamped with, and the only thing conflicts compare.

A `Timestamp` is a count of 10-microsecond ticks since the epoch (``raw``) plus an optional
``offset`` that orders rewrites of the same instant (Swift's "internal" timestamps)::

    normal    "1700000000.12345"                    16 chars, zero-padded, sorts as text
    internal  "1700000000.12345_000000000000002a"   only when offset != 0; still sorts as text

Kept as integers, never floats, so that parsing, formatting and comparing agree exactly:
``Timestamp(t.internal) == t`` for every ``t``, and ``a < b`` iff ``a.internal < b.internal``.
Valid times are 0 <= seconds < 10**10 (so the normal form is always 16 characters); offsets
are 0 <= offset < 16**16. Anything else raises ValueError.

Derived forms:
  ``isoformat``  "2024-01-02T03:04:05.123450" (listings' ``last_modified``, UTC, no zone)
  ``http_date``  "Tue, 02 Jan 2024 03:04:06 GMT" (``Last-Modified``; rounded *up* to the
                 second with ``ceil()``, as Swift does, so If-Modified-Since with the value a
                 client was given never re-downloads the object)
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import re
import time
from fractions import Fraction
from typing import Final

TICKS_PER_SECOND: Final = 100_000
MAX_SECONDS: Final = 10**10
MAX_OFFSET: Final = 16**16 - 1

_TEXT_RE: Final = re.compile(r"([0-9]+)(?:\.([0-9]*))?(?:_([0-9a-fA-F]{1,16}))?")
_ISO_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%f"
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_NAIVE_EPOCH: Final = datetime.datetime(1970, 1, 1)  # noqa: DTZ001 (isoformat without zone)


class Timestamp:
    """An immutable Swift timestamp: ``raw`` ticks of 1e-5 s plus a rewrite ``offset``."""

    __slots__ = ("_raw", "_offset")

    _raw: int
    _offset: int

    def __init__(
        self,
        value: Timestamp | str | bytes | float | int,
        offset: int = 0,
        delta: int = 0,
    ) -> None:
        """Parse ``value`` (a Timestamp, a normal/internal string, or seconds as a number).

        ``offset`` is added to any offset ``value`` already carries; ``delta`` shifts the
        time by that many ticks. Raises ValueError on garbage or out-of-range values.
        """
        raw, base_offset = _parse_text(value) if type(value) is str else _parse(value)
        if offset < 0:
            raise ValueError("offset must be non-negative")
        total_offset = base_offset + offset
        raw += delta
        if not 0 <= raw < MAX_SECONDS * TICKS_PER_SECOND:
            raise ValueError(f"timestamp out of range: {value!r} (delta {delta})")
        if total_offset > MAX_OFFSET:
            raise ValueError(f"offset too large: {total_offset}")
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_offset", total_offset)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Timestamp is immutable")

    @classmethod
    def now(cls, offset: int = 0, delta: int = 0) -> Timestamp:
        """The current time (the proxy stamps each write with this)."""
        return cls(time.time(), offset=offset, delta=delta)

    @classmethod
    def from_isoformat(cls, text: str) -> Timestamp:
        """Parse the ``isoformat`` form back (e.g. a listing's ``last_modified``)."""
        parsed = datetime.datetime.strptime(text, _ISO_FORMAT).replace(tzinfo=datetime.UTC)
        delta = parsed - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return cls.from_raw(round(Fraction(micros, 10)))

    @classmethod
    def from_raw(cls, raw: int, offset: int = 0) -> Timestamp:
        """Build from ``raw`` ticks (10 microseconds each) and an offset."""
        return cls(0, offset=offset, delta=raw)

    @property
    def raw(self) -> int:
        """Ticks of 10 microseconds since the epoch."""
        return self._raw

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def normal(self) -> str:
        """``"1700000000.12345"``: the client-visible form, without the offset."""
        seconds, ticks = divmod(self._raw, TICKS_PER_SECOND)
        return f"{seconds:010d}.{ticks:05d}"

    @property
    def internal(self) -> str:
        """The normal form, plus ``_<16 hex>`` when the offset is not zero. Sorts as text."""
        if self._offset:
            return f"{self.normal}_{self._offset:016x}"
        return self.normal

    @property
    def isoformat(self) -> str:
        """UTC, microsecond precision, no zone: ``"2024-01-02T03:04:05.123450"``."""
        seconds, ticks = divmod(self._raw, TICKS_PER_SECOND)
        return f"{_iso_second(seconds)}.{ticks * 10:06d}"

    @property
    def http_date(self) -> str:
        """RFC 7231 date for ``Last-Modified``, rounded up to the whole second."""
        return _http_date(self.ceil())

    def ceil(self) -> int:
        """Whole seconds, rounded up (the second-precision Last-Modified time)."""
        return -(-self._raw // TICKS_PER_SECOND)

    def __float__(self) -> float:
        return self._raw / TICKS_PER_SECOND

    def __int__(self) -> int:
        return self._raw // TICKS_PER_SECOND

    def __bool__(self) -> bool:
        return bool(self._raw or self._offset)

    def __repr__(self) -> str:
        return f"Timestamp({self.internal!r})"

    def __str__(self) -> str:
        """The internal form: lossless and sortable (use ``normal`` for clients)."""
        return self.internal

    def _key(self) -> tuple[int, int]:
        return (self._raw, self._offset)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._key() >= other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[type[Timestamp], tuple[str]]:
        return (Timestamp, (self.internal,))


@functools.lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    """Cached: every object HEAD/GET formats one, mostly of the same few seconds."""
    return email.utils.formatdate(seconds, usegmt=True)


def isoformat_of(text: str) -> str:
    """`Timestamp(text).isoformat` for a stored timestamp, without building a Timestamp.

    Listings format thousands of stored ``internal`` texts; their normal part is always
    ``SSSSSSSSSS.TTTTT``, so slicing it is exact (anything else takes the full parse).
    """
    if len(text) >= 16 and text[10] == "." and text[11:16].isdigit():
        second = _ISO_SECONDS.get(text[:10])
        if second is None and text[:10].isdigit():
            if len(_ISO_SECONDS) >= 4096:
                _ISO_SECONDS.clear()
            second = _ISO_SECONDS[text[:10]] = _iso_second(int(text[:10]))
        if second is not None:
            return f"{second}.{text[11:16]}0"
    return Timestamp(text).isoformat


_ISO_SECONDS: Final[dict[str, str]] = {}
"""isoformat_of's cache: the seconds part of stored timestamps -> its ISO text."""


@functools.lru_cache(maxsize=1024)
def _iso_second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of whole seconds since the epoch, UTC. Cached: the rows of
    a listing are mostly written in bursts, many in the same second."""
    return (_NAIVE_EPOCH + datetime.timedelta(seconds=seconds)).isoformat()


def _parse(value: Timestamp | str | bytes | float | int) -> tuple[int, int]:
    """(raw ticks, offset) from any accepted input, or ValueError."""
    if type(value) is int:  # exact without a Fraction (``from_raw`` passes 0)
        return value * TICKS_PER_SECOND, 0
    if isinstance(value, Timestamp):
        return value.raw, value.offset
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid timestamp: {value!r}") from exc
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"invalid timestamp: {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"invalid timestamp: {value!r}")
    return _ticks_of(value), 0


def _ticks_of(seconds: float) -> int:
    """``round(Fraction(seconds) * TICKS_PER_SECOND)`` (exact, half to even) in integers:
    every write stamps a time, and every cleanup computes its reclaim horizon."""
    numerator, denominator = seconds.as_integer_ratio()
    ticks, rest = divmod(numerator * TICKS_PER_SECOND, denominator)
    if 2 * rest > denominator or (2 * rest == denominator and ticks % 2):
        ticks += 1
    return ticks


def _parse_text(text: str) -> tuple[int, int]:
    if len(text) == 16 and text[10] == "." and text.isascii():  # the internal form, fast:
        seconds, fraction = text[:10], text[11:]  # listings parse one per row
        if seconds.isdigit() and fraction.isdigit():
            return int(seconds) * TICKS_PER_SECOND + int(fraction), 0
    match = _TEXT_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid timestamp: {text!r}")
    seconds, fraction, offset = match.groups()
    fraction = fraction or ""
    if len(fraction) <= 5:  # the common case (every normal/internal form): exact, no rounding
        raw = int(seconds) * TICKS_PER_SECOND + int(fraction.ljust(5, "0"))
    else:
        raw = round(Fraction(f"{seconds}.{fraction}") * TICKS_PER_SECOND)
    return raw, int(offset, 16) if offset else 0
