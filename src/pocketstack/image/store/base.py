"""The store contract: where an image's bytes live, and nothing else.

A :class:`Store` keeps one blob per image, named by the image id, and gives back an opaque
*location* (kept in the image's row, never shown to clients) to read or delete it later:

``await store.put(image_id, chunks) -> Stored``
    consumes the async iterator ``chunks`` completely and stores its bytes. If the iterator
    raises (the client went away, a size limit tripped), ``put`` leaves no readable data at
    the returned location, and re-raises that same exception unchanged. ``Stored.md5`` is
    the backend's own checksum of what it kept (Swift's ETag) or None; the caller compares
    it with what it computed.
``await store.open(location, offset=0, length=None) -> Reader``
    a reader of ``length`` bytes from ``offset`` (to the end when None); raises
    :class:`DataNotFound` when nothing is stored there. The caller iterates the reader and
    must ``aclose()`` it, also when it stops early.
``await store.delete(location)``
    removes the data; data that is already gone is not an error.
``store.location_for(image_id)``
    where ``put`` stores an image's data: lets a caller clean up after an upload that
    never finished (the image never recorded a location).
``store.max_size``
    the largest blob the store accepts in one piece (None: no limit of its own).

Failures are named: :class:`DataNotFound`, :class:`StoreFull` (the backend refused the
size: Glance's 413), :class:`StoreUnavailable` (the backend cannot be reached or failed:
503). Foreign errors (OSError, httpx) are translated at this boundary, ``from`` the cause.

What is outside the contract: hashing, quotas, size limits and image status belong to the
service layer; large-object segmentation (Swift SLO) would live inside a store's ``put`` and
``open`` behind the same location, so callers never see segments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """Base of the store outcomes."""


class DataNotFound(StoreError):
    """No data at the location."""


class StoreFull(StoreError):
    """The backend refused to keep this much data."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or answered with a failure."""


@dataclass(frozen=True)
class Stored:
    location: str
    md5: str | None = None


class Reader(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Store(Protocol):
    name: str
    kind: str
    max_size: int | None

    def location_for(self, image_id: str) -> str: ...

    async def put(self, image_id: str, chunks: AsyncIterator[bytes]) -> Stored: ...

    async def open(self, location: str, *, offset: int = 0,
                   length: int | None = None) -> Reader: ...

    async def delete(self, location: str) -> None: ...

    async def close(self) -> None: ...
