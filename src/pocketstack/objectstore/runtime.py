"""Assembling object storage for ``cloud.py``: secrets, devices, rings, nodes, app, tasks.

First start creates ``<data_dir>/devices/d1..dN`` (one zone each), the cluster's hash-path
secret (``<data_dir>/rings/hash_path.json``, shared by every host with the ring files) and
the rings: account, container, and one object ring per storage policy.
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
from pocketstack.config import Settings
from pocketstack.identity.middleware import TokenValidator
from pocketstack.objectstore.constraints import Limits
from pocketstack.objectstore.daemons import expirer, reporter, updater
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.proxy.app import create_app
from pocketstack.objectstore.proxy.context import InfoCache, Policies, Policy, ProxyContext
from pocketstack.objectstore.proxy.http1 import SwiftHttpProtocol
from pocketstack.objectstore.proxy.nodes import NodeMap
from pocketstack.objectstore.ring.defaults import create_default_rings
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.local_node import LocalNode

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
    if not path.exists():
        secret = {"prefix": "", "suffix": secrets.token_hex(16)}
        atomic_write(path, json.dumps(secret).encode(), mode=0o600)
    data = json.loads(path.read_text())
    return PathHasher(data["prefix"].encode(), data["suffix"].encode())


def prepare_storage(settings: Settings) -> None:
    """Devices and rings for a single-host cluster, on first start only."""
    conf = settings.objectstore
    names = [(f"d{i}", i) for i in range(1, conf.devices + 1)]
    for name, _zone in names:
        for sub in ("", "tmp"):
            (devices_dir(settings) / name / sub).mkdir(parents=True, exist_ok=True)
    create_default_rings(
        ring_dir(settings), devices=names, replicas=conf.replicas,
        part_power=conf.part_power, ip=conf.storage_ip, port=conf.storage_port,
        object_policies=[p.index for p in conf.policies],
        policy_replicas={p.index: p.replicas for p in conf.policies})


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

    def start_tasks(self) -> None:
        conf = self.ctx.settings
        self.tasks += [
            asyncio.create_task(reporter.run(self.ctx), name="reporter"),
            asyncio.create_task(updater.run(self.ctx, conf.updater_interval,
                                            self.updater_stats), name="updater"),
            asyncio.create_task(expirer.run(self.ctx, conf.expirer_interval,
                                            self.expirer_stats), name="expirer")]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await reporter.flush(self.ctx)
        await self.node.close()


def build(settings: Settings, validator: TokenValidator, *, access_log: bool = True
          ) -> ObjectStoreRuntime:
    conf = settings.objectstore
    prepare_storage(settings)
    hasher = load_hasher(settings)
    rings = ring_dir(settings)
    node = LocalNode(devices_dir(settings), hasher=hasher, fsync=conf.fsync,
                     chunk_size=conf.chunk_size)
    policies = Policies([
        Policy(p.index, p.name, p.default,
               Ring(rings / f"{object_ring_name(p.index)}.ring", hasher))
        for p in conf.policies])
    ctx = ProxyContext(
        settings=conf, account_ring=Ring(rings / "account.ring", hasher),
        container_ring=Ring(rings / "container.ring", hasher), policies=policies,
        nodes=NodeMap(node, {(conf.storage_ip, conf.storage_port)}), validator=validator,
        limits=Limits(), storage_url_base=settings.url_for(conf.port),
        info=InfoCache(conf.recheck_info_seconds))
    return ObjectStoreRuntime(ctx, create_app(ctx, access_log=access_log), conf.port, node)
