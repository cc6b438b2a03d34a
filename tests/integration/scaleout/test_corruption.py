"""Bit rot: one replica's bytes change on disk.

Issue 5, "Done means": a GET never returns the corrupt bytes (the storage layer checks the
MD5 while streaming and withholds the last chunk of a corrupt full read, so the proxy cuts
the answer off instead of finishing it), the replica is quarantined; the auditor finds
and quarantines a corrupt replica nobody reads, and the replicator restores a good copy.
"""

from __future__ import annotations

import hashlib

from tests.integration.scaleout.conftest import MakeCluster
from tests.integration.scaleout.repair import repair_until, run_pass
from tests.integration.scaleout.topology import Account, Cluster, Place, body_md5, corrupt
from tests.integration.scaleout.workload import bodies, write_many

GETS = 10


def first_primary(cluster: Cluster, account: str, name: str) -> Place:
    """The replica a GET asks first (the ring's first primary)."""
    ring = cluster.load_ring()
    _, devices = ring.get_nodes(account, "c", name)
    host = next(h for h in cluster.hosts if (h.ip, h.port) == (devices[0].ip, devices[0].port))
    return Place(host.name, devices[0].device)


def test_corrupt_replicas_never_served_then_repaired(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(hosts=3, devices=("d1", "d2"))
    client = cluster.proxies[0].admin_account()
    assert client.request("PUT", "c").status_code == 201
    objects = {"small": b"s" * 1000, "big": hashlib.sha512(b"x").digest() * 4096,  # 256 KiB
               **bodies(20, seed=30, big_every=5)}
    assert len(write_many(client, "c", objects).acknowledged) == 22
    read_corrupt_replicas(cluster, client, {n: objects[n] for n in ("small", "big")})
    audit_and_restore(cluster, client, "o0004", objects["o0004"])


def read_corrupt_replicas(cluster: Cluster, client: Account, objects: dict[str, bytes]
                          ) -> None:
    """The replica a GET reads first is corrupt: no GET returns its bytes."""
    for name in objects:
        place = first_primary(cluster, client.account, name)
        corrupt(cluster.replica_files(client.account, "c", name)[place])
    outcomes = {name: [client.get(f"c/{name}") for _ in range(GETS)] for name in objects}
    for name, data in objects.items():
        served = [body for status, body in outcomes[name] if status == 200 and body is not None]
        corrupt_served = [b for b in served if b != data]
        cut_off = sum(1 for _, body in outcomes[name] if body is None)
        assert corrupt_served == [], f"{name}: {len(corrupt_served)} of {GETS} GETs " \
            "returned corrupt bytes"
        assert len(served) >= GETS - 1, f"{name}: only {len(served)} of {GETS} GETs " \
            f"returned the object ({cut_off} cut off)"
        print(f"\n[corruption] {name} ({len(data)} B), first replica corrupted: {GETS} GETs "
              f"-> {len(served)} byte-exact, {cut_off} cut off, 0 corrupt")
    quarantined = cluster.quarantined()
    assert sum(quarantined.values()) == 2, f"quarantined on read: {quarantined}"


def audit_and_restore(cluster: Cluster, client: Account, name: str, data: bytes) -> None:
    """A corrupt replica nobody reads: the auditor finds it, the replicator replaces it."""
    files = cluster.replica_files(client.account, "c", name)
    victim = sorted(files, key=str)[1]
    corrupt(files[victim], offset=70_000)
    good = hashlib.md5(data).hexdigest()
    assert body_md5(files[victim]) != good
    before = cluster.quarantined().get(victim, 0)

    def repaired() -> bool:
        now = cluster.replica_files(client.account, "c", name)
        return cluster.quarantined().get(victim, 0) == before + 1 and len(now) == 3 and \
            all(body_md5(path) == good for path in now.values())

    audited = run_pass(cluster, "auditor")
    assert cluster.quarantined().get(victim, 0) == before + 1, \
        f"the auditor did not quarantine the corrupt replica: {audited}"
    took, rounds = repair_until(cluster, repaired, ["replicator"])
    print(f"[auditor] 1 replica of {name} corrupted on {victim.host}/{victim.device} (nobody "
          f"reads it): quarantined by 1 auditor pass, restored by {rounds} replicator "
          f"round(s) ({took:.1f}s); 3/3 replicas match the MD5 {good}")
