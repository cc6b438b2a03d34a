"""A container server that hangs (SIGSTOP) while objects are written into its container.

Issue 5, "Done means": the container listing stays consistent: after a container-server
outage, async pendings replay and the listing matches the objects, on every replica of
the container's database, not only in what the proxy answers. The storage nodes' updaters
run on their own schedule here (every second; the replicator is off, so the missing rows
can only come from the async pendings).
"""

from __future__ import annotations

import time

from tests.integration.scaleout.conftest import MakeCluster
from tests.integration.scaleout.repair import UPDATER_ENV, wait_repaired
from tests.integration.scaleout.workload import bodies, read_back, write_many

BEFORE = 20
DURING = 60


def test_listing_converges_after_container_server_outage(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(hosts=3, devices=("d1", "d2"), node_env=UPDATER_ENV)
    client = cluster.proxies[0].admin_account()
    assert client.request("PUT", "c").status_code == 201
    before = bodies(BEFORE, seed=60, prefix="before", big_every=0)
    assert len(write_many(client, "c", before).acknowledged) == BEFORE
    replicas = cluster.container_rows(client.account, "c")
    assert len(replicas) == 3 and all(rows == sorted(before) for rows in replicas.values())
    hung = cluster.host(sorted(replicas, key=str)[0].host)

    hung.pause()
    during = bodies(DURING, seed=61, prefix="during", big_every=0)
    started = time.monotonic()
    writes = write_many(client, "c", during)
    took = time.monotonic() - started
    assert len(writes.acknowledged) == DURING, dict(writes.count())
    pendings = cluster.async_pendings()
    rows = cluster.container_rows(client.account, "c")
    stale = [p for p in rows if p.host == hung.name]
    assert stale and all(rows[p] == sorted(before) for p in stale), rows
    assert pendings >= DURING, f"{pendings} async pendings for {DURING} missed updates"
    assert sorted(client.names("c")) == sorted({**before, **during})

    hung.resume()
    everything = sorted({**before, **during})

    def converged() -> bool:
        rows = cluster.container_rows(client.account, "c")
        return cluster.async_pendings() == 0 and len(rows) == 3 and \
            all(names == everything for names in rows.values())

    replayed_in = wait_repaired(converged)
    reads = read_back(client, "c", {**before, **during})
    assert len(reads.exact) == BEFORE + DURING, reads.summary()
    assert sorted(client.names("c")) == everything
    print(f"\n[container outage] {hung.name} hung (SIGSTOP) while {DURING} objects were "
          f"written ({took:.1f}s, all 201): {pendings} async pendings; after SIGCONT "
          f"0 pendings and 3/3 container replicas list exactly the {len(everything)} "
          f"objects {replayed_in:.1f}s later (the updater runs every second)")
