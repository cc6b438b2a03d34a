"""The replication half of `RemoteNode`: the replication operations of the StorageNode
contract (`node`) over the storage-node server's routes (``objectstore/server``), encoded
with `wire`. Object files stream both ways as object bodies do: the file's metadata
travels in ``X-Backend-Info`` (an `ObjectFile` document), its body as frames (GET) or
as the request body (PUT, with its Content-Length).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from pocketstack.objectstore.storage import wire
from pocketstack.objectstore.storage.node import DbRecord, StorageNode
from pocketstack.objectstore.storage.types import (
    DatabaseRef,
    DatabaseState,
    DatabaseStatus,
    DataKind,
    ObjectBody,
    ObjectFile,
    ObjectStamp,
)
from pocketstack.objectstore.timestamp import Timestamp

T = TypeVar("T")


def _policy(policy: int) -> dict[str, str]:
    return {wire.POLICY_HEADER: str(policy)}


def _suffix_query(query: dict[str, str], suffixes: Sequence[str] | None) -> dict[str, str]:
    if suffixes is not None:
        query["suffixes"] = ",".join(suffixes)
    return query


def db_path(op: str, device: str, partition: int, ref: DatabaseRef) -> str:
    """``/db-<op>/<dev>/<part>/<account>[/<container>]``."""
    names = [ref.account] if ref.container is None else [ref.account, ref.container]
    return wire.build_path(f"db-{op}", device, partition, *names)


class RemoteReplication(StorageNode):
    """Replication over HTTP; `RemoteNode` supplies the transport methods below."""

    base_url: str

    @abc.abstractmethod
    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: AsyncIterable[bytes] | bytes | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response: ...

    @abc.abstractmethod
    async def _send_body(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: AsyncIterable[bytes],
        content_length: int | None,
    ) -> httpx.Response: ...

    @abc.abstractmethod
    def _decode(self, cls: type[T], document: bytes | str | None) -> T: ...

    @abc.abstractmethod
    def _read(self, reader: Any, *args: Any) -> Any:
        """``reader(*args)`` with wire errors mapped (see `remote_node.map_exceptions`)."""

    @abc.abstractmethod
    def _stream_body(self, response: httpx.Response) -> ObjectBody: ...

    # -- objects ----------------------------------------------------------------------

    async def list_partitions(self, device: str, kind: DataKind, *, policy: int = 0) -> list[int]:
        response = await self._send("GET", wire.build_path(kind, device), headers=_policy(policy))
        partitions = self._read(lambda data: wire.loads(data).get("partitions"), response.content)
        if not isinstance(partitions, list) or not all(type(p) is int for p in partitions):
            self._read(_malformed, "partitions")
        return partitions  # type: ignore[no-any-return]

    async def get_hashes(
        self,
        device: str,
        partition: int,
        *,
        policy: int = 0,
        suffixes: Sequence[str] | None = None,
    ) -> dict[str, str]:
        """``{suffix: md5}`` of one partition's objects (what the replicator compares)."""
        query = _suffix_query({"hashes": ""}, suffixes)
        path = wire.build_path("objects", device, partition)
        response = await self._send("GET", path, headers=_policy(policy), query=query)
        hashes = self._read(lambda data: wire.loads(data).get("hashes"), response.content)
        if not isinstance(hashes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()
        ):
            self._read(_malformed, "hashes")
        return hashes  # type: ignore[no-any-return]

    async def list_object_stamps(
        self,
        device: str,
        partition: int,
        *,
        policy: int = 0,
        suffixes: Sequence[str] | None = None,
    ) -> list[ObjectStamp]:
        query = _suffix_query({"stamps": ""}, suffixes)
        path = wire.build_path("objects", device, partition)
        response = await self._send("GET", path, headers=_policy(policy), query=query)
        return self._read(wire.decode_list, ObjectStamp, "stamps", response.content)  # type: ignore[no-any-return]

    async def get_object_file(
        self, device: str, partition: int, name_hash: str, filename: str, *, policy: int = 0
    ) -> tuple[ObjectFile, ObjectBody]:
        path = wire.build_path("objects", device, partition, name_hash, filename)
        response = await self._send("GET", path, headers=_policy(policy), stream=True)
        try:
            file = self._decode(ObjectFile, response.headers.get(wire.INFO_HEADER))
        except BaseException:
            await response.aclose()
            raise
        return file, self._stream_body(response)

    async def put_object_file(
        self,
        device: str,
        partition: int,
        file: ObjectFile,
        body: AsyncIterable[bytes],
        *,
        policy: int = 0,
    ) -> bool:
        headers = {**_policy(policy), wire.INFO_HEADER: wire.encode(file).decode("ascii")}
        path = wire.build_path("objects", device, partition, file.name_hash, file.filename)
        response = await self._send_body("PUT", path, headers, body, file.content_length)
        return self._flag(response, "kept")

    async def remove_objects(
        self, device: str, partition: int, stamps: Sequence[ObjectStamp], *, policy: int = 0
    ) -> int:
        path = wire.build_path("objects", device, partition)
        document = wire.encode_list("stamps", stamps)
        response = await self._send("DELETE", path, headers=_policy(policy), content=document)
        removed = self._read(lambda data: wire.loads(data).get("removed"), response.content)
        if type(removed) is not int:
            self._read(_malformed, "removed")
        return removed  # type: ignore[no-any-return]

    def _flag(self, response: httpx.Response, name: str) -> bool:
        value = self._read(lambda data: wire.loads(data).get(name), response.content)
        if not isinstance(value, bool):
            self._read(_malformed, name)
        return value  # type: ignore[no-any-return]

    # -- databases --------------------------------------------------------------------

    async def list_databases(
        self, device: str, partition: int, kind: DataKind
    ) -> list[DatabaseRef]:
        response = await self._send("GET", wire.build_path(kind, device, partition))
        return self._read(wire.decode_list, DatabaseRef, "databases", response.content)  # type: ignore[no-any-return]

    async def get_db_state(
        self, device: str, partition: int, ref: DatabaseRef, *, remote_id: str | None = None
    ) -> DatabaseState:
        query = {} if remote_id is None else {"remote_id": remote_id}
        response = await self._send("GET", db_path("state", device, partition, ref), query=query)
        return self._decode(DatabaseState, response.content)

    async def get_db_rows(
        self, device: str, partition: int, ref: DatabaseRef, *, since: int, limit: int
    ) -> list[tuple[int, DbRecord]]:
        query = {"since": str(since), "limit": str(limit)}
        response = await self._send("GET", db_path("rows", device, partition, ref), query=query)
        return self._read(wire.decode_rows, ref.kind, response.content)  # type: ignore[no-any-return]

    async def merge_db(
        self,
        device: str,
        partition: int,
        ref: DatabaseRef,
        *,
        source_id: str,
        status: DatabaseStatus,
        rows: Sequence[DbRecord],
        sync_point: int,
    ) -> DatabaseState:
        document = wire.encode_merge(wire.DatabaseMerge(source_id, sync_point, status), rows)
        path = db_path("merge", device, partition, ref)
        response = await self._send("POST", path, content=document)
        return self._decode(DatabaseState, response.content)

    async def remove_db(
        self, device: str, partition: int, ref: DatabaseRef, *, expected: DatabaseState
    ) -> bool:
        path = db_path("remove", device, partition, ref)
        return self._flag(await self._send("POST", path, content=wire.encode(expected)), "removed")

    async def reclaim_db(
        self, device: str, partition: int, ref: DatabaseRef, *, before: Timestamp
    ) -> bool:
        path = db_path("reclaim", device, partition, ref)
        response = await self._send("POST", path, query={"before": before.internal})
        return self._flag(response, "removed")


def _malformed(what: str) -> None:
    raise wire.WireFormatError(f"no valid {what!r} in the answer")
