"""``pocketstack up --workers 2``: two processes serve the object storage port.

Each connection is served by one process; which one is the kernel's choice
(SO_REUSEPORT), so the test opens connections until both processes hold some, finds the
owner of each from /proc, and checks that PUT, GET and listings work through both, that a
container created through one worker is seen at once through the other, that a worker
killed is replaced, and that no process outlives the cloud. The worker is the child of
the workers' supervisor, itself the child of ``pocketstack up``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.conftest import RunningCloud
from tests.ports import free_port
from tests.procs import alive, children, descendants

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")




def _family(parent: int) -> tuple[int, list[int]]:
    """(the workers' supervisor, its workers) under ``pocketstack up``."""
    deadline = time.monotonic() + 10
    while True:
        (supervisor,) = children(parent)
        workers = [pid for pid in children(supervisor) if alive(pid)]
        if workers or time.monotonic() > deadline:
            return supervisor, workers
        time.sleep(0.05)



def _connection_owners(port: int, pids: list[int]) -> dict[int, int]:
    """{client-side port: pid of the server process holding that connection}."""
    inode2client: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                inode2client[inode] = int(remote.rsplit(":", 1)[1], 16)
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inode2client:
                owners[inode2client[target[8:-1]]] = pid
    return owners


@pytest.fixture
def workers_cloud(tmp_path: Path) -> Iterator[RunningCloud]:
    cloud = RunningCloud(data_dir=tmp_path / "cloud", clouds_yaml=tmp_path / "clouds.yaml",
                         ports={"identity": free_port(), "object-store": free_port(),
                                "image": free_port()},
                         extra_args=["--workers", "2"])
    cloud.start()
    assert cloud.process is not None
    family = [cloud.process.pid, *descendants(cloud.process.pid)]
    yield cloud
    cloud.stop()  # a no-op when the test stopped it
    for pid in family:  # a failed test must not leave a worker behind either
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _clients_per_worker(cloud: RunningCloud, token: str, pids: list[int]
                        ) -> dict[int, list[httpx.Client]]:
    """Keep-alive clients (one connection each), grouped by the process serving them."""
    port = cloud.ports["object-store"]
    by_pid: dict[int, list[httpx.Client]] = {pid: [] for pid in pids}
    seen: set[int] = set()
    for _ in range(64):
        client = httpx.Client(base_url=cloud.objectstore_url, headers={"X-Auth-Token": token},
                              limits=httpx.Limits(max_connections=1), timeout=30)
        assert client.get("/healthcheck").status_code == 200
        owners = _connection_owners(port, pids)
        new = [p for p in owners if p not in seen]
        assert len(new) == 1, owners
        seen.add(new[0])
        by_pid[owners[new[0]]].append(client)
        if all(len(clients) >= 2 for clients in by_pid.values()):
            break
    return by_pid


def test_two_workers_serve_and_stop_cleanly(workers_cloud: RunningCloud) -> None:
    cloud = workers_cloud
    assert cloud.process is not None
    parent = cloud.process.pid
    supervisor, children = _family(parent)
    assert len(children) == 1, children  # workers=2: this process and one fork
    pids = [parent, *children]
    token = cloud.admin_token()
    account = httpx.get(f"{cloud.auth_url}/auth/tokens", headers={
        "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["project"]["id"]
    by_pid = _clients_per_worker(cloud, token, pids)
    assert all(len(clients) >= 2 for clients in by_pid.values()), by_pid
    first, second = (by_pid[pid] for pid in pids)
    base = f"/v1/AUTH_{account}"

    # a container unknown to worker 2 (cached as missing), then created through worker 1,
    # is usable through worker 2 at once
    assert second[0].head(f"{base}/shared").status_code == 404
    assert first[0].put(f"{base}/shared").status_code == 201
    names = []
    for number, client in enumerate([*first, *second]):
        name = f"o{number}"
        body = f"body {number}".encode() * 1000
        assert client.put(f"{base}/shared/{name}", content=body).status_code == 201
        names.append(name)
        for reader in (first[0], second[0]):
            got = reader.get(f"{base}/shared/{name}")
            assert got.status_code == 200 and got.content == body
    for client in (first[-1], second[-1]):
        listing = client.get(f"{base}/shared", params={"format": "json"})
        assert sorted(o["name"] for o in listing.json()) == sorted(names)
    for clients in by_pid.values():
        for client in clients:
            client.close()

    assert cloud.stop() == 0, cloud.log()
    family = [*pids, supervisor]
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in family), cloud.log()[-3000:]


def test_a_killed_worker_is_replaced(workers_cloud: RunningCloud) -> None:
    cloud = workers_cloud
    assert cloud.process is not None
    supervisor, (worker,) = _family(cloud.process.pid)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        replacement = [pid for pid in children(supervisor) if pid != worker and alive(pid)]
        if replacement and _serves(cloud, replacement[0]):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no worker in place of {worker}: {cloud.log()[-3000:]}")
    assert "exited (status -9)" in cloud.log() and "replacing it" in cloud.log()


def _serves(cloud: RunningCloud, pid: int) -> bool:
    """Whether ``pid`` takes some of a few new connections to the object storage port."""
    clients = [httpx.Client(base_url=cloud.objectstore_url, timeout=10) for _ in range(16)]
    try:
        for client in clients:
            if client.get("/healthcheck").status_code != 200:
                return False
        return pid in _connection_owners(cloud.ports["object-store"], [pid]).values()
    finally:
        for client in clients:
            client.close()


def test_a_killed_parent_leaves_no_worker_behind(workers_cloud: RunningCloud) -> None:
    cloud = workers_cloud
    assert cloud.process is not None
    supervisor, children = _family(cloud.process.pid)
    assert len(children) == 1
    cloud.process.send_signal(signal.SIGKILL)
    cloud.process.wait(10)
    deadline = time.monotonic() + 15
    while (alive(children[0]) or alive(supervisor)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(children[0]) and not alive(supervisor)
