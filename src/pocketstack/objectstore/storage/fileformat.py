"""The bytes of an object file (.data, .meta, .ts): body, then metadata, then a footer.

Layout of format version 2, written since 2026-11-25 (all integers big-endian)::

    offset 0                  body          body_length bytes (empty for .meta and .ts)
    body_length               metadata      meta_length bytes: a JSON object of str -> str,
                                            sorted keys, compact separators, ASCII only
    body_length+meta_length   footer        28 bytes:
                                              u64 body_length
                                              u32 meta_length
                                              u32 crc32(metadata + the u32 below)
                                              u32 crc32(body)
                                              u16 flags (0; reserved)
                                              u16 format version (2)
                                              4s  magic b"PSOF"

Version 1 (read, no longer written) has the same layout without the body's CRC-32, and
its metadata checksum covers the metadata alone.

Why this shape:
- The body is the first ``body_length`` bytes, so a reader (or sendfile) serves it straight
  from offset 0, and the whole file - body and metadata - is published by one rename.
- Metadata lives in the file, not in xattrs (ext4 caps xattrs near one block; Swift objects
  may carry 90 user metadata items of 4 KiB total plus system metadata).
- The last 6 bytes (version + magic) sit at a fixed place for every version, so a reader
  finds the version first and then the version's footer layout (``_FORMATS``).
- The footer repeats the body length and checksums the metadata, so truncation and bit rot
  in the metadata are detected on open (and the file quarantined).
- The body's CRC-32 lets a GET check a whole body for bit rot at a sixth of an MD5's CPU
  (16 against 88 ms per 64 MiB here). It is computed from the very chunks that the ETag's
  MD5 is computed from, as they are written. The auditor and the replicator still check
  the MD5 against the ETag as well (docs/architecture.md, on writes and reads).
- JSON, never pickle: reading a file can never execute code, and the bytes are
  deterministic for equal metadata.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Mapping
from typing import ClassVar, Final, NamedTuple

from pocketstack.objectstore.storage.types import Metadata

MAGIC: Final = b"PSOF"
_TAIL = struct.Struct(">H4s")  # version, magic: the same for every format version
_READ_AHEAD: Final = 4096


class CorruptObjectFile(ValueError):
    """The file is not a valid object file (truncated, bad magic, bad checksum, bad JSON)."""


class _FormatV1:
    version: ClassVar[int] = 1
    footer: ClassVar[struct.Struct] = struct.Struct(">QIIHH4s")

    @classmethod
    def check(cls, footer: bytes, meta_blob: bytes) -> tuple[bool, None]:
        """(whether the metadata's checksum holds, no body CRC)."""
        _body_length, _meta_length, crc, _flags, _version, _magic = cls.footer.unpack(footer)
        return zlib.crc32(meta_blob) == crc, None


class _FormatV2:
    version: ClassVar[int] = 2
    footer: ClassVar[struct.Struct] = struct.Struct(">QIIIHH4s")
    _body_crc: ClassVar[struct.Struct] = struct.Struct(">I")

    @classmethod
    def _meta_crc(cls, meta_blob: bytes, body_crc: int) -> int:
        # also covers the body's CRC, so that bits rotting in it are found on open
        return zlib.crc32(cls._body_crc.pack(body_crc), zlib.crc32(meta_blob))

    @classmethod
    def pack(cls, body_length: int, meta_blob: bytes, body_crc: int) -> bytes:
        return cls.footer.pack(body_length, len(meta_blob), cls._meta_crc(meta_blob, body_crc),
                               body_crc, 0, cls.version, MAGIC)

    @classmethod
    def check(cls, footer: bytes, meta_blob: bytes) -> tuple[bool, int]:
        """(whether the metadata's checksum holds, the body's CRC-32)."""
        _body_length, _meta_length, crc, body_crc, _flags, _version, _magic = \
            cls.footer.unpack(footer)
        return cls._meta_crc(meta_blob, body_crc) == crc, body_crc


_FORMATS: Final[dict[int, type[_FormatV1] | type[_FormatV2]]] = {
    fmt.version: fmt for fmt in (_FormatV1, _FormatV2)}
CURRENT_FORMAT: Final = _FormatV2
_SIZES: Final = struct.Struct(">QI")  # body_length, meta_length: how every footer starts


class Trailer(NamedTuple):
    """What an object file's trailer says about it."""

    body_length: int
    metadata: Metadata
    body_crc: int | None  # CRC-32 of the body; None in a version 1 file


def encode_metadata(metadata: Mapping[str, str]) -> bytes:
    """Deterministic JSON bytes of a str -> str mapping."""
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str, got {key!r}: {value!r}")
    return json.dumps(dict(metadata), sort_keys=True, separators=(",", ":")).encode("ascii")


_STRINGS_ONLY: Final = frozenset({str})


def decode_metadata(blob: bytes) -> Metadata:
    try:
        value = json.loads(blob.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptObjectFile(f"unreadable metadata: {exc}") from exc
    # JSON object keys are always strings; the values' types are checked in C (every
    # object read decodes metadata)
    if not isinstance(value, dict) or not set(map(type, value.values())) <= _STRINGS_ONLY:
        raise CorruptObjectFile("metadata is not an object of strings")
    return value


def encode_trailer(body_length: int, metadata: Mapping[str, str], *, body_crc: int) -> bytes:
    """What follows a body of ``body_length`` bytes whose CRC-32 is ``body_crc``: metadata,
    then the footer."""
    blob = encode_metadata(metadata)
    return blob + CURRENT_FORMAT.pack(body_length, blob, body_crc)


def encode_file(body: bytes, metadata: Mapping[str, str]) -> bytes:
    """A whole object file in memory (small files: .meta, .ts, tests)."""
    return body + encode_trailer(len(body), metadata, body_crc=zlib.crc32(body))


def read_trailer(fd: int, file_size: int) -> Trailer:
    """The trailer of the object file open on ``fd``; CorruptObjectFile if it is bad.

    One pread of the last 4 KiB usually gets both footer and metadata.
    """
    window = min(file_size, _READ_AHEAD)
    tail = os.pread(fd, window, file_size - window)
    if len(tail) < _TAIL.size:
        raise CorruptObjectFile("file too short for a footer")
    version, magic = _TAIL.unpack(tail[-_TAIL.size :])
    fmt = _FORMATS.get(version)
    if magic != MAGIC or fmt is None:
        raise CorruptObjectFile(f"bad footer (magic {magic!r}, version {version})")
    footer_size = fmt.footer.size
    if len(tail) < footer_size:
        raise CorruptObjectFile("file too short for a footer")
    footer = tail[-footer_size:]
    body_length, meta_length = _SIZES.unpack_from(footer)
    if body_length + meta_length + footer_size != file_size:
        raise CorruptObjectFile(
            f"sizes disagree: body {body_length} + metadata {meta_length} + footer "
            f"{footer_size} != file {file_size}"
        )
    if meta_length + footer_size <= len(tail):
        blob = tail[len(tail) - footer_size - meta_length : len(tail) - footer_size]
    else:
        blob = os.pread(fd, meta_length, body_length)
    intact, body_crc = fmt.check(footer, blob)
    if len(blob) != meta_length or not intact:
        raise CorruptObjectFile("metadata checksum mismatch")
    return Trailer(body_length, decode_metadata(blob), body_crc)
