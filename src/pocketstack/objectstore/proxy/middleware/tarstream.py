"""Tar archives read as they arrive (bulk's ``extract-archive``): no temporary file, no
thread, never a whole member in memory.

``decompressed(chunks, kind)`` undoes gzip or bzip2 on the fly, at most ``STEP`` bytes of
output at a time, so a small body cannot blow up in memory. ``TarReader`` walks the
512-byte blocks: ``tarfile.TarInfo.frombuf`` parses each header (checksum, numeric fields,
the ustar prefix) and the reader applies GNU long names and pax records (``path``,
``size``, xattrs) itself; ``TarReader.data()`` hands out the current member's bytes as an
async iterator, ready to be an object PUT's body. Whatever of a member is not read is
skipped by the next ``next()``.

Corrupt input raises ``ArchiveError`` with the text Python's ``tarfile`` gives in stream
mode (``empty file``, ``bad checksum``, ``unexpected end of data``, ``not a gzip file``,
``invalid compressed data``), since Swift's bulk middleware reports ``Invalid Tar File:
<that text>``; as in a ``tarfile`` stream, an unreadable header after the first member
ends the archive. Which types carry data is ``tarfile``'s rule too: regular files (and
unknown types) do, directories, links and devices do not, whatever their size field says.
"""

from __future__ import annotations

import bz2
import re
import tarfile
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field

BLOCK = tarfile.BLOCKSIZE
STEP = 64 * 1024  # the most decompressed bytes produced (and held) at once
MAX_EXTENDED_HEADER = 1024 * 1024  # pax / GNU long-name records: larger ones are refused
ENCODING, ERRORS = "utf-8", "surrogateescape"
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
LONG_NAMES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
PAX_TYPES = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.XGLTYPE)
EXTENDED_TYPES = frozenset({*LONG_NAMES, *PAX_TYPES})
PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
SUBSEQUENT = "missing or bad subsequent header"


class ArchiveError(Exception):
    """The request body is not a readable archive (``tarfile``'s words)."""


@dataclass(frozen=True)
class Member:
    """One archive entry: its name (UTF-8, undecodable bytes as surrogates), data size,
    tar type and pax records (global ones included)."""

    name: str
    size: int
    type: bytes
    pax: Mapping[str, str] = field(default_factory=dict)
    sparse: bool = False

    @property
    def is_file(self) -> bool:
        """A regular file (sparse ones are files too, but their data is not a plain byte
        stream)."""
        return self.type in tarfile.REGULAR_TYPES


# -- decompression ---------------------------------------------------------------------------
async def decompressed(chunks: AsyncIterator[bytes], kind: str) -> AsyncIterator[bytes]:
    """``chunks`` as they are (``kind`` ""), gunzipped (``gz``) or bunzipped (``bz2``)."""
    if kind == "gz":
        source = _gunzip(chunks)
    elif kind == "bz2":
        source = _bunzip(chunks)
    else:
        source = chunks
    async for piece in source:
        yield piece


