"""RemoteNode: the StorageNode contract (`node`) over HTTP, to a ``pocketstack storage-node``.

One RemoteNode per storage host (``http://ip:port``) serves all of its devices, over one
pooled ``httpx.AsyncClient`` (keep-alive). The routes are the storage-node server's
(``objectstore/server``), the encodings those of `wire`. Bodies stream both ways: a PUT
sends the caller's body as it comes (``Content-Length`` when known, else chunked), and a
GET returns as soon as the headers arrived, with a body that reads frames off the socket.

Errors, mapped once (`map_exceptions`): an error answer re-raises the exact storage
exception the server raised (class, message, timestamp, content_length, status_deleted,
delete_at); a refused connection, a timeout or an answer cut off mid-stream raises
NodeUnavailable (503), ``from`` the transport's error, so the proxy counts the replica as
failed and moves to a handoff; a malformed answer is a StorageError (500).

Body lengths are checked on this side, before the wire could get them wrong: a body longer
than ``content_length`` raises BadRequest before its extra bytes are sent, a shorter one
ClientDisconnect before the request ends, and the last bytes are only sent once the body
has ended, so the server never sees a complete request for a body that failed. An
exception raised by the caller's body aborts the request and propagates unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, TypeVar

import httpx

from pocketstack.objectstore.storage import wire
from pocketstack.objectstore.storage.diskfile_io import SharedDigest
from pocketstack.objectstore.storage.exceptions import (
    BadRequest,
    ClientDisconnect,
    NodeUnavailable,
    StorageError,
)
from pocketstack.objectstore.storage.remote_replication import RemoteReplication
from pocketstack.objectstore.storage.types import (
    DEFAULT_LISTING_LIMIT,
    AccountInfo,
    AccountListing,
    AsyncPending,
    ByteRange,
    ContainerInfo,
    ContainerListing,
    ContainerUpdate,
    ListingQuery,
    ObjectBody,
    ObjectInfo,
    RenderedListing,
)
from pocketstack.objectstore.timestamp import Timestamp

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_CONNECT_TIMEOUT: Final = 1.0
DEFAULT_MAX_CONNECTIONS: Final = 64
KEEPALIVE_EXPIRY: Final = 30.0
"""Seconds an idle pooled connection is kept (the server keeps its side longer)."""
T = TypeVar("T")


@contextmanager
def map_exceptions(url: str) -> Iterator[None]:
    """Transport failures -> NodeUnavailable; unreadable answers -> StorageError."""
    try:
        yield
    except httpx.TransportError as exc:  # connect/read/write errors, timeouts, protocol
        raise NodeUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
    except wire.TruncatedStream as exc:
        raise NodeUnavailable(f"{url}: answer cut off: {exc}") from exc
    except wire.WireFormatError as exc:
        raise StorageError(f"{url}: malformed answer: {exc}") from exc


def _object_path(device: str, partition: int, account: str, container: str, obj: str) -> str:
    return wire.build_path("objects", device, partition, account, container, obj)


def _timestamp(timestamp: Timestamp) -> dict[str, str]:
    return {wire.TIMESTAMP_HEADER: timestamp.internal}


def _policy(policy: int | None) -> dict[str, str]:
    return {} if policy is None else {wire.POLICY_HEADER: str(policy)}


def _metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    document = wire.dumps({"metadata": dict(metadata)})
    return {wire.METADATA_HEADER: document.decode("ascii")}


def _listing_query(
    limit: int, marker: str, end_marker: str, prefix: str | None, delimiter: str | None,
    path: str | None, reverse: bool,
) -> dict[str, str]:  # fmt: skip
    query = {"limit": str(limit), "marker": marker, "end_marker": end_marker}
    optional = {"prefix": prefix, "delimiter": delimiter, "path": path}
    query.update({key: value for key, value in optional.items() if value is not None})
    if reverse:
        query["reverse"] = "true"
    return query


class RemoteNode(RemoteReplication):
    """The devices of the storage node at ``base_url``: see `node` for the contract (the
    replication operations are in `remote_replication`)."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            trust_env=False,  # internal traffic: never via HTTP(S)_PROXY from the environment
        )

    def __repr__(self) -> str:
        return f"RemoteNode({self.base_url!r})"

    async def close(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: AsyncIterable[bytes] | bytes | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request; an error answer raises its storage exception."""
        url = self.base_url + path + (f"?{wire.encode_query(query)}" if query else "")
        request = self.client.build_request(method, url, headers=headers, content=content)
        with map_exceptions(self.base_url):
            response = await self.client.send(request, stream=stream)
            if response.status_code < 400:
                return response
            if stream:
                await response.aread()  # small: lets the connection go back to the pool
        raise wire.decode_error(response.status_code, response.headers.get(wire.ERROR_HEADER))

    def _decode(self, cls: type[T], document: bytes | str | None) -> T:
        with map_exceptions(self.base_url):
            if document is None:
                raise wire.WireFormatError(f"no {cls.__name__} document")
            return wire.decode(cls, document)

    def _read(self, reader: Callable[..., T], *args: Any) -> T:
        with map_exceptions(self.base_url):
            return reader(*args)

    def _stream_body(self, response: httpx.Response) -> ObjectBody:
        return RemoteBody(response, None, self.base_url)

    def _field(self, response: httpx.Response, name: str) -> bool:
        with map_exceptions(self.base_url):
            value = wire.loads(response.content).get(name)
            if not isinstance(value, bool):
                raise wire.WireFormatError(f"no {name!r} in the answer")
            return value

    # -- objects ----------------------------------------------------------------------

    async def put_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
        body: AsyncIterable[bytes],
        content_length: int | None = None,
        body_digest: SharedDigest | None = None,  # the storage node hashes what it receives
    ) -> ObjectInfo:
        if content_length is not None and content_length < 0:
            raise BadRequest("negative Content-Length")
        headers = {**_timestamp(timestamp), **_policy(policy), **_metadata(metadata)}
        path = _object_path(device, partition, account, container, obj)
        response = await self._send_body("PUT", path, headers, body, content_length)
        return self._decode(ObjectInfo, response.content)

    async def _send_body(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: AsyncIterable[bytes],
        content_length: int | None,
    ) -> httpx.Response:
        """A request streaming ``body``, length-checked (see the module docstring)."""
        headers = dict(headers)
        if content_length is not None:
            headers["content-length"] = str(content_length)
        guard = _CheckedBody(body, content_length)
        try:
            return await self._send(method, path, headers=headers, content=guard)
        except BaseException as exc:
            if guard.error is not None and guard.error is not exc:
                raise guard.error from None  # the body's own failure, unchanged
            raise

    async def get_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        ranges: list[ByteRange] | None = None,
    ) -> tuple[ObjectInfo, ObjectBody]:
        headers = _policy(policy)
        if ranges is not None:
            headers[wire.RANGES_HEADER] = wire.encode_ranges(ranges)
        path = _object_path(device, partition, account, container, obj)
        response = await self._send("GET", path, headers=headers, stream=True)
        try:
            info = self._decode(ObjectInfo, response.headers.get(wire.INFO_HEADER))
            with map_exceptions(self.base_url):
                carried = response.headers.get(wire.RANGES_HEADER)
                body_ranges = None if carried is None else wire.decode_ranges(carried)
        except BaseException:
            await response.aclose()
            raise
        return info, RemoteBody(response, body_ranges, self.base_url)

    async def head_object(
        self, device: str, partition: int, account: str, container: str, obj: str, *, policy: int
    ) -> ObjectInfo:
        path = _object_path(device, partition, account, container, obj)
        response = await self._send("HEAD", path, headers=_policy(policy))
        return self._decode(ObjectInfo, response.headers.get(wire.INFO_HEADER))

    async def post_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> ObjectInfo:
        headers = {**_timestamp(timestamp), **_policy(policy), **_metadata(metadata)}
        path = _object_path(device, partition, account, container, obj)
        response = await self._send("POST", path, headers=headers)
        return self._decode(ObjectInfo, response.content)

    async def delete_object(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        policy: int,
        timestamp: Timestamp,
    ) -> bool:
        headers = {**_timestamp(timestamp), **_policy(policy)}
        path = _object_path(device, partition, account, container, obj)
        return self._field(await self._send("DELETE", path, headers=headers), "existed")

    # -- containers -------------------------------------------------------------------

    async def put_container(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        timestamp: Timestamp,
        policy_index: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        headers = {**_timestamp(timestamp), **_policy(policy_index), **_metadata(metadata)}
        path = wire.build_path("containers", device, partition, account, container)
        return self._field(await self._send("PUT", path, headers=headers), "created")

    async def head_container(
        self, device: str, partition: int, account: str, container: str
    ) -> ContainerInfo:
        path = wire.build_path("containers", device, partition, account, container)
        response = await self._send("HEAD", path)
        return self._decode(ContainerInfo, response.headers.get(wire.INFO_HEADER))

    async def post_container(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> None:
        path = wire.build_path("containers", device, partition, account, container)
        await self._send("POST", path, headers={**_timestamp(timestamp), **_metadata(metadata)})

    async def delete_container(
        self, device: str, partition: int, account: str, container: str, *, timestamp: Timestamp
    ) -> None:
        path = wire.build_path("containers", device, partition, account, container)
        await self._send("DELETE", path, headers=_timestamp(timestamp))

    async def list_objects(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        limit: int = DEFAULT_LISTING_LIMIT,
        marker: str = "",
        end_marker: str = "",
        prefix: str | None = None,
        delimiter: str | None = None,
        path: str | None = None,
        reverse: bool = False,
    ) -> ContainerListing:
        query = _listing_query(limit, marker, end_marker, prefix, delimiter, path, reverse)
        url = wire.build_path("containers", device, partition, account, container)
        response = await self._send("GET", url, query=query)
        with map_exceptions(self.base_url):
            return wire.decode_listing(ContainerListing, response.content)

    async def list_objects_json(
        self, device: str, partition: int, account: str, container: str, query: ListingQuery
    ) -> RenderedListing | None:
        if query.delimiter or query.path is not None:
            return None
        params = _listing_query(query.limit, query.marker, query.end_marker, query.prefix,
                                None, None, query.reverse)
        url = wire.build_path("containers", device, partition, account, container)
        response = await self._send("GET", url, query={**params, "rendered": "json"})
        info = response.headers.get(wire.INFO_HEADER)
        if response.status_code == 204 or info is None:  # declined (or an older server)
            return None
        return RenderedListing(self._decode(ContainerInfo, info), response.content)

    async def update_container_listing(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        *,
        timestamp: Timestamp,
        size: int,
        content_type: str,
        etag: str,
        deleted: bool = False,
        policy_index: int = 0,
    ) -> None:
        row = wire.ObjectRowUpdate(timestamp, size, content_type, etag, deleted, policy_index)
        path = wire.build_path("containers", device, partition, account, container, obj)
        await self._send("PUT", path, content=wire.encode(row))

    # -- accounts ---------------------------------------------------------------------

    async def put_account(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        path = wire.build_path("accounts", device, partition, account)
        headers = {**_timestamp(timestamp), **_metadata(metadata)}
        return self._field(await self._send("PUT", path, headers=headers), "created")

    async def head_account(self, device: str, partition: int, account: str) -> AccountInfo:
        response = await self._send("HEAD", wire.build_path("accounts", device, partition, account))
        return self._decode(AccountInfo, response.headers.get(wire.INFO_HEADER))

    async def post_account(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        timestamp: Timestamp,
        metadata: Mapping[str, str],
    ) -> None:
        path = wire.build_path("accounts", device, partition, account)
        await self._send("POST", path, headers={**_timestamp(timestamp), **_metadata(metadata)})

    async def delete_account(
        self, device: str, partition: int, account: str, *, timestamp: Timestamp
    ) -> None:
        path = wire.build_path("accounts", device, partition, account)
        await self._send("DELETE", path, headers=_timestamp(timestamp))

    async def list_containers(
        self,
        device: str,
        partition: int,
        account: str,
        *,
        limit: int = DEFAULT_LISTING_LIMIT,
        marker: str = "",
        end_marker: str = "",
        prefix: str | None = None,
        delimiter: str | None = None,
        reverse: bool = False,
    ) -> AccountListing:
        query = _listing_query(limit, marker, end_marker, prefix, delimiter, None, reverse)
        url = wire.build_path("accounts", device, partition, account)
        response = await self._send("GET", url, query=query)
        with map_exceptions(self.base_url):
            return wire.decode_listing(AccountListing, response.content)

    async def update_account_listing(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        *,
        put_timestamp: Timestamp,
        delete_timestamp: Timestamp,
        object_count: int,
        bytes_used: int,
        policy_index: int = 0,
    ) -> None:
        row = wire.ContainerRowUpdate(
            put_timestamp, delete_timestamp, object_count, bytes_used, policy_index
        )
        path = wire.build_path("accounts", device, partition, account, container)
        await self._send("PUT", path, content=wire.encode(row))

    # -- async pendings ---------------------------------------------------------------

    async def write_async_pending(self, device: str, policy: int, update: ContainerUpdate) -> None:
        path = wire.build_path("async-pendings", device)
        await self._send("POST", path, headers=_policy(policy), content=wire.encode(update))

    async def iter_async_pendings(
        self, device: str, policy: int | None = None
    ) -> AsyncIterator[AsyncPending]:
        path = wire.build_path("async-pendings", device)
        response = await self._send("GET", path, headers=_policy(policy), stream=True)
        try:
            frames = wire.FrameReader(response.aiter_raw())
            while True:
                with map_exceptions(self.base_url):
                    kind, payload = await frames.read()
                    if kind != wire.FRAME_DATA:
                        await frames.finish()
                    if kind == wire.FRAME_END:
                        return
                    if kind == wire.FRAME_ERROR:
                        raise wire.decode_error(500, payload.decode("ascii"))
                    pending = wire.decode(AsyncPending, payload)
                yield pending
        finally:
            await response.aclose()

    async def remove_async_pending(self, device: str, pending_id: str) -> None:
        await self._send("DELETE", wire.build_path("async-pendings", device, pending_id))


class RemoteBody:
    """An object's bytes as the server streams them (``D`` frames until ``Z`` or ``E``)."""

    def __init__(
        self, response: httpx.Response, ranges: list[tuple[int, int]] | None, url: str
    ) -> None:
        self.ranges = ranges
        self._response = response
        self._frames = wire.FrameReader(response.aiter_raw())
        self._url = url
        self._done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            with map_exceptions(self._url):
                kind, payload = await self._frames.read()
                if kind == wire.FRAME_DATA:
                    return payload
                await self._frames.finish()  # a complete answer: its connection is reusable
                if kind == wire.FRAME_ERROR:
                    raise wire.decode_error(500, payload.decode("ascii"))
        except BaseException:
            await self.aclose()
            raise
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            await self._response.aclose()


class _CheckedBody:
    """The caller's body, length-checked (module docstring); remembers the body's error."""

    def __init__(self, body: AsyncIterable[bytes], content_length: int | None) -> None:
        self._source = aiter(body)
        self._length = content_length
        self.error: BaseException | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._checked():
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.error = exc
            raise

    async def _checked(self) -> AsyncIterator[bytes]:
        length, sent = self._length, 0
        async for chunk in self._source:
            if not chunk:
                continue
            sent += len(chunk)
            if length is not None and sent >= length:
                if sent > length or await self._has_more():
                    raise BadRequest(f"body longer than Content-Length {length}")
                yield chunk  # the last bytes go out only once the body has ended
                return
            yield chunk
        if length is not None and sent < length:
            raise ClientDisconnect(f"body ended after {sent} of {length} bytes")

    async def _has_more(self) -> bool:
        async for chunk in self._source:
            if chunk:
                return True
        return False
