"""Which bytes of an image a download asks for (pure).

Glance honours one ``Range`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) and, for old
clients, a ``Content-Range`` request header (``bytes a-b/size``). Anything else, several
ranges, or a range outside the image is a 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pocketstack.image.exceptions import RangeNotSatisfiable

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.I)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.I)


@dataclass(frozen=True)
class ByteRange:
    offset: int
    length: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.length - 1

    def content_range(self) -> str:
        return f"bytes {self.offset}-{self.end}/{self.size}"


def requested(range_header: str | None, content_range: str | None, size: int
              ) -> ByteRange | None:
    """The single range asked for (None: the whole image)."""
    if range_header:
        return _from_range(range_header, size)
    if content_range:
        found = _CONTENT_RANGE.match(content_range)
        if found is None:
            raise _unsatisfiable(size)
        start, stop = int(found[1]), int(found[2])
        if start > stop or stop >= size:
            raise _unsatisfiable(size)
        return ByteRange(start, stop - start + 1, size)
    return None


def _from_range(header: str, size: int) -> ByteRange:
    found = _RANGE.match(header)
    if found is None or (not found[1] and not found[2]):
        raise RangeNotSatisfiable("Invalid Range header.", headers=_star(size))
    first, last = found[1], found[2]
    if not first:  # suffix: the last n bytes
        count = int(last)
        if count == 0 or size == 0:
            raise _unsatisfiable(size)
        offset = max(size - count, 0)
        return ByteRange(offset, size - offset, size)
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if start >= size or (last and int(last) < start):
        raise _unsatisfiable(size)
    return ByteRange(start, end - start + 1, size)


def _star(size: int) -> dict[str, str]:
    return {"Content-Range": f"bytes */{size}"}


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(headers=_star(size))
