"""The streaming tar reader of bulk's extract-archive: formats and compressions Python's
``tarfile`` writes, any chunking, what it skips, and the errors of broken input."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import tarfile
from collections.abc import AsyncIterator

import pytest

from pocketstack.objectstore.proxy.middleware.tarstream import (
    STEP,
    ArchiveError,
    ByteReader,
    Member,
    TarReader,
    decompressed,
    parse_pax,
)

pytestmark = pytest.mark.anyio
FILES = {"c/a.txt": b"hello", "c/" + "x" * 150 + "/long.bin": os.urandom(70_000),
         "c/\u00fcn\u00ef.txt": b"u", "c/empty": b""}


def archive(files: dict[str, bytes] = FILES, *, fmt: int = tarfile.PAX_FORMAT,
            extra: list[tarfile.TarInfo] | None = None,
            pax: dict[str, dict[str, str]] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = (pax or {}).get(name, {})
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buf.getvalue()


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def members(data: bytes, kind: str = "", *, size: int = 777,
                  read: bool = True) -> list[tuple[Member, bytes | None]]:
    reader = TarReader(ByteReader(decompressed(chunks(data, size), kind)))
    found: list[tuple[Member, bytes | None]] = []
    while (member := await reader.next()) is not None:
        body = None
        if member.is_file and read:
            body = b"".join([piece async for piece in reader.data()])
        found.append((member, body))
    return found


def files_of(found: list[tuple[Member, bytes | None]]) -> dict[str, bytes | None]:
    return {m.name: body for m, body in found if m.is_file}


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("size", [1, 511, 512, 777, 1 << 20])
async def test_every_format_and_chunking(fmt: int, size: int) -> None:
    data = archive(fmt=fmt)
    if size == 1:
        data = archive({"c/a": b"xyz", "c/" + "y" * 120: b"long"}, fmt=fmt)
        assert files_of(await members(data, size=1)) == {"c/a": b"xyz", "c/" + "y" * 120: b"long"}
        return
    assert files_of(await members(data, size=size)) == FILES


@pytest.mark.parametrize(("kind", "compress"), [("gz", gzip.compress), ("bz2", bz2.compress)])
async def test_compressed_archives(kind: str, compress: object) -> None:
    assert callable(compress)
    assert files_of(await members(compress(archive()), kind)) == FILES


async def test_multi_stream_bzip2_and_trailing_padding() -> None:
    raw = archive()
    data = bz2.compress(raw[:5000]) + bz2.compress(raw[5000:]) + b"\0" * 1024
    assert files_of(await members(data, "bz2")) == FILES
    assert files_of(await members(gzip.compress(raw) + b"\0" * 1024, "gz")) == FILES


async def test_decompression_is_bounded_per_piece() -> None:
    data = gzip.compress(archive({"c/zeros": b"\0" * (8 * STEP)}))
    reader = TarReader(ByteReader(decompressed(chunks(data, 1 << 20), "gz")))
    member = await reader.next()
    assert member is not None and member.size == 8 * STEP
    sizes = [len(piece) async for piece in reader.data()]
    assert max(sizes) <= STEP and sum(sizes) == 8 * STEP


async def test_unread_data_is_skipped() -> None:
    found = await members(archive(), read=False)
    assert [m.name for m, _ in found] == list(FILES)


async def test_special_members_carry_no_data() -> None:
    extra = []
    for name, kind in (("link", tarfile.SYMTYPE), ("hard", tarfile.LNKTYPE),
                       ("dir", tarfile.DIRTYPE), ("chr", tarfile.CHRTYPE),
                       ("fifo", tarfile.FIFOTYPE)):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, "/etc/passwd"
        extra.append(info)
    found = await members(archive({"c/first": b"1"}, extra=extra) + b"")
    assert [(m.name, m.is_file) for m, _ in found] == [
        ("c/first", True), ("link", False), ("hard", False), ("dir", False), ("chr", False),
        ("fifo", False)]


async def test_pax_records_and_global_headers() -> None:
    pax = {"c/a": {"SCHILY.xattr.user.meta.k": "v \u2713", "comment": "x=y"}}
    found = await members(archive({"c/a": b"1"}, pax=pax))
    assert found[0][0].pax["SCHILY.xattr.user.meta.k"] == "v \u2713"
    assert found[0][0].pax["comment"] == "x=y"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"owner": "global"}) as tar:
        for name in ("c/1", "c/2"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    found = await members(buf.getvalue())
    assert [(m.name, m.pax.get("owner")) for m, _ in found] == [("c/1", "global"),
                                                                ("c/2", "global")]


def test_parse_pax_refuses_bad_records() -> None:
    assert parse_pax(b"12 path=abc\n") == {"path": "abc"}
    with pytest.raises(ArchiveError):
        parse_pax(b"99 path=abc\n")
    with pytest.raises(ArchiveError):
        parse_pax(b"3 path=abc\n")


def _sparse_header(size: int, *, extended: bool) -> bytes:
    info = tarfile.TarInfo("c/sparse")
    info.type, info.size = tarfile.GNUTYPE_SPARSE, size
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    block[482] = 1 if extended else 0
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


async def test_old_gnu_sparse_members_are_flagged_and_skipped() -> None:
    data = os.urandom(1000)
    extension = bytearray(512)  # its own map entries (zeros), not extended further
    body = _sparse_header(len(data), extended=True) + bytes(extension) + data + \
        b"\0" * (1024 - len(data))
    tail = archive({"c/after": b"after"})
    found = await members(body + tail)
    assert [(m.name, m.sparse) for m, _ in found] == [("c/sparse", True), ("c/after", False)]
    assert found[1][1] == b"after"


@pytest.mark.parametrize(("data", "kind", "message"), [
    (b"", "", "empty file"),
    (b"\0" * 1024, "", "empty file"),
    (b"garbage" * 100, "", "invalid header"),
    (b"", "gz", "not a gzip file"),
    (b"x", "gz", "not a gzip file"),
    (b"PK\x03\x04" + b"\0" * 600, "gz", "not a gzip file"),
    (b"\x1f\x8b" + b"\xff" * 600, "gz", "invalid compressed data"),
    (b"BZh9" + b"\xff" * 600, "bz2", "invalid compressed data"),
    (archive()[:3000], "", "unexpected end of data"),
])
async def test_broken_input(data: bytes, kind: str, message: str) -> None:
    with pytest.raises(ArchiveError, match=f"^{message}$"):
        await members(data, kind)


async def test_bad_checksum_on_the_first_header() -> None:
    data = bytearray(archive({"c/a": b"1"}, fmt=tarfile.GNU_FORMAT))
    data[0] ^= 0xFF
    with pytest.raises(ArchiveError, match="^bad checksum$"):
        await members(bytes(data))


async def test_a_bad_header_after_the_first_member_ends_the_archive() -> None:
    data = bytearray(archive({"c/a": b"1", "c/b": b"2"}, fmt=tarfile.GNU_FORMAT))
    data[1024] ^= 0xFF  # the second member's header
    assert files_of(await members(bytes(data))) == {"c/a": b"1"}


async def test_long_name_without_a_member_after_it() -> None:
    data = archive({"c/" + "z" * 200: b"1"}, fmt=tarfile.GNU_FORMAT)
    with pytest.raises(ArchiveError, match="^missing or bad subsequent header$"):
        await members(data[:1024] + b"junk" * 128)


async def test_oversized_extended_headers_are_refused() -> None:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, 2 * 1024 * 1024
    with pytest.raises(ArchiveError, match="extended header too large"):
        await members(info.tobuf(tarfile.USTAR_FORMAT) + b"\0" * 4096)
