"""Two proxies in front of one cluster, their control plane on PostgreSQL.

`pocketstack up --database-url postgresql+psycopg://...` on two hosts (here two data
dirs), the second seeded with the first's token keys: a token from either works on
both, objects written through one are read through the other, and the cluster keeps
serving through the second proxy when the first dies.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration import postgres
from tests.integration.scaleout.conftest import MakeCluster
from tests.integration.scaleout.workload import bodies, read_back, write_many
from tests.ports import free_port


@pytest.fixture
def database_url() -> Iterator[str]:
    try:
        server = postgres.PostgresServer(free_port())
        server.start()
    except (RuntimeError, OSError) as exc:  # the Debian package is missing
        pytest.skip(f"no PostgreSQL here: {exc}")
    try:
        yield server.create_database()
    finally:
        server.stop()


def test_two_proxies_share_one_postgresql_control_plane(make_cluster: MakeCluster,
                                                        database_url: str) -> None:
    option = ["--database-url", database_url]
    cluster = make_cluster(hosts=3, devices=("d1",), proxy_args=option)
    first = cluster.proxies[0]
    second = cluster.new_proxy(extra_args=option, like=first)
    for proxy in (first, second):
        assert not (proxy.data_dir / "control.db").exists(), "SQLite used despite the URL"

    via_first = first.admin_account()
    assert via_first.request("PUT", "c").status_code == 201
    first_objects = bodies(30, seed=70, prefix="first")
    assert len(write_many(via_first, "c", first_objects).acknowledged) == 30
    via_second = via_first.on(second)  # the first proxy's token, at the second proxy
    reads = read_back(via_second, "c", first_objects)
    assert len(reads.exact) == 30, reads.summary()

    own = second.admin_account()  # a token from the second proxy's identity
    second_objects = bodies(30, seed=71, prefix="second")
    assert len(write_many(own, "c", second_objects).acknowledged) == 30
    assert sorted(own.on(first).names("c")) == sorted({**first_objects, **second_objects})

    assert first.stop() == 0
    reads = read_back(own, "c", {**first_objects, **second_objects})
    assert len(reads.exact) == 60, reads.summary()
    for client in (via_first, via_second, own):
        client.close()
    print("\n[proxies] 2 proxies on one PostgreSQL control database (no control.db): "
          "30/30 objects written via proxy1 read back via proxy2 with proxy1's token; 30 "
          "written via proxy2 listed via proxy1 (60/60); proxy1 stopped: 60/60 still read "
          "back via proxy2")
