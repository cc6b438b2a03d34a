"""The object file format: body, JSON metadata, versioned footer."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from pocketstack.objectstore.storage.fileformat import (
    MAGIC,
    CorruptObjectFile,
    Trailer,
    decode_metadata,
    encode_file,
    encode_metadata,
    encode_trailer,
    read_trailer,
)


def _read(path: Path) -> Trailer:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_trailer(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def test_body_comes_first_then_metadata_then_footer(tmp_path: Path) -> None:
    path = tmp_path / "f"
    metadata = {"X-Timestamp": "0000000001.00000", "Content-Type": "text/plain"}
    path.write_bytes(encode_file(b"hello", metadata))
    raw = path.read_bytes()
    assert raw.startswith(b"hello")
    assert raw.endswith(MAGIC)
    assert _read(path) == (5, metadata, zlib.crc32(b"hello"))


def test_metadata_bytes_are_deterministic() -> None:
    assert encode_metadata({"b": "1", "a": "é"}) == encode_metadata({"a": "é", "b": "1"})
    assert encode_metadata({"a": "é"}) == b'{"a":"\\u00e9"}'


def test_metadata_must_be_strings() -> None:
    with pytest.raises(TypeError):
        encode_metadata({"a": 1})  # type: ignore[dict-item]


def test_large_metadata_beyond_the_read_ahead_window(tmp_path: Path) -> None:
    metadata = {f"X-Object-Meta-{i}": "v" * 200 for i in range(90)}
    metadata["X-Object-Sysmeta-Big"] = "s" * 100_000
    path = tmp_path / "f"
    path.write_bytes(encode_file(b"x" * 10, metadata))
    assert _read(path) == (10, metadata, zlib.crc32(b"x" * 10))


def test_unicode_and_odd_values_round_trip(tmp_path: Path) -> None:
    metadata = {"name": "/a/c/\x00\udcff\U0001f600..", "k": '\n\t"'}
    path = tmp_path / "f"
    path.write_bytes(encode_file(b"", metadata))
    assert _read(path)[1] == metadata


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1],  # truncated footer
        lambda raw: raw[:3],  # tiny
        lambda raw: b"",  # empty
        lambda raw: raw[:-4] + b"XXXX",  # bad magic
        lambda raw: raw[:-6] + struct.pack(">H", 99) + MAGIC,  # unknown version
        lambda raw: raw[:10] + b"!" + raw[11:],  # metadata bit rot (crc)
        lambda raw: raw[:-10] + bytes([raw[-10] ^ 1]) + raw[-9:],  # the body's crc rots
        lambda raw: b"extra" + raw,  # sizes disagree
    ],
)
def test_corruption_is_detected(tmp_path: Path, mangle) -> None:  # type: ignore[no-untyped-def]
    raw = encode_file(b"body", {"a": "1", "name": "xyz"})
    path = tmp_path / "f"
    path.write_bytes(mangle(raw))
    with pytest.raises(CorruptObjectFile):
        _read(path)


def test_valid_crc_but_not_json_is_corrupt(tmp_path: Path) -> None:
    blob = b"[1, 2]"
    footer = struct.pack(">QIIHH4s", 0, len(blob), zlib.crc32(blob), 0, 1, MAGIC)
    path = tmp_path / "f"
    path.write_bytes(blob + footer)
    with pytest.raises(CorruptObjectFile):
        _read(path)
    with pytest.raises(CorruptObjectFile):
        decode_metadata(b"\xff")


def test_version_1_files_are_still_read_without_a_body_crc(tmp_path: Path) -> None:
    """Files written before the body's CRC (format 1) open as before; their body is then
    checked against its md5 (test_diskfile_io)."""
    blob = encode_metadata({"name": "/a/c/o"})
    footer = struct.pack(">QIIHH4s", 4, len(blob), zlib.crc32(blob), 0, 1, MAGIC)
    path = tmp_path / "f"
    path.write_bytes(b"body" + blob + footer)
    assert _read(path) == (4, {"name": "/a/c/o"}, None)


def test_the_trailer_carries_the_crc_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"body" + encode_trailer(4, {"a": "1"}, body_crc=0xDEADBEEF))
    assert _read(path).body_crc == 0xDEADBEEF