async def _gunzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """One gzip member; what follows it (tape padding) is ignored, as ``tarfile`` does."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    head = b""
    async for chunk in chunks:
        if len(head) < len(GZIP_MAGIC):
            head += chunk[:len(GZIP_MAGIC) - len(head)]
            if len(head) == len(GZIP_MAGIC) and head != GZIP_MAGIC:
                raise ArchiveError("not a gzip file")
        if not inflater.eof:
            for out in _inflate(inflater, chunk):
                yield out
    if len(head) < len(GZIP_MAGIC):
        raise ArchiveError("not a gzip file")


def _inflate(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    """All the output ``data`` gives, ``STEP`` bytes at a time."""
    while True:
        try:
            out = inflater.decompress(data, STEP)
        except zlib.error as exc:
            raise ArchiveError("invalid compressed data") from exc
        if out:
            yield out
        data = inflater.unconsumed_tail
        if inflater.eof or (not data and len(out) < STEP):
            return


async def _bunzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """bzip2 streams, one after another (``pbzip2``/``lbzip2`` write several); anything
    else after a stream (padding) is ignored."""
    inflater: bz2.BZ2Decompressor | None = bz2.BZ2Decompressor()
    pending = b""
    async for chunk in chunks:
        data, pending = pending + chunk, b""
        while data and inflater is not None:
            if inflater.eof:
                if len(data) < len(BZIP2_MAGIC):
                    pending = data
                    break
                if not data.startswith(BZIP2_MAGIC):
                    inflater = None
                    break
                inflater = bz2.BZ2Decompressor()
            for out in _bunzip_all(inflater, data):
                yield out
            data = inflater.unused_data if inflater.eof else b""


def _bunzip_all(inflater: bz2.BZ2Decompressor, data: bytes) -> Iterator[bytes]:
    """All the output ``data`` gives, ``STEP`` bytes at a time."""
    try:
        out = inflater.decompress(data, STEP)
        while True:
            if out:
                yield out
            if inflater.eof or inflater.needs_input:
                return
            out = inflater.decompress(b"", STEP)
    except (OSError, EOFError, ValueError) as exc:
        raise ArchiveError("invalid compressed data") from exc


# -- bytes -------------------------------------------------------------------------------------
class ByteReader:
    """Exact and partial reads over an async iterator of byte chunks."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._pos = 0
        self._eof = False

    async def _more(self) -> bool:
        while not self._eof:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._eof = True
                break
            if chunk:
                self._buffer, self._pos = chunk, 0
                return True
        return False

    async def read_some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes; empty only at the end of the stream."""
        if self._pos >= len(self._buffer) and not await self._more():
            return b""
        piece = self._buffer[self._pos:self._pos + limit]
        self._pos += len(piece)
        return piece

    async def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the stream."""
        parts: list[bytes] = []
        while size > 0:
            piece = await self.read_some(size)
            if not piece:
                break
            parts.append(piece)
            size -= len(piece)
        return b"".join(parts)

    async def skip(self, size: int) -> int:
        """Discard ``size`` bytes; how many there were."""
        skipped = 0
        while skipped < size:
            piece = await self.read_some(min(size - skipped, STEP))
            if not piece:
                break
            skipped += len(piece)
        return skipped


