"""The local-file store: one file per image under a directory (``<data_dir>/image/images``).

Writes go to a temp file in the same directory, are fsynced and renamed into place, so a
reader sees the whole image or nothing. Disk work runs in threads, in blocks of
``WRITE_BLOCK`` bytes, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from pocketstack.image.store.base import DataNotFound, Stored, StoreFull, StoreUnavailable

WRITE_BLOCK = 1 << 20


class FileStore:
    kind = "file"
    max_size: int | None = None

    def __init__(self, root: Path, *, name: str = "file", chunk_size: int = 65536,
                 fsync: bool = True) -> None:
        self.root = root.resolve()
        self.name = name
        self.chunk_size = chunk_size
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, location: str) -> Path:
        parts = urlsplit(location)
        path = Path(unquote(parts.path)).resolve()
        if parts.scheme != "file" or path.parent != self.root:
            raise DataNotFound(location)
        return path

    def location_for(self, image_id: str) -> str:
        return (self.root / image_id).as_uri()

    async def put(self, image_id: str, chunks: AsyncIterator[bytes]) -> Stored:
        final = self.root / image_id
        tmp = self.root / f".{image_id}.{secrets.token_hex(4)}.tmp"
        try:
            fh = await asyncio.to_thread(tmp.open, "wb")
        except OSError as exc:
            raise StoreUnavailable(f"cannot write image data: {exc}") from exc
        try:
            await self._write_all(fh, chunks)
            await asyncio.to_thread(self._commit, fh, tmp, final)
        except BaseException:
            await asyncio.to_thread(_discard, fh, tmp)
            raise
        return Stored(final.as_uri())

    async def _write_all(self, fh: BinaryIO, chunks: AsyncIterator[bytes]) -> None:
        block = bytearray()
        async for chunk in chunks:
            block += chunk
            if len(block) >= WRITE_BLOCK:
                await self._write(fh, bytes(block))
                block.clear()
        if block:
            await self._write(fh, bytes(block))

    async def _write(self, fh: BinaryIO, data: bytes) -> None:
        try:
            await asyncio.to_thread(fh.write, data)
        except OSError as exc:
            raise _translate(exc) from exc

    def _commit(self, fh: BinaryIO, tmp: Path, final: Path) -> None:
        try:
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
            fh.close()
            os.replace(tmp, final)
        except OSError as exc:
            raise _translate(exc) from exc

    async def open(self, location: str, *, offset: int = 0,
                   length: int | None = None) -> FileReader:
        path = self._path(location)
        try:
            fh = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise DataNotFound(location) from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read image data: {exc}") from exc
        if offset:
            await asyncio.to_thread(fh.seek, offset)
        return FileReader(fh, length, self.chunk_size)

    async def delete(self, location: str) -> None:
        try:
            path = self._path(location)
        except DataNotFound:
            return
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete image data: {exc}") from exc

    async def close(self) -> None:
        return None


class FileReader:
    def __init__(self, fh: BinaryIO, length: int | None, chunk_size: int) -> None:
        self.fh = fh
        self.remaining = length
        self.chunk_size = chunk_size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while self.remaining is None or self.remaining > 0:
                want = self.chunk_size if self.remaining is None \
                    else min(self.chunk_size, self.remaining)
                chunk = await asyncio.to_thread(self.fh.read, want)
                if not chunk:
                    return
                if self.remaining is not None:
                    self.remaining -= len(chunk)
                yield chunk
        except OSError as exc:
            raise StoreUnavailable(f"cannot read image data: {exc}") from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self.fh.closed:
            await asyncio.to_thread(self.fh.close)


def _discard(fh: BinaryIO, tmp: Path) -> None:
    with contextlib.suppress(OSError):
        fh.close()
    tmp.unlink(missing_ok=True)


def _translate(exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StoreFull(f"image storage is full: {exc.strerror}")
    return StoreUnavailable(f"cannot write image data: {exc}")
