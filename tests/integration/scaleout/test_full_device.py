"""A device that fills up: its own small filesystem (ext4 on a loop device, else tmpfs),
written until ENOSPC.

Issue 5, "Done means": writes go to handoffs, 507 from that device only, nothing lost;
once the device has room again, replication moves the handoff copies to it.
"""

from __future__ import annotations

import pytest
from tests.integration.scaleout import disks
from tests.integration.scaleout.conftest import MakeCluster
from tests.integration.scaleout.repair import replicate_until
from tests.integration.scaleout.topology import Place
from tests.integration.scaleout.workload import (
    bodies,
    read_back,
    statuses_by_device,
    write_many,
)

SIZE_MB = 16


@pytest.mark.skipif(disks.available() is not None, reason=str(disks.available()))
def test_full_device_sends_writes_to_handoffs(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(hosts=3, devices=("d1", "d2"), small={(1, "d2"): SIZE_MB})
    full = Place("n1", "d2")
    disk = cluster.mounts[0]
    client = cluster.proxies[0].admin_account()
    assert client.request("PUT", "c").status_code == 201
    before = bodies(30, seed=40, prefix="before", big_every=0)
    assert len(write_many(client, "c", before).acknowledged) == 30
    filled = disk.fill()

    after = bodies(100, seed=41, prefix="after", big_every=0)
    writes = write_many(client, "c", after)
    assert len(writes.acknowledged) == 100, dict(writes.count())
    errors = statuses_by_device(cluster.hosts, lambda status: status >= 500)
    assert set(errors) == {"n1/d2"} and set(errors["n1/d2"]) == {507}, \
        f"5xx answers by device: {errors}"
    placement = cluster.placement(client.account, "c", after)
    wanted_full = [n for n, (_, primaries) in placement.items() if full in primaries]
    assert wanted_full, "no object had a primary on the full device"
    for name in wanted_full:
        held, primaries = placement[name]
        assert full not in held and len(held) == 3 and len(held & primaries) == 2, \
            (name, held, primaries)
    everything = {**before, **after}
    reads = read_back(client, "c", everything)
    assert len(reads.exact) == 130, reads.summary()
    print(f"\n[full device] n1/d2 ({disk.kind}, {SIZE_MB} MB) filled with {filled} B: "
          f"100/100 writes acknowledged; {len(wanted_full)} had a primary there and went "
          f"to a handoff; 5xx answers: {errors['n1/d2'][507]} x 507, all from n1/d2; "
          f"130/130 objects read back byte-exact")

    disk.free()
    took, rounds, misplaced = replicate_until(cluster, client.account, "c", everything)
    assert misplaced == {}, f"{len(misplaced)} of 130 objects off their primaries " \
        f"after the device got room again: {dict(list(misplaced.items())[:3])}"
    print(f"[full device] room again: 130/130 objects exactly on their primaries after "
          f"{rounds} replication rounds ({took:.1f}s)")
