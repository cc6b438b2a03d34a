"""Container listing updates to one database, committed together (a group commit).

Every object PUT and DELETE reports itself to each container replica, and each report is
a SQLite write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``: the WAL frames of the row,
its indexes and the container's counters), taken under the database's lock. Clients that
fill one container at once (the usual case) would each pay a transaction and queue on that
lock. Swift's container server appends such updates to a ``.pending`` file and merges them
in batches. Here, the updates that arrive while one is on its way to a thread join it: the
thread takes them all and merges them in one transaction. Each caller returns once the
transaction that holds its row has committed, so an update is never acknowledged sooner,
nor less durably, than alone.

A batch that fails is retried row by row, so that one bad row fails only its own caller.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable

from pocketstack.objectstore.storage.types import ObjectRecord

Key = tuple[str, int, str, str]
"""(device, partition, account, container): one container database."""
Apply = Callable[[Key, list[ObjectRecord]], None]
"""Merges rows into one database in one transaction, in the calling thread."""
Run = Callable[[Callable[[], list[Exception | None]]], Awaitable[list[Exception | None]]]
"""Runs a blocking call on a worker thread."""


class _Batch:
    __slots__ = ("records", "done")

    def __init__(self) -> None:
        self.records: list[ObjectRecord] = []
        self.done: asyncio.Future[list[Exception | None]] | None = None


class ListingBatches:
    """Group commit of ``apply`` per database (see the module docstring)."""

    def __init__(self, run: Run, apply: Apply) -> None:
        self._run = run
        self._apply = apply
        self._open: dict[Key, _Batch] = {}  # not yet taken by a thread: rows may join
        self._lock = threading.Lock()

    async def update(self, key: Key, record: ObjectRecord) -> None:
        """Merge ``record`` into the database ``key``; returns once it is committed."""
        with self._lock:
            batch = self._open.get(key)
            if batch is None or batch.done is None or batch.done.done():
                batch = self._open[key] = _Batch()
                batch.done = asyncio.ensure_future(
                    self._run(functools.partial(self._commit, key, batch)))
                batch.done.add_done_callback(functools.partial(self._closed, key, batch))
            index = len(batch.records)
            batch.records.append(record)
        assert batch.done is not None
        # shielded: a caller that gives up (a timeout) must not cancel the others' commit
        error = (await asyncio.shield(batch.done))[index]
        if error is not None:
            raise error

    def _closed(self, key: Key, batch: _Batch, _done: object) -> None:
        """A batch whose hop ended without reaching a thread (cancelled when its loop
        stopped) takes no more rows: the next update starts a new one."""
        with self._lock:
            if self._open.get(key) is batch:
                del self._open[key]

    def _commit(self, key: Key, batch: _Batch) -> list[Exception | None]:
        """In a worker thread: close the batch to newcomers and merge its rows."""
        with self._lock:
            if self._open.get(key) is batch:
                del self._open[key]  # the next update starts the next batch
        records = batch.records
        try:
            self._apply(key, records)
            return [None] * len(records)
        except Exception as exc:
            if len(records) == 1:
                return [exc]
        return [self._apply_one(key, record) for record in records]

    def _apply_one(self, key: Key, record: ObjectRecord) -> Exception | None:
        try:
            self._apply(key, [record])
        except Exception as exc:
            return exc
        return None
