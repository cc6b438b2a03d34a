"""Replication and auditing end to end.

Two storage hosts in this process (``server.runner.running``: real sockets, real
storage-node servers, each with its own devices and daemons, one set of rings): an outage,
a corrupt replica, ``/recon``. Then ``pocketstack up`` with fast daemon intervals: a device
outage heals by itself, a corrupt replica is replaced, and ``pocketstack status`` tells.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from tests.integration.conftest import RunningCloud, start_cloud
from tests.integration.objectstore.support import Swift, eventually, object_files
from tests.ports import free_port

from pocketstack.config import ObjectStoreSettings
from pocketstack.objectstore.daemons.status import gather_cluster, render
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.server.runner import StorageNodeOptions, running, storage_daemons
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.remote_node import RemoteNode
from pocketstack.objectstore.timestamp import Timestamp

HASHER = PathHasher(b"", b"replication-test")
QUIET = ObjectStoreSettings(
    replicator_interval=0,
    auditor_interval=0,
    updater_interval=3600,
    auditor_files_per_second=0,
    auditor_bytes_per_second=0,
)


# -- two storage hosts in this process ---------------------------------------------------


class Hosts:
    """Host ``A`` (devices a1, a2, a3) and host ``B`` (b1, b2), one zone per device, rings
    of 16 partitions and 3 replicas: with B down, A's devices can hold every replica."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rings = root / "rings"
        self.rings.mkdir()
        self.ports = {"A": free_port(), "B": free_port()}
        self.devices = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2"]}
        for name in ("account", "container", "object"):
            builder = RingBuilder(4, 3, 0)
            for zone, (host, device) in enumerate(self._all(), start=1):
                builder.add_dev(region=1, zone=zone, ip="127.0.0.1", port=self.ports[host],
                                device=device, weight=100)  # fmt: skip
            builder.rebalance(seed=1)
            builder.get_ring().save(self.rings / f"{name}.ring")
        for host, device in self._all():
            (root / host / device / "tmp").mkdir(parents=True)
        self.ring = Ring(self.rings / "object.ring", HASHER)
        self.urls: dict[str, str] = {}

    def _all(self) -> list[tuple[str, str]]:
        return [(host, device) for host, names in self.devices.items() for device in names]

    async def start(self, stack: AsyncExitStack, host: str) -> str:
        node = await stack.enter_async_context(
            LocalNode(self.root / host, hasher=HASHER, fsync=False)
        )
        options = StorageNodeOptions(
            self.root / host, "127.0.0.1", self.ports[host], HASHER, fsync=False,
            access_log=False, rings=self.rings, conf=QUIET,
        )  # fmt: skip
        started = storage_daemons(options, node)
        assert started is not None
        daemons, peers = started
        stack.push_async_callback(peers.close)
        url = await stack.enter_async_context(running(node, port=self.ports[host], recon=daemons))
        self.urls[host] = url
        return url

    def host_of(self, device: str) -> str:
        return next(h for h, names in self.devices.items() if device in names)

    def files(self, device: str, obj: str) -> dict[str, bytes]:
        digest = HASHER.hexdigest("a", "c", obj)
        base = self.root / self.host_of(device) / device
        return {p.name: p.read_bytes() for p in base.glob(f"objects/*/*/{digest}/*")}


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def write(hosts: Hosts, objects: dict[str, bytes], up: set[str]) -> list[str]:
    """Write like the proxy: every primary on a host that is up, else the next handoff.
    Returns the devices written to."""
    nodes = {host: RemoteNode(hosts.urls[host]) for host in up}
    written = []
    try:
        for obj, data in objects.items():
            part = hosts.ring.get_part("a", "c", obj)
            spares = (d for d in hosts.ring.get_more_nodes(part) if hosts.host_of(d.device) in up)
            when = Timestamp.now()
            for device in hosts.ring.get_part_nodes(part):
                target = device if hosts.host_of(device.device) in up else next(spares)
                await nodes[hosts.host_of(target.device)].put_object(
                    target.device, part, "a", "c", obj, policy=0, timestamp=when, metadata={},
                    body=body(data), content_length=len(data),
                )  # fmt: skip
                written.append(target.device)
    finally:
        for node in nodes.values():
            await node.close()
    return written


async def run(hosts: Hosts, host: str, daemon: str) -> dict:  # type: ignore[type-arg]
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{hosts.urls[host]}/recon/{daemon}")
        response.raise_for_status()
        return response.json()[daemon]  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_outage_heals_across_hosts(tmp_path: Path) -> None:
    hosts = Hosts(tmp_path)
    objects = {f"o{i}": os.urandom(2000 + i) for i in range(100)}
    async with AsyncExitStack() as stack:
        await hosts.start(stack, "A")
        hosts.urls["B"] = f"http://127.0.0.1:{hosts.ports['B']}"  # down for now
        written = await write(hosts, objects, {"A"})
        assert len(written) == 300 and all(d.startswith("a") for d in written)
        await hosts.start(stack, "B")
        started = time.monotonic()
        first = await run(hosts, "A", "replicator")
        elapsed = time.monotonic() - started
        pushed = first["last"]["total"]["objects_pushed"]
        assert first["last"]["total"]["failures"] == 0
        await run(hosts, "B", "replicator")
        for name, data in objects.items():
            part = hosts.ring.get_part("a", "c", name)
            for device in hosts.ring.get_part_nodes(part):
                files = hosts.files(device.device, name)
                assert len(files) == 1, (name, device.device, files)
                (content,) = files.values()
                assert content.startswith(data)
            holders = {d for h, names in hosts.devices.items() for d in names
                       if hosts.files(d, name)}  # fmt: skip
            assert len(holders) == 3, (name, holders)  # handoff copies removed
        print(f"\nreplicated {pushed} objects to host B in {elapsed:.2f}s "
              f"({pushed / elapsed:.0f} objects/s)")  # fmt: skip
        again = await run(hosts, "A", "replicator")
        assert again["last"]["total"]["objects_pushed"] == 0


