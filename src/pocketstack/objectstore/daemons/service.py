"""The storage-side daemons of one host, together: replicator, auditor and updater.

`StorageDaemons` runs each on its own schedule (``[objectstore] replicator_interval``,
``auditor_interval``, ``updater_interval``; 0 runs a daemon only when asked), saves their
stats to the recon file after each pass, and answers the storage node's ``/recon``
routes (`server.Recon`): the host's status document and "run a pass now". ``pocketstack
up`` and ``pocketstack storage-node`` both build one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from pocketstack.config import ObjectStoreSettings
from pocketstack.objectstore.daemons import updater
from pocketstack.objectstore.daemons.auditor import Auditor
from pocketstack.objectstore.daemons.cluster import Cluster
from pocketstack.objectstore.daemons.recon import ReconCache, host_status
from pocketstack.objectstore.daemons.replicator import Replicator
from pocketstack.objectstore.daemons.schedule import Periodic

T = TypeVar("T")
PARTITION_PAUSE: Final = 0.002
"""Seconds a replication worker rests between partitions (a sleep, so requests go first)."""


class StorageDaemons:
    """One host's storage daemons (see the module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        conf: ObjectStoreSettings,
        *,
        recon_path: Path | None = None,
        host: str = "",
        on_replayed: Callable[[str, str], None] | None = None,
        updater_stats: updater.UpdaterStats | None = None,
    ) -> None:
        self.cluster = cluster
        self.host = host
        self.recon = ReconCache(recon_path)
        self.replicator = Replicator(
            cluster, concurrency=conf.replicator_concurrency, reclaim_age=conf.reclaim_age,
            bytes_per_second=conf.replicator_bytes_per_second, pause=PARTITION_PAUSE,
        )  # fmt: skip
        self.auditor = Auditor(
            cluster.local, cluster.local_devices, lambda: sorted(cluster.object_rings),
            bytes_per_second=conf.auditor_bytes_per_second,
            files_per_second=conf.auditor_files_per_second,
        )  # fmt: skip
        self.updater_stats = updater_stats or updater.UpdaterStats()
        self._on_replayed = on_replayed
        self.schedules: dict[str, Periodic[Any]] = {
            "replicator": Periodic("replicator", self._saving(self.replicator.run_pass),
                                   conf.replicator_interval),
            "auditor": Periodic("auditor", self._saving(self.auditor.run_pass),
                                conf.auditor_interval),
            "updater": Periodic("updater", self._saving(self._update), conf.updater_interval),
        }  # fmt: skip
        self.tasks: list[asyncio.Task[None]] = []

    async def _update(self) -> updater.UpdaterStats:
        return await updater.run_pass(self.cluster, self.updater_stats, self._on_replayed)

    def _saving(self, run_pass: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        async def run() -> T:
            try:
                return await run_pass()
            finally:
                await self.recon.save(self.stats())

        return run

    def start(self) -> list[asyncio.Task[None]]:
        """One task per daemon (each waits an interval before its first pass)."""
        self.tasks = [
            asyncio.create_task(schedule.run_forever(), name=name)
            for name, schedule in self.schedules.items()
        ]
        return self.tasks

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    def stats(self) -> dict[str, Any]:
        return {
            "replicator": self.replicator.stats.as_dict(),
            "auditor": self.auditor.stats.as_dict(),
            "updater": self.updater_stats.as_dict(),
        }

    # -- server.Recon ---------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return await host_status(self.cluster, self.stats(), self.host)

    async def run(self, daemon: str) -> dict[str, Any]:
        """Run a pass of ``daemon`` now (KeyError if there is none); its stats."""
        schedule = self.schedules[daemon]
        await schedule.run_now()
        return {daemon: self.stats()[daemon]}