# -- tar ---------------------------------------------------------------------------------------
def _blocks(size: int) -> int:
    """``size`` rounded up to whole blocks."""
    return -(-size // BLOCK) * BLOCK


def _first_header_error(exc: tarfile.HeaderError) -> str:
    """What ``tarfile.open`` says when the first header cannot be read."""
    message = str(exc)
    return "empty file" if message in ("end of file header", "empty header") else message


def parse_pax(data: bytes) -> dict[str, str]:
    """pax extended header records (``"<len> <key>=<value>\\n"``)."""
    records: dict[str, str] = {}
    pos = 0
    while match := PAX_RECORD.match(data, pos):
        length = int(match.group(1))
        end = match.start(1) + length
        if length < len(match.group(0)) + 1 or end > len(data) or data[end - 1:end] != b"\n":
            raise ArchiveError("invalid header")
        key = match.group(2).decode(ENCODING, ERRORS)
        records[key] = data[match.end():end - 1].decode(ENCODING, ERRORS)
        pos = end
    return records


@dataclass
class _Extended:
    """What the extended headers in front of a member said."""

    names: list[str] = field(default_factory=list)
    pax: dict[str, str] = field(default_factory=dict)


class TarReader:
    """The members of a tar stream, one at a time (see the module docstring)."""

    def __init__(self, source: ByteReader) -> None:
        self._source = source
        self._started = False
        self._ended = False
        self._left = 0  # data of the current member not read yet
        self._pending = 0  # ... and its padding: what ``next`` skips first
        self._global_pax: dict[str, str] = {}

    async def next(self) -> Member | None:
        """The next member, None at the end of the archive."""
        if self._ended:
            return None
        await self._skip_pending()
        try:
            header = await self._header()
        except tarfile.HeaderError as exc:
            self._ended = True
            if not self._started:
                raise ArchiveError(_first_header_error(exc)) from None
            return None
        self._started = True
        extended = _Extended(pax=dict(self._global_pax))
        while header.type in EXTENDED_TYPES:
            await self._read_extended(header, extended)
            try:
                header = await self._header()
            except tarfile.HeaderError:
                raise ArchiveError(SUBSEQUENT) from None
        return await self._member(header, extended)

    def data(self) -> AsyncIterator[bytes]:
        """The current member's data (each byte once; see ``MemberData``)."""
        return MemberData(self)

    async def read_data(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the current member; empty at its end."""
        if self._left <= 0:
            return b""
        piece = await self._source.read_some(min(limit, self._left))
        if not piece:
            raise ArchiveError("unexpected end of data")
        self._left -= len(piece)
        self._pending -= len(piece)
        return piece

    async def _skip_pending(self) -> None:
        if self._pending:
            skipped = await self._source.skip(self._pending)
            if skipped < self._pending:
                raise ArchiveError("unexpected end of data")
        self._left = self._pending = 0

    async def _header(self) -> tarfile.TarInfo:
        block = await self._source.read(BLOCK)
        return tarfile.TarInfo.frombuf(block, ENCODING, ERRORS)

    async def _read_extended(self, header: tarfile.TarInfo, extended: _Extended) -> None:
        if header.size > MAX_EXTENDED_HEADER:
            raise ArchiveError("extended header too large")
        padded = _blocks(header.size)
        data = await self._source.read(padded)
        if len(data) < padded:
            raise ArchiveError("unexpected end of data")
        data = data[:header.size]
        if header.type == tarfile.GNUTYPE_LONGNAME:
            extended.names.append(data.split(b"\0", 1)[0].decode(ENCODING, ERRORS))
        elif header.type in PAX_TYPES:
            records = parse_pax(data)
            if header.type == tarfile.XGLTYPE:
                self._global_pax.update(records)
            elif "path" in records:
                extended.names.append(records["path"])
            extended.pax.update(records)

    async def _member(self, header: tarfile.TarInfo, extended: _Extended) -> Member:
        pax = extended.pax
        name = extended.names[0] if extended.names else pax.get("path", header.name)
        size = header.size
        if "size" in pax:
            size = int(pax["size"]) if pax["size"].isdigit() else 0
        sparse = header.type == tarfile.GNUTYPE_SPARSE or any(
            key.startswith("GNU.sparse.") for key in pax)
        if header.type == tarfile.GNUTYPE_SPARSE:
            await self._skip_sparse_map(header)
        name = pax.get("GNU.sparse.name", name)
        if header.type in tarfile.REGULAR_TYPES or header.type not in tarfile.SUPPORTED_TYPES:
            self._left, self._pending = size, _blocks(size)
        return Member(name=name, size=size, type=header.type, pax=pax, sparse=sparse)

    async def _skip_sparse_map(self, header: tarfile.TarInfo) -> None:
        """The extension blocks of an old GNU sparse header (its map goes on in them)."""
        extended = bool(getattr(header, "_sparse_structs", ((), False, 0))[1])
        while extended:
            block = await self._source.read(BLOCK)
            if len(block) < BLOCK:
                raise ArchiveError("unexpected end of data")
            extended = bool(block[504])


class MemberData:
    """An async iterator over the current member's data, ``STEP`` bytes at most per
    piece; ``ArchiveError`` when the archive ends inside it."""

    def __init__(self, reader: TarReader) -> None:
        self._reader = reader

    def __aiter__(self) -> MemberData:
        return self

    async def __anext__(self) -> bytes:
        piece = await self._reader.read_data(STEP)
        if not piece:
            raise StopAsyncIteration
        return piece