@pytest.mark.anyio
async def test_a_corrupt_replica_is_restored_across_hosts(tmp_path: Path) -> None:
    hosts = Hosts(tmp_path)
    data = os.urandom(300_000)
    async with AsyncExitStack() as stack:
        for host in ("A", "B"):
            await hosts.start(stack, host)
        await write(hosts, {"o": data}, {"A", "B"})
        part = hosts.ring.get_part("a", "c", "o")
        victim = next(d.device for d in hosts.ring.get_part_nodes(part) if d.device[0] == "b")
        good = hosts.files(victim, "o")
        (path,) = (tmp_path / "B" / victim).glob("objects/*/*/*/*.data")
        with path.open("r+b") as handle:
            handle.seek(1000)
            handle.write(b"\x00" * 16)
        audit = await run(hosts, "B", "auditor")
        assert audit["last"]["total"]["quarantined"] == 1
        assert hosts.files(victim, "o") == {}
        await run(hosts, "A", "replicator")
        assert hosts.files(victim, "o") == good
        async with RemoteNode(hosts.urls["B"]) as node:
            _info, got = await node.get_object(victim, part, "a", "c", "o", policy=0)
            assert hashlib.md5(b"".join([c async for c in got])).digest() == \
                hashlib.md5(data).digest()  # fmt: skip
        document = await gather_cluster(hosts.rings, HASHER)
        assert [h["host"] for h in document["hosts"]] == sorted(
            f"127.0.0.1:{p}" for p in hosts.ports.values()
        )
        b_host = next(h for h in document["hosts"] if h["host"].endswith(str(hosts.ports["B"])))
        quarantined = {d["device"]: d["quarantined"] for d in b_host["devices"]}
        assert quarantined[victim] == {"objects": 1}
        console = Console(record=True, width=250)
        render(document, console)
        assert victim in console.export_text()


# -- pocketstack up ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def healing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running_cloud = start_cloud(
        tmp_path_factory.mktemp("healing"),
        POCKETSTACK_OBJECTSTORE__DEVICES="4",
        POCKETSTACK_OBJECTSTORE__REPLICATOR_INTERVAL="0.5",
        POCKETSTACK_OBJECTSTORE__AUDITOR_INTERVAL="0.5",
        POCKETSTACK_OBJECTSTORE__UPDATER_INTERVAL="0.5",
    )
    yield running_cloud
    code = running_cloud.stop()
    assert code == 0, f"exit {code}\n{running_cloud.log()}"


@pytest.fixture
def account(healing: RunningCloud) -> Iterator[Swift]:
    token = healing.admin_token()
    client = Swift(healing.objectstore_url, "", token)
    projects = client.http.get(
        f"{healing.auth_url}/auth/projects", headers={"X-Auth-Token": token}
    ).json()["projects"]
    client.account = "AUTH_" + next(p["id"] for p in projects if p["name"] == "admin")
    yield client
    client.close()


def status(cloud: RunningCloud) -> dict:  # type: ignore[type-arg]
    out = cloud.cli("pocketstack", "status", "--data-dir", str(cloud.data_dir), "--json")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_up_heals_an_outage_and_a_corrupt_replica(healing: RunningCloud, account: Swift) -> None:
    container = account.container()
    devices = healing.data_dir / "devices"
    objects = {f"o{i}": os.urandom(1000 + i) for i in range(30)}
    (devices / "d2").rename(devices / "d2-away")
    try:
        for name, data in objects.items():
            account.put(f"{container}/{name}", data)
    finally:
        (devices / "d2-away").rename(devices / "d2")
    primaries = Ring(healing.data_dir / "rings" / "object.ring",
                     _hasher(healing.data_dir))  # fmt: skip

    def healed() -> None:
        for name in objects:
            part = primaries.get_part(account.account, container, name)
            want = {d.device for d in primaries.get_part_nodes(part)}
            have = {
                p.relative_to(devices).parts[0]
                for p in object_files(healing.data_dir, account.account, container, name)
            }
            assert have == want, name  # fmt: skip

    eventually(healed, timeout=30)
    victim = object_files(healing.data_dir, account.account, container, "o7")[0]
    good = victim.read_bytes()
    victim.write_bytes(good[:100] + b"\xff" + good[101:])
    eventually(lambda: _same(victim, good), timeout=30)
    assert account.get(f"{container}/o7").content == objects["o7"]

    def passes_done() -> None:  # the replica may heal before the auditor's pass has ended
        (host,) = status(healing)["hosts"]
        assert host["replicator"]["passes"] >= 1 and host["auditor"]["passes"] >= 1

    eventually(passes_done, timeout=30)
    document = status(healing)
    (host,) = document["hosts"]
    assert sum(d["quarantined"].get("objects", 0) for d in host["devices"]) >= 1
    assert {d["device"] for d in host["devices"]} == {"d1", "d2", "d3", "d4"}
    table = healing.cli("pocketstack", "status", "--data-dir", str(healing.data_dir)).stdout
    assert "last replication" in table and "d4" in table and "Rings" in table


def _same(path: Path, data: bytes) -> None:
    assert path.exists() and path.read_bytes() == data


def _hasher(data_dir: Path) -> PathHasher:
    secret = json.loads((data_dir / "rings" / "hash_path.json").read_text())
    return PathHasher(secret["prefix"].encode(), secret["suffix"].encode())
