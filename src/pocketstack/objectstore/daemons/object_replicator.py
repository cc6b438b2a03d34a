"""Object replication of one partition (a `Job`): compare, push what is missing, hand off.

With each peer: compare suffix hashes (``get_hashes``; equal digests mean the same live
files). For each suffix that differs, compare the objects' stamps (their live file names)
and push, file by file and *as is* (``get_object_file`` -> ``put_object_file``), what the
peer lacks and would keep (`hashdir.files_to_push`): newer data, tombstones, newer
``.meta``. The newest timestamp wins on arrival whatever order files land in, so two
replicas pushing to each other converge. A local file found corrupt while being read is
quarantined by the reader and not sent; the peer holding a good copy pushes it back.

A revert job (this device is not a primary) also notes which objects each primary now
holds, or beats; the objects every primary holds are then removed here
(``remove_objects``, which keeps anything written since), and the emptied partition
directory with them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from pocketstack.objectstore.daemons.cluster import Cluster
from pocketstack.objectstore.daemons.jobs import Job, ReplicationCounts, Target, for_each_peer
from pocketstack.objectstore.daemons.schedule import RateLimiter
from pocketstack.objectstore.storage.exceptions import (
    DiskFileNotExist,
    DiskFileQuarantined,
    StorageError,
)
from pocketstack.objectstore.storage.hashdir import files_to_push
from pocketstack.objectstore.storage.types import ObjectBody, ObjectStamp

LOG = logging.getLogger(__name__)


class ObjectSync:
    """Replication of one object partition (see the module docstring)."""

    def __init__(
        self, cluster: Cluster, job: Job, counts: ReplicationCounts, limiter: RateLimiter
    ) -> None:
        self.cluster = cluster
        self.local = cluster.local
        self.job = job
        self.counts = counts
        self.limiter = limiter
        self.hashes: dict[str, str] = {}
        self.stamps: dict[str, ObjectStamp] = {}
        self._listed: set[str] = set()
        self._peer_hashes: dict[str, dict[str, str] | StorageError] = {}

    async def run(self) -> None:
        job = self.job
        self.hashes = await self._hashes_here()
        if not self.hashes:
            if not job.primary:  # drop the empty partition dir
                await self.local.remove_objects(job.device, job.partition, [], policy=job.policy)
            return
        if not job.primary:
            await self._stamps_of(sorted(self.hashes))
        held = await for_each_peer(self.cluster, job, self._sync_peer, self.counts)
        if job.primary or held is None:
            return
        everywhere = set.intersection(*held) if held else set()
        done = [stamp for name_hash, stamp in self.stamps.items() if name_hash in everywhere]
        if done:
            removed = await self.local.remove_objects(
                job.device, job.partition, done, policy=job.policy
            )
            self.counts.removed += removed  # not `+= await`: other jobs count meanwhile

    async def _hashes_here(self) -> dict[str, str]:
        """This replica's suffix hashes, and those of the peers this host serves too, in
        one thread hop (kept for `_sync_peer`): most of a quiet pass is these calls."""
        job = self.job
        peers = [d.device for d in job.peers if self.cluster.node_for(d) is self.local]
        answers = await self.local.get_hashes_of(
            [(device, job.partition, job.policy) for device in (job.device, *peers)]
        )
        self._peer_hashes = dict(zip(peers, answers[1:], strict=True))
        if isinstance(answers[0], StorageError):
            raise answers[0]
        return answers[0]

    async def _stamps_of(self, suffixes: Sequence[str]) -> list[ObjectStamp]:
        missing = [s for s in suffixes if s not in self._listed]
        if missing:
            listed = await self.local.list_object_stamps(
                self.job.device, self.job.partition, policy=self.job.policy, suffixes=missing
            )
            self.stamps.update((stamp.name_hash, stamp) for stamp in listed)
            self._listed.update(missing)
        wanted = set(suffixes)
        return [stamp for stamp in self.stamps.values() if stamp.suffix in wanted]

    async def _sync_peer(self, target: Target) -> set[str]:
        """Push what ``target`` lacks; the hashes of the objects it now holds (or beats)."""
        job = self.job
        remote = self._peer_hashes.pop(target.device.device, None)
        if target.node is not self.local or remote is None:
            remote = await target.node.get_hashes(
                target.device.device, job.partition, policy=job.policy
            )
        elif isinstance(remote, StorageError):
            raise remote
        diff = sorted(s for s, digest in self.hashes.items() if remote.get(s) != digest)
        held = {h for h, stamp in self.stamps.items() if stamp.suffix not in diff}
        if not diff:
            return held
        self.counts.suffixes_synced += len(diff)
        theirs = await target.node.list_object_stamps(
            target.device.device, job.partition, policy=job.policy, suffixes=diff
        )
        remote_files = {stamp.name_hash: stamp.files for stamp in theirs}
        for stamp in await self._stamps_of(diff):
            wanted = files_to_push(stamp.files, remote_files.get(stamp.name_hash, ()))
            if not wanted or await self._push(target, stamp, wanted):
                held.add(stamp.name_hash)
        return held

    async def _push(self, target: Target, stamp: ObjectStamp, filenames: list[str]) -> bool:
        """Send ``filenames`` of one object; False if a local file changed or was bad."""
        job = self.job
        for filename in filenames:
            try:
                file, body = await self.local.get_object_file(
                    job.device, job.partition, stamp.name_hash, filename, policy=job.policy
                )
            except DiskFileNotExist as exc:  # replaced meanwhile, or quarantined
                self._skipped(stamp, filename, exc)
                return False
            try:
                await target.node.put_object_file(
                    target.device.device, job.partition, file, self._paced(body),
                    policy=job.policy,
                )  # fmt: skip
            except DiskFileNotExist as exc:  # our body was corrupt: the reader quarantined it
                self._skipped(stamp, filename, exc)
                return False
            finally:
                await body.aclose()
            self.counts.files_pushed += 1
            self.counts.bytes_pushed += file.content_length
        self.counts.objects_pushed += 1
        return True

    def _skipped(self, stamp: ObjectStamp, filename: str, exc: Exception) -> None:
        if isinstance(exc, DiskFileQuarantined):
            self.counts.failures += 1
            LOG.warning("%s: %s/%s quarantined: %s", self.job.device, stamp.name_hash,
                        filename, exc)  # fmt: skip

    async def _paced(self, body: ObjectBody) -> AsyncIterator[bytes]:
        async for chunk in body:
            await self.limiter.take(len(chunk))
            yield chunk
