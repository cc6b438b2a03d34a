"""The event loop every pocketstack server process runs on: uvloop's, through `run`.

uvloop (libuv) does in C what asyncio's own loop does in Python: the selector, the
callbacks, the socket transports. Measured with ``make ab`` against asyncio's loop, one
process, medians of 4 alternated rounds (docs/performance.md, "The event loop"): a small
HEAD costs a fifth less CPU, a small GET 6-19% less, PUT and DELETE 4-9% less. uvloop
keeps the GIL through its socket writes, which asyncio's loop gives up at every ``send``,
so it needs the second ``read`` thread of the storage pools
(`objectstore.storage.threads`): with one, small GETs lost a tenth of their rate.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a uvloop loop."""
    return uvloop.run(main)
