"""Assembling object storage: a single host, a host in a bigger cluster, a proxy only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest

from pocketstack.config import load_settings
from pocketstack.identity.middleware import TokenValidator
from pocketstack.objectstore import runtime
from pocketstack.objectstore.ring.builder import RingBuilder
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.remote_node import RemoteNode

VALIDATOR = cast(TokenValidator, object())
HOSTS = [("10.0.0.1", 6200), ("10.0.0.2", 6200), ("10.0.0.3", 6200)]


def settings(tmp_path: Path, **objectstore: Any) -> Any:
    env = {f"POCKETSTACK_OBJECTSTORE__{k.upper()}": str(v) for k, v in objectstore.items()}
    return load_settings(None, environ=env, overrides={"data_dir": tmp_path / "data"})


def cluster_rings(rings: Path, *, secret: bool = True) -> None:
    """The rings of a 3-host cluster (as `pocketstack ring` builds them), and its secret."""
    rings.mkdir(parents=True)
    for name, replicas in [("account", 3), ("container", 3), ("object", 3), ("object-1", 1)]:
        builder = RingBuilder(4, replicas, 1)
        for zone, (ip, port) in enumerate(HOSTS, start=1):
            builder.add_dev(zone=zone, ip=ip, port=port, device="sdb", weight=100)
        builder.rebalance(seed=1)
        builder.get_ring().save(rings / f"{name}.ring")
    if secret:
        (rings / runtime.SECRET_FILE).write_text(json.dumps({"prefix": "", "suffix": "s"}))


def test_single_host_serves_its_devices_locally(tmp_path: Path) -> None:
    built = runtime.build(settings(tmp_path), VALIDATOR, access_log=False)
    ring = built.ctx.account_ring
    assert {type(built.ctx.nodes.node_for(d)) for d in ring.devices} == {LocalNode}
    assert sorted(p.name for p in (tmp_path / "data" / "devices").iterdir()) == \
        ["d1", "d2", "d3"]
    asyncio.run(built.close())


def test_proxy_only_reaches_every_device_remotely(tmp_path: Path) -> None:
    cluster_rings(tmp_path / "data" / "rings")
    built = runtime.build(settings(tmp_path, devices=0, node_timeout=3), VALIDATOR,
                          access_log=False)
    nodes = built.ctx.nodes
    served = [nodes.node_for(d) for d in built.ctx.account_ring.devices]
    assert all(isinstance(node, RemoteNode) for node in served)
    assert sorted(cast(RemoteNode, n).base_url for n in served) == \
        [f"http://{ip}:{port}" for ip, port in HOSTS]
    assert not (tmp_path / "data" / "devices").exists()
    asyncio.run(built.close())
    assert nodes.remotes == {}


def test_host_of_a_cluster_serves_its_own_devices_locally(tmp_path: Path) -> None:
    cluster_rings(tmp_path / "data" / "rings")
    built = runtime.build(settings(tmp_path, storage_ip="10.0.0.1"), VALIDATOR,
                          access_log=False)
    kinds = {d.ip: type(built.ctx.nodes.node_for(d)).__name__
             for d in built.ctx.account_ring.devices}
    assert kinds == {"10.0.0.1": "LocalNode", "10.0.0.2": "RemoteNode",
                     "10.0.0.3": "RemoteNode"}
    asyncio.run(built.close())


def test_proxy_only_needs_the_rings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"account\.ring, container\.ring, object\.ring"):
        runtime.build(settings(tmp_path, devices=0), VALIDATOR)


def test_proxy_only_never_invents_a_secret(tmp_path: Path) -> None:
    cluster_rings(tmp_path / "data" / "rings", secret=False)
    with pytest.raises(ValueError, match="hash_path.json"):
        runtime.build(settings(tmp_path, devices=0), VALIDATOR)
    assert not (tmp_path / "data" / "rings" / runtime.SECRET_FILE).exists()


def test_ring_check_interval_reaches_the_rings(tmp_path: Path) -> None:
    built = runtime.build(settings(tmp_path, ring_check_interval=0.25), VALIDATOR,
                          access_log=False)
    rings = [built.ctx.account_ring, built.ctx.container_ring,
             *(p.ring for p in built.ctx.policies)]
    assert {r.reload_interval for r in rings} == {0.25}
    asyncio.run(built.close())
