"""Object storage benchmark (Swift v1 over HTTP; it drives pocketstack and upstream Swift
alike): small objects (PUT / GET / HEAD / DELETE), a full listing of a large container, and
streamed PUT / GET of large objects.

Every byte read back is verified: GET bodies against the MD5 of what was written (and the
ETag), PUT ETags against the MD5 the client computed, HEAD lengths, listing names and count.
A failed check raises, and :func:`bench.runner.run` counts it as an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

from bench.procstat import ProcessTree
from bench.runner import Operation, Result, measure, run

MiB = 1024 * 1024
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


class VerifyError(Exception):
    """What came back is not what was written."""


@dataclass(frozen=True)
class Target:
    """One cloud as the workload sees it: where its account is, and who serves it."""

    cloud: str
    storage_url: str  # .../v1/AUTH_<project id>
    token: str
    servers: ProcessTree
    # Fills a container's listing without the API (account, container, count, etag), where
    # the API is too slow for a setup step; None: PUT through the API (measured).
    fill: Callable[[str, str, int, str], None] | None = None


@dataclass(frozen=True)
class Workload:
    concurrency: int = 16
    small_count: int = 2000
    small_size: int = 4096
    listing_objects: int = 10_000
    listing_page: int = 10_000
    listing_runs: int = 32
    large_count: int = 16
    large_size: int = 64 * MiB
    chunk: int = MiB


class Payloads:
    """The bytes written, the same for every cloud: random small bodies; large bodies built
    from one random block, made distinct per object by a header in every chunk."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.small = [os.urandom(workload.small_size) for _ in range(workload.small_count)]
        self.small_md5 = [hashlib.md5(body).hexdigest() for body in self.small]
        self._block = os.urandom(workload.chunk)
        self._large_md5: dict[int, str] = {}

    def large_chunks(self, index: int) -> Iterator[bytes]:
        """The chunks of large object ``index``, built one at a time."""
        chunk, size = self.workload.chunk, self.workload.large_size
        for offset in range(0, size, chunk):
            header = f"{index:08d}:{offset:012d}:".encode()  # 22 bytes
            yield header + self._block[len(header):min(chunk, size - offset)]

    def large_md5(self, index: int) -> str:
        if index not in self._large_md5:
            digest = hashlib.md5()
            for part in self.large_chunks(index):
                digest.update(part)
            self._large_md5[index] = digest.hexdigest()
        return self._large_md5[index]


def session(workload: Workload) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=workload.concurrency, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=600))


async def _check(response: aiohttp.ClientResponse, *expected: int) -> None:
    if response.status not in expected:
        text = (await response.read())[:200]
        raise VerifyError(f"{response.method} {response.url.path}: {response.status} {text!r}")


async def put_container(http: aiohttp.ClientSession, target: Target, container: str) -> None:
    async with http.put(f"{target.storage_url}/{container}",
                        headers={"X-Auth-Token": target.token}) as response:
        await _check(response, 201, 202)


