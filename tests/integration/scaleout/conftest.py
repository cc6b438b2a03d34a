"""Fixtures of the scale-out tests: a fresh cluster per test (they break it on purpose).

``make_cluster(hosts=3, devices=("d1", "d2"))`` builds the hosts, the rings, starts every
storage node and one proxy; teardown stops every process (paused ones too) and unmounts
what was mounted, whatever the test did, and fails the test if a process exited badly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.integration.scaleout.repair import REPAIR_ENV
from tests.integration.scaleout.topology import Cluster, logs

MakeCluster = Callable[..., Cluster]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[MakeCluster]:
    made: list[Cluster] = []

    def make(hosts: int = 3, devices: tuple[str, ...] = ("d1", "d2"),
             small: dict[tuple[int, str], int] | None = None,
             node_env: dict[str, str] | None = None,
             proxy_env: dict[str, str] | None = None,
             proxy_args: list[str] | None = None) -> Cluster:
        """``hosts`` storage hosts in zones 1..3 (round robin), each with ``devices``;
        ``small`` maps (host number, device) to the size in MB of its own filesystem;
        the nodes run their daemons only when asked (`repair.REPAIR_ENV`) unless
        ``node_env`` says otherwise."""
        cluster = Cluster(tmp_path / f"cluster{len(made) + 1}")
        made.append(cluster)
        for i in range(hosts):
            cluster.new_host(zone=i % 3 + 1, devices=devices,
                             env=REPAIR_ENV if node_env is None else node_env)
        for (number, device), size_mb in (small or {}).items():
            cluster.small_device(cluster.hosts[number - 1], device, size_mb)
        cluster.build_rings()
        cluster.distribute_rings()
        with ThreadPoolExecutor(1) as pool:  # the proxy starts while the hosts do
            proxy = pool.submit(cluster.new_proxy, proxy_env, proxy_args)
            cluster.start_hosts()
            proxy.result()
        return cluster

    yield make
    problems = []
    for cluster in made:
        problems += cluster.close()
    assert not problems, f"{problems}\n{''.join(logs(c) for c in made)}"
