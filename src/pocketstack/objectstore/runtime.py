"""Assembling object storage for ``cloud.py``: secrets, devices, rings, nodes, app, tasks.

First start creates ``<data_dir>/devices/d1..dN`` (one zone each), the cluster's hash-path
secret (``<data_dir>/rings/hash_path.json``, shared by every host with the ring files) and
the rings: account, container, and one object ring per storage policy. Rings that exist
(copied from the cluster) are kept, and the proxy serves their devices: this host's
(``storage_ip:storage_port``) through the ``LocalNode``, every other host's through a
``RemoteNode`` to its ``pocketstack storage-node``. With ``[objectstore] devices = 0`` the
proxy has no local devices at all (a proxy-only host): the rings and the secret must
have been copied in before the first start, and nothing is invented.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from starlette.types import ASGIApp

from pocketstack.common.files import atomic_write
from pocketstack.config import ObjectStoreSettings, Settings
from pocketstack.identity.middleware import TokenValidator
from pocketstack.objectstore.constraints import Limits
from pocketstack.objectstore.daemons import expirer, reporter, updater
from pocketstack.objectstore.daemons.cluster import Cluster
from pocketstack.objectstore.daemons.recon import RECON_FILE
from pocketstack.objectstore.daemons.service import StorageDaemons
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.proxy.app import create_app
from pocketstack.objectstore.proxy.context import InfoCache, Policies, Policy, ProxyContext
from pocketstack.objectstore.proxy.http1 import SwiftHttpProtocol
from pocketstack.objectstore.proxy.nodes import NodeMap, RemoteFactory, host_url
from pocketstack.objectstore.ring.defaults import create_default_rings
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.node import StorageNode

LOG = logging.getLogger(__name__)
SECRET_FILE = "hash_path.json"


def ring_dir(settings: Settings) -> Path:
    return settings.data_dir / "rings"


def devices_dir(settings: Settings) -> Path:
    return settings.data_dir / "devices"


def object_ring_name(index: int) -> str:
    return "object" if index == 0 else f"object-{index}"


def load_hasher(settings: Settings) -> PathHasher:
    """The cluster's hash-path salt: from config, else from the rings dir (made once)."""
    conf = settings.objectstore
    if conf.hash_path_prefix or conf.hash_path_suffix:
        return PathHasher(conf.hash_path_prefix.encode(), conf.hash_path_suffix.encode())
    path = ring_dir(settings) / SECRET_FILE
    if not path.exists() and conf.devices == 0:
        raise ValueError(f"a proxy without devices needs the cluster's hash-path secret: "
                         f"copy {SECRET_FILE} from the cluster's rings to {path.parent}")
    if not path.exists():
        secret = {"prefix": "", "suffix": secrets.token_hex(16)}
        atomic_write(path, json.dumps(secret).encode(), mode=0o600)
    data = json.loads(path.read_text())
    return PathHasher(data["prefix"].encode(), data["suffix"].encode())


def prepare_storage(settings: Settings) -> None:
    """Devices and rings for a single-host cluster, on first start only (a proxy without
    devices only checks that the cluster's rings are there)."""
    conf = settings.objectstore
    if conf.devices == 0:
        require_rings(settings)
        return
    names = [(f"d{i}", i) for i in range(1, conf.devices + 1)]
    for name, _zone in names:
        for sub in ("", "tmp"):
            (devices_dir(settings) / name / sub).mkdir(parents=True, exist_ok=True)
    create_default_rings(
        ring_dir(settings), devices=names, replicas=conf.replicas,
        part_power=conf.part_power, ip=conf.storage_ip, port=conf.storage_port,
        object_policies=[p.index for p in conf.policies],
        policy_replicas={p.index: p.replicas for p in conf.policies})


def ring_names(conf: ObjectStoreSettings) -> list[str]:
    return ["account", "container", *(object_ring_name(p.index) for p in conf.policies)]


def require_rings(settings: Settings) -> None:
    rings = ring_dir(settings)
    missing = [f"{name}.ring" for name in ring_names(settings.objectstore)
               if not (rings / f"{name}.ring").exists()]
    if missing:
        raise ValueError(f"a proxy without devices ([objectstore] devices = 0) needs the "
                         f"cluster's rings: {', '.join(missing)} missing in {rings} (build "
                         f"them with `pocketstack ring`, copy them with {SECRET_FILE})")


