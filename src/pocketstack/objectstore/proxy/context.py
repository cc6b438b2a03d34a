"""Everything the proxy's controllers share: rings, policies, nodes, caches, auth.

Built once by the runtime (``objectstore/runtime.py``) and handed to the app; nothing here
is global, so tests build their own.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pocketstack.config import ObjectStoreSettings
from pocketstack.identity.middleware import TokenValidator
from pocketstack.objectstore.constraints import Limits
from pocketstack.objectstore.proxy.nodes import NodeMap
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.types import AccountInfo, ContainerInfo

MAX_CACHED_INFOS = 100_000


@dataclass(frozen=True)
class Policy:
    index: int
    name: str
    default: bool
    ring: Ring

    @property
    def replicas(self) -> int:
        return self.ring.replica_count


class Policies:
    def __init__(self, policies: list[Policy]) -> None:
        self.by_index = {p.index: p for p in policies}
        self._by_name = {p.name.lower(): p for p in policies}
        defaults = [p for p in policies if p.default] or [self.by_index[min(self.by_index)]]
        self.default = defaults[0]

    def get(self, index: int) -> Policy:
        return self.by_index.get(index, self.default)

    def by_name(self, name: str) -> Policy | None:
        return self._by_name.get(name.strip().lower())

    def __iter__(self) -> Any:
        return iter(sorted(self.by_index.values(), key=lambda p: p.index))


class InfoCache:
    """Account and container info for ``ttl`` seconds (Swift caches both in memcache).

    The proxy invalidates an entry itself whenever it writes the entity, so one process
    sees its own changes at once; other proxies see them within ``ttl``. Worker processes
    of one ``up`` (forked after `share_generation`) share a generation counter that
    every invalidation bumps, and drop their whole cache when it moved: a container
    created through one worker is found through the others at once.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[tuple[str, ...], tuple[float, Any]] = OrderedDict()
        self._generation: Any = None  # a c_uint64 in shared memory, or None
        self._seen = 0

    def share_generation(self) -> None:
        """Before forking workers: put the generation counter in shared memory."""
        from multiprocessing.sharedctypes import RawValue

        self._generation = RawValue("Q", 0)
        self._seen = 0

    def _sync(self) -> None:
        if self._generation is not None and self._generation.value != self._seen:
            self._seen = self._generation.value
            self._entries.clear()

    def get(self, key: tuple[str, ...]) -> tuple[bool, Any]:
        self._sync()
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return False, None
        return True, entry[1]

    def put(self, key: tuple[str, ...], value: Any) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        if len(self._entries) > MAX_CACHED_INFOS:
            self._entries.popitem(last=False)

    def invalidate(self, key: tuple[str, ...]) -> None:
        self._entries.pop(key, None)
        if self._generation is not None:
            # not atomic across processes, but two bumps that become one still move it
            self._generation.value = (self._generation.value + 1) % (1 << 64)


AccountOrNone = AccountInfo | None
ContainerOrNone = ContainerInfo | None


@dataclass
class ProxyContext:
    settings: ObjectStoreSettings
    account_ring: Ring
    container_ring: Ring
    policies: Policies
    nodes: NodeMap
    validator: TokenValidator
    limits: Limits
    storage_url_base: str
    info: InfoCache = field(default_factory=lambda: InfoCache(10.0))
    dirty_containers: set[tuple[str, str]] = field(default_factory=set)

    def reload_rings(self) -> None:
        """Check every ring file now (requests leave it to each ring's check interval)."""
        self.account_ring.reload_if_changed()
        self.container_ring.reload_if_changed()
        for policy in self.policies:
            policy.ring.reload_if_changed()
