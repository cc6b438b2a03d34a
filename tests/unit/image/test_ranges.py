"""Download ranges: one range (or a legacy Content-Range), else 416."""

from __future__ import annotations

import pytest

from pocketstack.image.exceptions import RangeNotSatisfiable
from pocketstack.image.service.ranges import ByteRange, requested


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=3-10", ByteRange(3, 8, 26)), ("bytes=20-", ByteRange(20, 6, 26)),
    ("bytes=-4", ByteRange(22, 4, 26)), ("bytes=-100", ByteRange(0, 26, 26)),
    ("bytes=24-100", ByteRange(24, 2, 26)),
])
def test_ranges(header: str, expected: ByteRange) -> None:
    assert requested(header, None, 26) == expected


def test_content_range_and_none() -> None:
    assert requested(None, "bytes 1-1/26", 26) == ByteRange(1, 1, 26)
    assert requested(None, None, 26) is None
    assert ByteRange(3, 8, 26).content_range() == "bytes 3-10/26"


@pytest.mark.parametrize("header", ["bytes=10-5", "bytes=26-", "bytes=-0", "bytes=0-1,4-5",
                                    "items=0-1", "bytes=-", "nonsense"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        requested(header, None, 26)
    assert caught.value.headers["Content-Range"] == "bytes */26"