def remote_factory(conf: ObjectStoreSettings) -> RemoteFactory:
    """One pooled ``RemoteNode`` per storage host, with the proxy's ``node_timeout``."""
    def make(ip: str, port: int) -> StorageNode:
        # imported here: most proxies never make one, and it brings httpx (see storage)
        from pocketstack.objectstore.storage.remote_node import RemoteNode

        return RemoteNode(host_url(ip, port), timeout=conf.node_timeout)
    return make


@dataclass
class ObjectStoreRuntime:
    ctx: ProxyContext
    app: ASGIApp
    port: int
    node: LocalNode
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    http_protocol: type[asyncio.Protocol] = SwiftHttpProtocol
    """What uvicorn should serve ``app`` with (``uvicorn.Config(http=...)``): httptools
    with the manners of Swift's server (raw UTF-8 request targets, Title-Cased headers)."""
    updater_stats: updater.UpdaterStats = field(default_factory=updater.UpdaterStats)
    expirer_stats: expirer.ExpirerStats = field(default_factory=expirer.ExpirerStats)
    daemons: StorageDaemons | None = None
    """This host's replicator, auditor and updater (made by `start_tasks`)."""

    def start_tasks(self, *, daemons: bool = True) -> None:
        """The proxy's tasks (reporter, expirer) and this host's storage daemons, which
        save their stats to ``<data_dir>/recon.json`` for ``pocketstack status``; without
        ``daemons`` (an extra proxy worker) only the reporter, which reports the
        containers this process wrote to."""
        if not daemons:
            self.tasks.append(asyncio.create_task(reporter.run(self.ctx), name="reporter"))
            return
        conf = self.ctx.settings
        cluster = Cluster(
            local=self.node, account_ring=self.ctx.account_ring,
            container_ring=self.ctx.container_ring,
            object_rings={p.index: p.ring for p in self.ctx.policies},
            node_for=self.ctx.nodes.node_for, timeout=conf.node_timeout)
        self.daemons = StorageDaemons(
            cluster, conf, recon_path=Path(self.node.devices.root).parent / RECON_FILE,
            host=f"{conf.storage_ip}:{conf.storage_port}", updater_stats=self.updater_stats,
            on_replayed=lambda account, container: self.ctx.dirty_containers.add(
                (account, container)))
        self.tasks += [
            asyncio.create_task(reporter.run(self.ctx), name="reporter"),
            asyncio.create_task(expirer.run(self.ctx, conf.expirer_interval,
                                            self.expirer_stats), name="expirer"),
            *self.daemons.start()]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await reporter.flush(self.ctx)
        await self.ctx.nodes.close()
        await self.node.close()


def build(settings: Settings, validator: TokenValidator, *, access_log: bool = True
          ) -> ObjectStoreRuntime:
    conf = settings.objectstore
    prepare_storage(settings)
    hasher = load_hasher(settings)
    rings = ring_dir(settings)
    node = LocalNode(devices_dir(settings), hasher=hasher, fsync=conf.fsync,
                     chunk_size=conf.chunk_size, reclaim_age=conf.reclaim_age,
                     read_threads=conf.read_threads, io_threads=conf.io_threads)
    every = conf.ring_check_interval
    policies = Policies([
        Policy(p.index, p.name, p.default,
               Ring(rings / f"{object_ring_name(p.index)}.ring", hasher, reload_interval=every))
        for p in conf.policies])
    local = {(conf.storage_ip, conf.storage_port)} if conf.devices else set()
    ctx = ProxyContext(
        settings=conf,
        account_ring=Ring(rings / "account.ring", hasher, reload_interval=every),
        container_ring=Ring(rings / "container.ring", hasher, reload_interval=every),
        policies=policies,
        nodes=NodeMap(node, local, remote_factory=remote_factory(conf)), validator=validator,
        limits=Limits(), storage_url_base=settings.url_for(conf.port),
        info=InfoCache(conf.recheck_info_seconds))
    return ObjectStoreRuntime(ctx, create_app(ctx, access_log=access_log), conf.port, node)
