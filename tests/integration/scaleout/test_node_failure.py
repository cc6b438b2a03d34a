"""Storage hosts that die: SIGKILL one while a client writes, or two of three.

Issue 5, "Done means": every write that returned 2xx is readable afterwards, byte-exact;
after the host returns and replication runs, every object has its 3 replicas on its
primaries. With two of three hosts gone, writes fail cleanly (503), nothing acknowledged
is lost, and reads of existing objects still succeed.
"""

from __future__ import annotations

import hashlib
import time

from tests.integration.scaleout.conftest import MakeCluster
from tests.integration.scaleout.repair import replicate_until
from tests.integration.scaleout.workload import bodies, read_back, status_summary, write_many

OBJECTS = 500
KILL_AFTER = 150


def test_sigkill_one_host_during_500_writes(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(hosts=3, devices=("d1", "d2"))
    client = cluster.proxies[0].admin_account()
    assert client.request("PUT", "c").status_code == 201
    objects = bodies(OBJECTS, seed=5)
    victim = cluster.host("n2")
    killed_at: list[float] = []

    def kill_once(done: int) -> None:
        if done == KILL_AFTER and not killed_at:
            victim.kill()
            killed_at.append(time.monotonic())

    writes = write_many(client, "c", objects, after=kill_once)
    assert killed_at, "the host was never killed"
    acked = writes.acknowledged
    reads = read_back(client, "c", objects, acked)
    assert len(reads.exact) == len(acked), \
        f"{len(acked)} of {OBJECTS} writes acknowledged {dict(writes.count())}; " \
        f"read back: {reads.summary()}"
    assert len(acked) >= OBJECTS - 8, f"only {len(acked)} of {OBJECTS} writes acknowledged " \
        f"with one of three hosts down (statuses {dict(writes.count())})"

    placement = cluster.placement(client.account, "c", acked)
    on_handoffs = sum(1 for held, primaries in placement.values() if held - primaries)
    assert on_handoffs > 0, "no write went to a handoff while n2 was down"
    unreachable, waiting = status_summary(cluster.status())
    assert unreachable == [f"{victim.ip}:{victim.port}"] and waiting > 0, (unreachable, waiting)
    victim.start()
    took, rounds, misplaced = replicate_until(cluster, client.account, "c", acked)
    assert misplaced == {}, \
        f"{len(misplaced)} of {len(acked)} objects not exactly on their 3 primaries " \
        f"after replication: {dict(list(misplaced.items())[:5])}"
    digests = cluster.replica_md5s(client.account, "c", acked)
    wrong = [n for n in acked if digests[n] != [hashlib.md5(objects[n]).hexdigest()] * 3]
    assert wrong == [], f"{len(wrong)} of {len(acked)} objects without 3 byte-exact " \
        f"replicas on disk: {wrong[:5]}"
    assert status_summary(cluster.status()) == ([], 0)
    print(f"\n[kill one] {OBJECTS} writes, n2 SIGKILLed after {KILL_AFTER}: "
          f"{len(acked)} acknowledged {dict(writes.count())}, {len(reads.exact)}/{len(acked)} "
          f"read back byte-exact; {on_handoffs} objects had a replica on a handoff "
          f"(`pocketstack status`: n2 unreachable, {waiting} handoff partitions waiting); "
          f"after "
          f"n2 returned, {len(acked)}/{len(acked)} exactly on their 3 primaries after "
          f"{rounds} replication rounds ({took:.1f}s), {3 * len(acked)} replicas byte-exact on "
          f"disk, 0 handoff partitions waiting")


def test_two_of_three_hosts_down(make_cluster: MakeCluster) -> None:
    """One device per host: with two hosts gone, only one replica's device is left (no
    handoff on another host), so no write can reach a quorum of 2."""
    cluster = make_cluster(hosts=3, devices=("d1",))
    client = cluster.proxies[0].admin_account()
    assert client.request("PUT", "c").status_code == 201
    before = bodies(60, seed=6, prefix="before")
    assert len(write_many(client, "c", before).acknowledged) == 60
    cluster.host("n2").kill()
    cluster.host("n3").kill()

    during = bodies(60, seed=7, prefix="during")
    started = time.monotonic()
    writes = write_many(client, "c", during)
    took = time.monotonic() - started
    assert dict(writes.count()) == {503: 60}, \
        f"writes with 2 of 3 hosts down: {dict(writes.count())} (want 60 x 503)"
    assert took < 30, f"60 failed writes took {took:.1f}s: a dead host must fail fast"
    reads = read_back(client, "c", before)
    assert len(reads.exact) == 60, f"reads of the 60 acknowledged objects: {reads.summary()}"
    listed = client.names("c")
    assert set(before) <= set(listed), f"listing lost {set(before) - set(listed)}"
    print(f"\n[kill two] 60 writes with n2+n3 SIGKILLed: {dict(writes.count())} in "
          f"{took:.1f}s; 60/60 earlier objects read back byte-exact and listed")
