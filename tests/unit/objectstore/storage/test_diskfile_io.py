"""The shared digests (md5 and CRC-32) of replica writers, and writev_all."""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from pathlib import Path

import pytest

from pocketstack.objectstore.storage.diskfile_io import SharedDigest, writev_all


def test_each_chunk_is_hashed_once_whichever_writer_gets_there_first() -> None:
    chunks = [os.urandom(n) for n in (10, 0, 5000, 1)]
    shared = SharedDigest()
    first, second, late = shared.view(), shared.view(), shared.view()
    for chunk in chunks[:2]:
        first.update(chunk)
    for chunk in chunks:
        second.update(chunk)
    for chunk in chunks[2:]:
        first.update(chunk)
    expected = hashlib.md5(b"".join(chunks)).hexdigest()
    crc = zlib.crc32(b"".join(chunks))
    assert first.hexdigest() == second.hexdigest() == expected
    assert first.crc32() == second.crc32() == crc
    for chunk in chunks:  # a handoff writer starting over from the first byte
        late.update(chunk)
    assert late.hexdigest() == expected and late.crc32() == crc


def test_a_writer_that_has_not_seen_every_chunk_gets_no_digest() -> None:
    shared = SharedDigest()
    ahead, behind = shared.view(), shared.view()
    ahead.update(b"a")
    ahead.update(b"b")
    behind.update(b"a")
    with pytest.raises(ValueError):
        behind.hexdigest()
    with pytest.raises(ValueError):
        behind.crc32()


def test_skipping_a_chunk_is_refused() -> None:
    shared = SharedDigest()
    with pytest.raises(ValueError):
        shared.update(1, b"x")


def test_concurrent_writers_agree() -> None:
    chunks = [os.urandom(4096) for _ in range(200)]
    shared = SharedDigest()
    views = [shared.view() for _ in range(3)]
    threads = [threading.Thread(target=lambda v=v: [v.update(c) for c in chunks])
               for v in views]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = hashlib.md5(b"".join(chunks)).hexdigest()
    assert {v.hexdigest() for v in views} == {expected}


def test_writev_all_writes_every_part_in_order(tmp_path: Path) -> None:
    parts = [os.urandom(n) for n in (1, 0, 70_000, 3)]
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        writev_all(fd, parts)
        writev_all(fd, [])
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(parts)
