"""The auditor: bad object files and databases are quarantined, then the replicator puts
a good copy back (byte for byte), on a real devices tree (`conftest.Tiny`)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from tests.unit.objectstore.daemons.conftest import Tiny, ts

from pocketstack.objectstore.daemons.auditor import Auditor
from pocketstack.objectstore.daemons.replicator import Replicator
from pocketstack.objectstore.daemons.schedule import RateLimiter
from pocketstack.objectstore.storage.exceptions import DiskFileQuarantined

pytestmark = pytest.mark.anyio


def auditor(tiny: Tiny, **options: float) -> Auditor:
    return Auditor(tiny.node, tiny.cluster.local_devices, lambda: [0], **options)


def data_path(tiny: Tiny, device: str, obj: str) -> Path:
    part, _p, _h = tiny.object_part(obj)
    name_hash = tiny.hasher.hexdigest("a", "c", obj)
    hash_dir = tiny.devices_root / device / "objects" / str(part) / name_hash[-3:] / name_hash
    (path,) = hash_dir.glob("*.data")
    return path


def flip_a_byte(path: Path, offset: int = 10) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


async def test_a_corrupt_replica_is_quarantined_and_restored(tiny: Tiny) -> None:
    part, primaries, _h = tiny.object_part("o")
    data = bytes(range(256)) * 100
    await tiny.put("o", data, ts(), primaries)
    good = tiny.files(primaries[0], "o")
    flip_a_byte(data_path(tiny, primaries[1], "o"))
    audit = await auditor(tiny).run_pass()
    total = audit.total()
    assert (total.quarantined, total.files) == (1, 2)  # the bad one is not counted as read
    assert audit.devices[primaries[1]].quarantined == 1
    assert tiny.files(primaries[1], "o") == {}
    quarantined = tiny.devices_root / primaries[1] / "quarantined" / "objects"
    assert len(list(quarantined.rglob("*.data"))) == 1
    await Replicator(tiny.cluster).run_pass()
    assert tiny.files(primaries[1], "o") == good  # byte for byte
    info, body = await tiny.node.get_object(primaries[1], part, "a", "c", "o", policy=0)
    assert b"".join([chunk async for chunk in body]) == data
    assert (await auditor(tiny).run_pass()).total().quarantined == 0


async def test_a_corrupt_replica_is_never_pushed(tiny: Tiny) -> None:
    """The replicator reads through the same verifying reader: a bad local copy is
    quarantined instead of sent, and the peer's good copy comes back."""
    _part, primaries, _h = tiny.object_part("o")
    await tiny.put("o", b"z" * 5000, ts(), primaries[:1])
    flip_a_byte(data_path(tiny, primaries[0], "o"))
    done = await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == set() and done.total().objects_pushed == 0
    assert done.total().failures == 1


async def test_corrupt_metadata_is_quarantined_on_open(tiny: Tiny) -> None:
    _part, primaries, _h = tiny.object_part("o")
    await tiny.put("o", b"abc", ts(), primaries)
    path = data_path(tiny, primaries[2], "o")
    flip_a_byte(path, offset=path.stat().st_size - 30)  # inside the metadata
    assert (await auditor(tiny).run_pass()).total().quarantined == 1
    await Replicator(tiny.cluster).run_pass()
    assert tiny.holders("o") == set(primaries)


async def test_a_corrupt_database_is_quarantined_and_rebuilt(tiny: Tiny) -> None:
    part, primaries, _h = tiny.container_part()
    for device in primaries:
        await tiny.node.put_container(device, part, "a", "c", timestamp=ts())
        for i in range(20):
            await tiny.node.update_container_listing(
                device, part, "a", "c", f"o{i}", timestamp=ts(i), size=i, content_type="t",
                etag="e",
            )  # fmt: skip
    await tiny.node.close()  # checkpoint: every row is in the main file
    (db,) = (tiny.devices_root / primaries[0] / "containers").rglob("*.db")
    with db.open("r+b") as handle:  # wreck the pages after the header
        handle.seek(4096)
        handle.write(b"\xff" * 8192)
    audit = await auditor(tiny).run_pass()
    assert audit.total().dbs_quarantined == 1 and audit.total().dbs == 2
    assert list((tiny.devices_root / primaries[0] / "quarantined" / "containers").iterdir())
    await Replicator(tiny.cluster).run_pass()
    listing = await tiny.node.list_objects(primaries[0], part, "a", "c")
    assert [e.name for e in listing.entries] == sorted(f"o{i}" for i in range(20))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)


async def test_the_auditor_keeps_to_its_rate(tiny: Tiny) -> None:
    _part, primaries, _h = tiny.object_part("o")
    await tiny.put("o", b"x" * 100_000, ts(), primaries)
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    audit = auditor(tiny, files_per_second=0)
    audit.byte_rate = RateLimiter(1_000_000, clock=lambda: now[0], sleep=sleep)
    done = await audit.run_pass()
    assert done.total().bytes == 300_000
    assert now[0] == pytest.approx(0.3)  # 300 kB at 1 MB/s


def test_rate_limiter_paces_to_the_rate() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def take(limiter: RateLimiter, count: int, amount: float) -> None:
        for _ in range(count):
            await limiter.take(amount)

    limiter = RateLimiter(100, clock=lambda: now[0], sleep=sleep)
    asyncio.run(take(limiter, 5, 100))
    assert now[0] == pytest.approx(5.0)  # one second per hundred
    now[0] += 60  # idle: at most one second's worth goes at once
    asyncio.run(take(limiter, 3, 100))
    assert now[0] == pytest.approx(67.0)
    asyncio.run(take(RateLimiter(0, clock=lambda: now[0], sleep=sleep), 3, 10**9))
    assert now[0] == pytest.approx(67.0)  # 0: no limit


async def test_quarantined_errors_name_the_file(tiny: Tiny) -> None:
    part, primaries, _h = tiny.object_part("o")
    await tiny.put("o", b"q" * 3000, ts(), primaries[:1])  # one chunk: read ahead at once
    flip_a_byte(data_path(tiny, primaries[0], "o"))
    (stamp,) = await tiny.node.list_object_stamps(primaries[0], part)
    with pytest.raises(DiskFileQuarantined, match=stamp.files[0]):
        await tiny.node.get_object_file(primaries[0], part, stamp.name_hash, stamp.files[0])