class ObjectBench:
    """The workload against one target; each method returns the :class:`Result` of a phase."""

    def __init__(self, http: aiohttp.ClientSession, target: Target, payloads: Payloads) -> None:
        self.http = http
        self.target = target
        self.payloads = payloads
        self.workload = payloads.workload
        self.auth = {"X-Auth-Token": target.token}

    def _url(self, container: str, name: str = "") -> str:
        base = f"{self.target.storage_url}/{quote(container)}"
        return f"{base}/{quote(name)}" if name else base

    async def _measure(self, name: str, op: Operation, count: int) -> Result:
        return await measure(self.target.cloud, name, op, count=count,
                             concurrency=self.workload.concurrency,
                             servers=self.target.servers)

    def small_ops(self, container: str) -> dict[str, Operation]:
        """PUT, GET, HEAD and DELETE of small object ``i``, each checking what it gets."""
        p, size = self.payloads, self.workload.small_size

        async def put(i: int) -> int:
            async with self.http.put(self._url(container, f"o{i:06d}"), data=p.small[i],
                                     headers=self.auth) as response:
                await _check(response, 201)
                if response.headers.get("Etag", "").strip('"') != p.small_md5[i]:
                    raise VerifyError(f"PUT etag {response.headers.get('Etag')}")
            return size

        async def get(i: int) -> int:
            async with self.http.get(self._url(container, f"o{i:06d}"),
                                     headers=self.auth) as response:
                await _check(response, 200)
                body = await response.read()
            if hashlib.md5(body).hexdigest() != p.small_md5[i]:
                raise VerifyError(f"GET o{i:06d}: body MD5 differs ({len(body)} bytes)")
            return len(body)

        async def head(i: int) -> int:
            async with self.http.head(self._url(container, f"o{i:06d}"),
                                      headers=self.auth) as response:
                await _check(response, 200)
                if (response.headers.get("Content-Length") != str(size)
                        or response.headers.get("Etag", "").strip('"') != p.small_md5[i]):
                    raise VerifyError("HEAD: length or etag differs")
            return 0

        async def delete(i: int) -> int:
            async with self.http.delete(self._url(container, f"o{i:06d}"),
                                        headers=self.auth) as response:
                await _check(response, 204)
            return 0

        return {"PUT": put, "GET": get, "HEAD": head, "DELETE": delete}

    async def small(self, container: str, methods: tuple[str, ...] = (
            "PUT", "GET", "HEAD", "DELETE")) -> list[Result]:
        """``small_count`` objects of ``small_size`` bytes: each method in turn over all."""
        if "PUT" in methods:
            await put_container(self.http, self.target, container)
        size, ops = self.workload.small_size, self.small_ops(container)
        kib = f"{size // 1024} KiB" if size >= 1024 else f"{size} B"
        return [await self._measure(f"{method} {kib}", ops[method], self.workload.small_count)
                for method in methods]

    async def fill_listing(self, container: str) -> list[Result]:
        """PUT ``listing_objects`` empty objects (measured too: a zero-byte PUT), or let the
        target's ``fill`` write them."""
        await put_container(self.http, self.target, container)
        if self.target.fill is not None:
            account = self.target.storage_url.rsplit("/", 1)[1]
            await asyncio.to_thread(self.target.fill, account, container,
                                    self.workload.listing_objects, EMPTY_MD5)
            return []

        async def put(i: int) -> int:
            async with self.http.put(self._url(container, f"item-{i:07d}"), data=b"",
                                     headers=self.auth) as response:
                await _check(response, 201)
            return 0

        return [await self._measure("PUT 0 B (listing fill)", put,
                                    self.workload.listing_objects)]

    async def listing(self, container: str) -> Result:
        """Full JSON listings of the filled container, paged by ``listing_page``."""
        expected, page = self.workload.listing_objects, self.workload.listing_page

        async def full_listing(_: int) -> int:
            marker, seen, moved = "", 0, 0
            while True:
                query = {"format": "json", "limit": str(page), "marker": marker}
                async with self.http.get(self._url(container), params=query,
                                         headers=self.auth) as response:
                    await _check(response, 200, 204)
                    body = await response.read()
                moved += len(body)
                entries = json.loads(body) if body else []
                for entry in entries:
                    if entry["name"] != f"item-{seen:07d}" or entry["hash"] != EMPTY_MD5:
                        raise VerifyError(f"listing entry {seen}: {entry}")
                    seen += 1
                if len(entries) < page:
                    break
                marker = entries[-1]["name"]
            if seen != expected:
                raise VerifyError(f"listing: {seen} objects, expected {expected}")
            return moved

        return await self._measure(f"LIST {expected} (json)", full_listing,
                                   self.workload.listing_runs)

    def large_ops(self, container: str) -> dict[str, Operation]:
        """Streamed (chunked) PUT and GET of large object ``i``, each checking its MD5."""
        p, w = self.payloads, self.workload

        async def body(i: int) -> AsyncIterator[bytes]:
            for part in p.large_chunks(i):
                yield part

        async def put(i: int) -> int:
            async with self.http.put(self._url(container, f"big{i:04d}"), data=body(i),
                                     headers=self.auth) as response:
                await _check(response, 201)
                if response.headers.get("Etag", "").strip('"') != p.large_md5(i):
                    raise VerifyError(f"PUT etag {response.headers.get('Etag')}")
            return w.large_size

        async def get(i: int) -> int:
            digest, size = hashlib.md5(), 0
            async with self.http.get(self._url(container, f"big{i:04d}"),
                                     headers=self.auth) as response:
                await _check(response, 200)
                async for part in response.content.iter_chunked(w.chunk):
                    digest.update(part)
                    size += len(part)
            if size != w.large_size or digest.hexdigest() != p.large_md5(i):
                raise VerifyError(f"GET big{i:04d}: {size} bytes, MD5 differs")
            return size

        return {"PUT": put, "GET": get}

    async def large(self, container: str) -> list[Result]:
        """Streamed (chunked) PUT, then GET, of ``large_count`` objects of ``large_size``."""
        await put_container(self.http, self.target, container)
        p, w = self.payloads, self.workload
        mib = f"{w.large_size // MiB} MiB"
        for i in range(w.large_count):
            p.large_md5(i)  # outside the timed phase
        ops = self.large_ops(container)
        return [await self._measure(f"PUT {mib} (streamed)", ops["PUT"], w.large_count),
                await self._measure(f"GET {mib} (streamed)", ops["GET"], w.large_count)]

    async def delete_all(self, container: str, names: list[str]) -> None:
        """Cleanup, not measured (frees the disk between rounds)."""

        async def delete(i: int) -> int:
            async with self.http.delete(self._url(container, names[i]),
                                        headers=self.auth) as response:
                await _check(response, 204, 404)
            return 0

        await run("cleanup", delete, count=len(names), concurrency=self.workload.concurrency)
