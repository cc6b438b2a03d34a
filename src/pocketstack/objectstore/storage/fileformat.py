"""The bytes of an object file (.data, .meta, .ts): body, then metadata, then a footer.

Layout of format version 1 (all integers big-endian)::

    offset 0                  body          body_length bytes (empty for .meta and .ts)
    body_length               metadata      meta_length bytes: a JSON object of str -> str,
                                            sorted keys, compact separators, ASCII only
    body_length+meta_length   footer        24 bytes:
                                              u64 body_length
                                              u32 meta_length
                                              u32 crc32(metadata)
                                              u16 flags (0; reserved)
                                              u16 format version (1)
                                              4s  magic b"PSOF"

Why this shape:
- The body is the first ``body_length`` bytes, so a reader (or sendfile) serves it straight
  from offset 0, and the whole file - body and metadata - is published by one rename.
- Metadata lives in the file, not in xattrs (ext4 caps xattrs near one block; Swift objects
  may carry 90 user metadata items of 4 KiB total plus system metadata).
- The last 6 bytes (version + magic) sit at a fixed place for every version, so a reader
  finds the version first and then the version's footer layout (``_FORMATS``).
- The footer repeats the body length and checksums the metadata, so truncation and bit rot
  in the metadata are detected on open (and the file quarantined); the body itself is
  checked against its ETag (md5) when it is read whole.
- JSON, never pickle: reading a file can never execute code, and the bytes are
  deterministic for equal metadata.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Mapping
from typing import ClassVar, Final

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
    def pack(cls, body_length: int, meta_blob: bytes) -> bytes:
        crc = zlib.crc32(meta_blob)
        return cls.footer.pack(body_length, len(meta_blob), crc, 0, cls.version, MAGIC)

    @classmethod
    def unpack(cls, footer: bytes) -> tuple[int, int, int]:
        """(body_length, meta_length, meta_crc32)."""
        body_length, meta_length, crc, _flags, _version, _magic = cls.footer.unpack(footer)
        return body_length, meta_length, crc


_FORMATS: Final = {fmt.version: fmt for fmt in (_FormatV1,)}
CURRENT_FORMAT: Final = _FormatV1


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


def encode_trailer(body_length: int, metadata: Mapping[str, str]) -> bytes:
    """What follows a body of ``body_length`` bytes: metadata, then the footer."""
    blob = encode_metadata(metadata)
    return blob + CURRENT_FORMAT.pack(body_length, blob)


def encode_file(body: bytes, metadata: Mapping[str, str]) -> bytes:
    """A whole object file in memory (small files: .meta, .ts, tests)."""
    return body + encode_trailer(len(body), metadata)


def read_trailer(fd: int, file_size: int) -> tuple[int, Metadata]:
    """(body_length, metadata) of the object file open on ``fd``; CorruptObjectFile if bad.

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
    body_length, meta_length, crc = fmt.unpack(tail[-footer_size:])
    if body_length + meta_length + footer_size != file_size:
        raise CorruptObjectFile(
            f"sizes disagree: body {body_length} + metadata {meta_length} + footer "
            f"{footer_size} != file {file_size}"
        )
    if meta_length + footer_size <= len(tail):
        blob = tail[len(tail) - footer_size - meta_length : len(tail) - footer_size]
    else:
        blob = os.pread(fd, meta_length, body_length)
    if len(blob) != meta_length or zlib.crc32(blob) != crc:
        raise CorruptObjectFile("metadata checksum mismatch")
    return body_length, decode_metadata(blob)
