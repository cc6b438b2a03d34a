"""The account/container half of LocalNode's work: synchronous, one thread hop per call.

`DatabaseWork` implements the account- and container-server rules of the StorageNode
contract (creation, revival, conflicts, deleted-status checks) on top of the brokers.
Brokers are cached (an LRU of open connections): opening a SQLite file costs more than
most queries, and with WAL a close checkpoints. A broker serializes its own calls.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import fsutil
from pocketstack.objectstore.storage.account_broker import AccountBroker
from pocketstack.objectstore.storage.container_broker import ContainerBroker
from pocketstack.objectstore.storage.db_base import DatabaseBroker
from pocketstack.objectstore.storage.exceptions import (
    AccountNotFound,
    Conflict,
    ContainerNotFound,
    DatabaseQuarantined,
    Forbidden,
    NotFound,
)
from pocketstack.objectstore.storage.local_objects import canonical_header
from pocketstack.objectstore.storage.types import (
    AccountInfo,
    AccountListing,
    ContainerInfo,
    ContainerListing,
    ContainerRecord,
    DatabaseRef,
    DatabaseState,
    DatabaseStatus,
    ListingQuery,
    ObjectRecord,
    RenderedListing,
)
from pocketstack.objectstore.timestamp import Timestamp

DEFAULT_CACHE_SIZE: Final = 256
BrokerT = TypeVar("BrokerT", bound=DatabaseBroker)


def stamped(
    metadata: Mapping[str, str] | None, timestamp: Timestamp
) -> dict[str, tuple[str, Timestamp]]:
    """``{Header-Name: (value, timestamp)}`` for a broker's update_metadata."""
    return {canonical_header(k): (str(v), timestamp) for k, v in (metadata or {}).items()}


