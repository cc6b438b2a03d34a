"""Account and container replication of one partition (a `Job`): rows, metadata, status.

For each database of the partition: first reclaim (tombstone rows and removed metadata
older than the reclaim age; a database deleted before then is removed altogether). Then,
with each peer (Swift's "usync"): ask the peer's state as seen by this replica
(``get_db_state(remote_id=our id)``: its sync point for our rows, its rows hash, its
status). It is in sync when our status adds nothing to its own (`db_base.covers`) and it
has our rows: merged up to our newest (``sync_point >= max_row``), or the same rows from
anywhere (equal rows hashes). Otherwise send our rows after its sync point in batches of
``BATCH_ROWS``, each with our status; the peer merges them (newest wins, per row and per
metadata key), creating the database if it has none (a deleted one too: tombstones
replicate), and advances its sync point in the same transaction. Each replica pushes its
own rows, so rows written anywhere reach everywhere.

A revert job removes its database once every primary has merged it (``remove_db`` with
the state it sent: a row or status change since keeps it for the next pass).
"""

from __future__ import annotations

import logging
from typing import Final

from pocketstack.objectstore.daemons.cluster import Cluster
from pocketstack.objectstore.daemons.jobs import Job, ReplicationCounts, Target, for_each_peer
from pocketstack.objectstore.storage.db_base import covers
from pocketstack.objectstore.storage.exceptions import NotFound, StorageError
from pocketstack.objectstore.storage.types import DatabaseRef, DatabaseState
from pocketstack.objectstore.timestamp import Timestamp

LOG = logging.getLogger(__name__)
BATCH_ROWS: Final = 1000


def in_sync(peer: DatabaseState | None, local: DatabaseState) -> bool:
    """True when ``peer`` (its state as seen by ``local``) lacks nothing of ``local``."""
    if peer is None or not covers(peer.status, local.status):
        return False
    return peer.sync_point >= local.max_row or peer.rows_hash == local.rows_hash


class DatabaseSync:
    """Replication of one account or container partition (see the module docstring)."""

    def __init__(
        self, cluster: Cluster, job: Job, counts: ReplicationCounts, reclaim_before: Timestamp
    ) -> None:
        self.cluster = cluster
        self.local = cluster.local
        self.job = job
        self.counts = counts
        self.reclaim_before = reclaim_before

    async def run(self) -> None:
        job = self.job
        for ref in await self.local.list_databases(job.device, job.partition, job.kind):
            try:
                await self._replicate(ref)
            except StorageError as exc:  # this database (locally): the others go on
                self.counts.failures += 1
                LOG.warning("%s/%s/%d: %s: %s", job.device, job.kind, job.partition, ref, exc)

    async def _replicate(self, ref: DatabaseRef) -> None:
        job = self.job
        if await self.local.reclaim_db(job.device, job.partition, ref, before=self.reclaim_before):
            self.counts.reclaimed += 1
            return
        state = await self.local.get_db_state(job.device, job.partition, ref)
        self.counts.dbs_checked += 1

        async def sync(target: Target) -> DatabaseState:
            return await self._sync_peer(target, ref, state)

        merged = await for_each_peer(self.cluster, job, sync, self.counts)
        if job.primary or merged is None or not all(in_sync(m, state) for m in merged):
            return
        if await self.local.remove_db(job.device, job.partition, ref, expected=state):
            self.counts.removed += 1

    async def _sync_peer(
        self, target: Target, ref: DatabaseRef, state: DatabaseState
    ) -> DatabaseState:
        """Bring ``target`` up to ``state``; its state afterwards (as seen by us)."""
        device, part = target.device.device, self.job.partition
        try:
            peer: DatabaseState | None = await target.node.get_db_state(
                device, part, ref, remote_id=state.db_id
            )
        except NotFound:
            peer = None
        if peer is not None and in_sync(peer, state):
            return peer
        self.counts.dbs_synced += 1
        point = -1 if peer is None else peer.sync_point
        while True:
            rows = await self.local.get_db_rows(
                self.job.device, part, ref, since=point, limit=BATCH_ROWS
            )
            point = rows[-1][0] if rows else max(point, state.max_row)
            peer = await target.node.merge_db(
                device, part, ref, source_id=state.db_id, status=state.status,
                rows=[row for _rowid, row in rows], sync_point=point,
            )  # fmt: skip
            self.counts.rows_pushed += len(rows)
            if len(rows) < BATCH_ROWS:
                return peer
