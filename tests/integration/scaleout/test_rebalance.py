"""Growing the cluster under load: a fourth host's devices join the rings.

Issue 5, "Done means": add a device and rebalance under load: after replication, all
objects are on their new primaries, nothing lost, and the moved-partition count is close
to the minimum (what the new devices' share of the weight asks for).
"""

from __future__ import annotations

import hashlib
import re
import time

from tests.integration.scaleout.conftest import MakeCluster
from tests.integration.scaleout.repair import REPAIR_ENV, replicate_until
from tests.integration.scaleout.topology import RING_NAMES, Cluster, StorageHost
from tests.integration.scaleout.workload import Load, bodies, read_back, write_many

MOVED = re.compile(r"Reassigned (\d+) of (\d+) replicas")
MAX_EXTRA_MOVES = 1.10
"""The rebalance may move at most 10% more replica slots than the new weight's share."""


def add_host(cluster: Cluster, host: StorageHost) -> tuple[int, int]:
    """An operator's steps: add the devices to every builder, rebalance, distribute the
    rings. The object ring's (moved, total) replica slots."""
    moved = (0, 0)
    for name in RING_NAMES:
        builder = str(cluster.builders / f"{name}.builder")
        cluster.ring("add", builder, *host.device_specs())
        cluster.ring("pretend-min-part-hours-passed", builder)  # the test cannot wait 1 h
        out = cluster.ring("rebalance", builder, "--seed", "2")
        if name == "object":
            found = MOVED.search(out)
            assert found, out
            moved = (int(found[1]), int(found[2]))
    cluster.distribute_rings()
    return moved


def test_add_host_and_rebalance_under_load(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(hosts=3, devices=("d1", "d2"))
    client = cluster.proxies[0].admin_account()
    assert client.request("PUT", "c").status_code == 201
    objects = bodies(200, seed=50)
    assert len(write_many(client, "c", objects).acknowledged) == 200
    newcomer = cluster.new_host(zone=4, devices=("d1", "d2"), env=REPAIR_ENV)
    cluster.distribute_rings()  # the host needs the cluster's secret to start
    cluster.start_hosts([newcomer])

    with Load(client, "c", seed=51) as load:
        time.sleep(1.0)
        moved, slots = add_host(cluster, newcomer)
        time.sleep(2.0)  # writes go on under the new rings
    everything = {**objects, **{n: load.objects[n] for n in load.writes.acknowledged}}
    assert load.misreads == [], load.misreads
    assert len(load.writes.acknowledged) == len(load.writes.statuses), \
        dict(load.writes.count())

    ideal = slots * 200 / 800  # the new host's 2 of 8 equal devices
    assert moved <= ideal * MAX_EXTRA_MOVES, f"moved {moved} of {slots} slots, ideal {ideal}"
    print(f"\n[rebalance] n4 (2 of 8 devices) added under load: ring moved {moved} of "
          f"{slots} replica slots (ideal {ideal:.0f}, ratio {moved / ideal:.2f}); "
          f"{len(load.writes.statuses)} writes under load, all 2xx and read back")

    took, rounds, misplaced = replicate_until(cluster, client.account, "c", everything)
    assert misplaced == {}, f"{len(misplaced)} of {len(everything)} objects not exactly " \
        f"on their new primaries: {dict(list(misplaced.items())[:3])}"
    digests = cluster.replica_md5s(client.account, "c", everything)
    wrong = [n for n, data in everything.items()
             if digests[n] != [hashlib.md5(data).hexdigest()] * 3]
    assert wrong == [], f"{len(wrong)} objects without 3 byte-exact replicas: {wrong[:5]}"
    reads = read_back(client, "c", everything)
    assert len(reads.exact) == len(everything), reads.summary()
    on_new = sum(1 for held, _ in cluster.placement(client.account, "c", everything).values()
                 for place in held if place.host == newcomer.name)
    assert on_new > 0
    print(f"[rebalance] after {rounds} replication rounds ({took:.1f}s) {len(everything)}/"
          f"{len(everything)} objects exactly on their new primaries ({on_new} replicas on "
          f"n4), {3 * len(everything)} replicas byte-exact on disk, all read back byte-exact")