class BrokerCache:
    """At most ``size`` open brokers, least recently used closed first."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = size
        self._brokers: OrderedDict[str, DatabaseBroker] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str, kind: type[BrokerT], factory: Callable[[], BrokerT]) -> BrokerT:
        evicted: list[DatabaseBroker] = []
        with self._lock:
            broker = self._brokers.get(path)
            if isinstance(broker, kind):
                self._brokers.move_to_end(path)
                return broker
            created = factory()
            self._brokers[path] = created
            while len(self._brokers) > self.size:
                evicted.append(self._brokers.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return created

    def peek(self, path: str) -> DatabaseBroker | None:
        with self._lock:
            return self._brokers.get(path)

    def discard(self, path: str) -> None:
        """Forget (and close) the broker of ``path``, if cached."""
        with self._lock:
            broker = self._brokers.pop(path, None)
        if broker is not None:
            broker.close()

    def clear(self) -> None:
        with self._lock:
            brokers = list(self._brokers.values())
            self._brokers.clear()
        for broker in brokers:
            broker.close()


class DatabaseWork:
    """Account and container operations as synchronous calls (module docstring)."""

    def __init__(
        self,
        devices: fsutil.Devices,
        hasher: PathHasher,
        *,
        fsync: bool = True,
        synchronous: str = "NORMAL",
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.devices = devices
        self.hasher = hasher
        self.fsync = fsync
        self.synchronous = synchronous
        self.cache = BrokerCache(cache_size)

    def _db_path(self, device: str, partition: int, kind_dir: str, name_hash: str) -> str:
        fsutil.check_partition(partition)
        return os.path.join(
            self.devices.path(device),
            kind_dir,
            str(partition),
            fsutil.suffix_of(name_hash),
            name_hash,
            f"{name_hash}.db",
        )

    def container_broker(
        self, device: str, partition: int, account: str, container: str
    ) -> ContainerBroker:
        if not (account and container):
            raise ValueError("a container needs an account and a name")
        name_hash = self.hasher.hexdigest(account, container)
        path = self._db_path(device, partition, fsutil.CONTAINERS_DIR, name_hash)
        return self.cache.get(
            path,
            ContainerBroker,
            lambda: ContainerBroker(
                path,
                device_path=self.devices.path(device),
                account=account,
                container=container,
                fsync=self.fsync,
                synchronous=self.synchronous,
            ),
        )

    def account_broker(self, device: str, partition: int, account: str) -> AccountBroker:
        if not account:
            raise ValueError("an account needs a name")
        name_hash = self.hasher.hexdigest(account)
        path = self._db_path(device, partition, fsutil.ACCOUNTS_DIR, name_hash)
        return self.cache.get(
            path,
            AccountBroker,
            lambda: AccountBroker(
                path,
                device_path=self.devices.path(device),
                account=account,
                fsync=self.fsync,
                synchronous=self.synchronous,
            ),
        )

    # -- containers -------------------------------------------------------------------

    def put_container(
        self,
        broker: ContainerBroker,
        timestamp: Timestamp,
        policy_index: int | None,
        metadata: Mapping[str, str] | None,
    ) -> bool:
        created = broker.initialize(timestamp, policy_index or 0)
        if not created:
            created = self._update_container(broker, timestamp, policy_index)
        broker.update_metadata(stamped(metadata, timestamp))
        return created

    def _update_container(
        self, broker: ContainerBroker, timestamp: Timestamp, policy_index: int | None
    ) -> bool:
        info = broker.get_info()
        policy_changes = policy_index is not None and policy_index != info.storage_policy_index
        if policy_changes and not info.deleted:
            raise Conflict(
                f"container has storage policy {info.storage_policy_index}",
                timestamp=info.put_timestamp,
            )
        broker.update_put_timestamp(timestamp)
        if broker.is_deleted():
            raise Conflict("deleted by a newer request", timestamp=info.delete_timestamp)
        if policy_changes and policy_index is not None:
            broker.set_storage_policy_index(policy_index)
        return info.deleted

    def container_info(self, broker: ContainerBroker) -> ContainerInfo:
        info = broker.get_info()
        if info.deleted:
            raise ContainerNotFound(broker.container or "", timestamp=info.delete_timestamp)
        return info

    def post_container(
        self, broker: ContainerBroker, timestamp: Timestamp, metadata: Mapping[str, str]
    ) -> None:
        self.container_info(broker)
        broker.update_metadata(stamped(metadata, timestamp))
        broker.update_put_timestamp(timestamp)  # Swift: a POST moves Last-Modified

    def delete_container(self, broker: ContainerBroker, timestamp: Timestamp) -> None:
        info = self.container_info(broker)
        if info.object_count:
            raise Conflict("container not empty", timestamp=info.put_timestamp)
        broker.delete_db(timestamp)
        if not broker.is_deleted():
            raise Conflict("a newer PUT keeps the container", timestamp=info.put_timestamp)

    def list_objects(self, broker: ContainerBroker, query: ListingQuery) -> ContainerListing:
        listing = broker.listing(query)
        if listing.info.deleted:
            raise ContainerNotFound(broker.container or "", timestamp=listing.info.delete_timestamp)
        return listing

    def list_objects_json(self, broker: ContainerBroker, query: ListingQuery
                          ) -> RenderedListing | None:
        listing = broker.rendered_listing(query)
        if listing is not None and listing.info.deleted:
            raise ContainerNotFound(broker.container or "", timestamp=listing.info.delete_timestamp)
        return listing

    def update_container_listing(
        self, broker: ContainerBroker, records: list[ObjectRecord]
    ) -> None:
        """Object rows from the object writes, in one transaction (`listing_batches`)."""
        broker.merge_items(records)

    # -- accounts ---------------------------------------------------------------------

    def put_account(
        self, broker: AccountBroker, timestamp: Timestamp, metadata: Mapping[str, str] | None
    ) -> bool:
        created = broker.initialize(timestamp)
        if not created:
            info = broker.get_info()
            if info.status_deleted:
                raise Forbidden("account recently deleted", timestamp=info.delete_timestamp)
            broker.update_put_timestamp(timestamp)
            if broker.is_deleted():
                raise Conflict("deleted by a newer request", timestamp=info.delete_timestamp)
            created = info.deleted
        broker.update_metadata(stamped(metadata, timestamp))
        return created

    def account_info(self, broker: AccountBroker) -> AccountInfo:
        info = broker.get_info()
        if info.deleted:
            raise AccountNotFound(
                broker.account,
                timestamp=info.delete_timestamp,
                status_deleted=info.status_deleted,
            )
        return info

    def post_account(
        self, broker: AccountBroker, timestamp: Timestamp, metadata: Mapping[str, str]
    ) -> None:
        self.account_info(broker)
        broker.update_metadata(stamped(metadata, timestamp))

    def delete_account(self, broker: AccountBroker, timestamp: Timestamp) -> None:
        self.account_info(broker)
        broker.delete_db(timestamp)

    def list_containers(self, broker: AccountBroker, query: ListingQuery) -> AccountListing:
        listing = broker.listing(query)
        if listing.info.deleted:
            raise AccountNotFound(
                broker.account,
                timestamp=listing.info.delete_timestamp,
                status_deleted=listing.info.status_deleted,
            )
        return listing

    def update_account_listing(self, broker: AccountBroker, record: ContainerRecord) -> None:
        self.account_info(broker)
        broker.merge_items([record])

    # -- replication -------------------------------------------------------------------

    def broker_for(self, device: str, partition: int, ref: DatabaseRef) -> DatabaseBroker:
        if ref.container is None:
            return self.account_broker(device, partition, ref.account)
        return self.container_broker(device, partition, ref.account, ref.container)

    def database_files(self, device: str, partition: int, kind: str) -> list[str]:
        """The database files of one partition (absolute paths), sorted."""
        fsutil.check_partition(partition)
        part_dir = os.path.join(self.devices.path(device), _kind_dir(kind), str(partition))
        found = []
        for suffix in sorted(_listdir(part_dir)):
            for name_hash in sorted(_listdir(os.path.join(part_dir, suffix))):
                path = os.path.join(part_dir, suffix, name_hash, f"{name_hash}.db")
                if os.path.isfile(path):
                    found.append(path)
        return found

    def _at_path(self, device: str, path: str, kind: str) -> tuple[DatabaseBroker, bool]:
        """The cached broker of ``path``, else a temporary one (True: close it after)."""
        cached = self.cache.peek(path)
        if cached is not None:
            return cached, False
        cls = AccountBroker if _kind_dir(kind) == fsutil.ACCOUNTS_DIR else ContainerBroker
        temporary = cls(
            path, device_path=self.devices.path(device), account="", fsync=self.fsync,
            synchronous=self.synchronous,
        )  # fmt: skip
        return temporary, True

    def list_databases(self, device: str, partition: int, kind: str) -> list[DatabaseRef]:
        """The entities whose databases one partition holds (corrupt ones are quarantined
        and left out)."""
        refs = []
        for path in self.database_files(device, partition, kind):
            broker, temporary = self._at_path(device, path, kind)
            try:
                refs.append(broker.read_ref())
            except (DatabaseQuarantined, NotFound):
                self.cache.discard(path)
            finally:
                if temporary:
                    broker.close()
        return refs

    def audit_database(self, device: str, path: str, kind: str) -> int:
        """quick_check one database file; its size in bytes. DatabaseQuarantined if it was
        corrupt (moved aside), NotFound if it is gone."""
        broker, temporary = self._at_path(device, path, kind)
        try:
            size = os.path.getsize(path) if os.path.exists(path) else 0
            broker.check_integrity()
            return size
        except DatabaseQuarantined:
            self.cache.discard(path)
            raise
        finally:
            if temporary:
                broker.close()

    def db_state(self, broker: DatabaseBroker, remote_id: str | None) -> DatabaseState:
        return broker.replication_state(remote_id)

    def db_rows(self, broker: DatabaseBroker, since: int, limit: int) -> list[tuple[int, Any]]:
        return broker.get_items_since(since, limit)  # type: ignore[attr-defined, no-any-return]

    def merge_db(
        self,
        broker: DatabaseBroker,
        source_id: str,
        status: DatabaseStatus,
        rows: Sequence[ObjectRecord] | Sequence[ContainerRecord],
        sync_point: int,
    ) -> DatabaseState:
        """Merge a replica's status and rows, creating the database if it is missing."""
        if not broker.exists():
            if isinstance(broker, ContainerBroker):
                broker.initialize(status.put_timestamp, status.storage_policy_index)
            elif isinstance(broker, AccountBroker):
                broker.initialize(status.put_timestamp)
        return broker.merge_replica(source_id, status, rows, sync_point)

    def remove_db(self, broker: DatabaseBroker, expected: DatabaseState) -> bool:
        removed = broker.remove_if_unchanged(expected)
        if removed:
            self.cache.discard(broker.db_path)
        return removed

    def reclaim_db(self, broker: DatabaseBroker, before: Timestamp) -> bool:
        removed = broker.reclaim_replica(before)
        if removed:
            self.cache.discard(broker.db_path)
        return removed

    def close(self) -> None:
        self.cache.clear()


def _kind_dir(kind: str) -> str:
    if kind not in (fsutil.ACCOUNTS_DIR, fsutil.CONTAINERS_DIR):
        raise ValueError(f"not a database kind: {kind!r}")
    return kind


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
