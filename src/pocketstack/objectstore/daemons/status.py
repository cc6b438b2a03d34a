"""``pocketstack status``: each device's partitions, handoffs, pendings, quarantine and last
daemon passes, and each ring's balance and dispersion.

Two sources (`gather`): a single-host data dir, read directly (the devices on disk, the
rings, and the daemons' stats saved in ``<data_dir>/recon.json``), or a cluster, where
every storage node listed in the rings answers ``GET /recon/status``. The document is
``{"v": 1, "source": "local"|"cluster", "hosts": [recon document | {"host", "error"}],
"rings": [ring summary]}``; `render` prints it as tables (rich), ``--json`` as is.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from pocketstack.objectstore.daemons.cluster import Cluster, load_rings
from pocketstack.objectstore.daemons.recon import RECON_FILE, ReconCache, host_status
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.ring.ring import RingData
from pocketstack.objectstore.ring.stats import compute_stats
from pocketstack.objectstore.storage.local_node import LocalNode

STATUS_TIMEOUT = 10.0


def ring_summaries(rings_dir: Path) -> list[dict[str, Any]]:
    """Partitions, replicas, devices, balance and dispersion of each ring file."""
    summaries = []
    for path in sorted(rings_dir.glob("*.ring")):
        data = RingData.load(path)
        stats = compute_stats(
            data.devs, data.replica2part2dev_id, data.replica_count, data.partition_count
        )
        summaries.append({
            "name": path.stem, "partitions": data.partition_count,
            "replicas": data.replica_count, "devices": len(stats.devices),
            "zones": stats.zones, "hosts": stats.hosts,
            "balance": round(stats.balance, 2), "dispersion": round(stats.dispersion, 2),
        })  # fmt: skip
    return summaries


async def gather_local(
    data_dir: Path, rings_dir: Path, hasher: PathHasher, address: tuple[str, int]
) -> dict[str, Any]:
    """The status of the host whose devices are ``<data_dir>/devices`` at ``address``."""
    async with LocalNode(data_dir / "devices", hasher=hasher, fsync=False) as local:
        account, container, objects = load_rings(rings_dir, hasher)

        def node_for(device: Any) -> LocalNode | None:
            return local if (device.ip, device.port) == address else None

        cluster = Cluster(local, account, container, objects, node_for)
        daemons = ReconCache(data_dir / RECON_FILE).load()
        host = await host_status(cluster, daemons, f"{address[0]}:{address[1]}")
    return {"v": 1, "source": "local", "hosts": [host], "rings": ring_summaries(rings_dir)}


async def gather_cluster(rings_dir: Path, hasher: PathHasher) -> dict[str, Any]:
    """Every storage node of the rings, asked for ``/recon/status`` at once."""
    account, container, objects = load_rings(rings_dir, hasher)
    addresses = sorted(
        {d.address for ring in (account, container, *objects.values()) for d in ring.devices}
    )
    async with httpx.AsyncClient(timeout=STATUS_TIMEOUT, trust_env=False) as client:
        hosts = await asyncio.gather(*(_ask(client, address) for address in addresses))
    return {"v": 1, "source": "cluster", "hosts": list(hosts), "rings": ring_summaries(rings_dir)}


async def _ask(client: httpx.AsyncClient, address: str) -> dict[str, Any]:
    try:
        response = await client.get(f"http://{address}/recon/status")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"host": address, "error": f"{type(exc).__name__}: {exc}"}
    document["host"] = address
    return document


# -- rendering ---------------------------------------------------------------------------


def _ago(started: float | None, now: float) -> str:
    if not started:
        return "never"
    seconds = max(0.0, now - started)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    return f"{seconds / 60:.0f}m ago" if seconds < 7200 else f"{seconds / 3600:.1f}h ago"


def _parts(partitions: dict[str, dict[str, int]]) -> str:
    return " ".join(f"{name} {p['primary']}/{p['handoff']}" for name, p in partitions.items())


def _replication(last: dict[str, Any] | None, now: float) -> str:
    if not last:
        return "never"
    return (
        f"{_ago(last['started'], now)} in {last['duration']:.1f}s: {last['partitions']} parts, "
        f"{last['objects_pushed']} obj + {last['rows_pushed']} rows pushed, "
        f"{last['removed']} handed off, {last['failures']} failures"
    )


def _audit(last: dict[str, Any] | None, now: float) -> str:
    if not last:
        return "never"
    rate = last["bytes"] / last["duration"] / 1e6 if last["duration"] else 0.0
    return (
        f"{_ago(last['started'], now)}: {last['files']} files, {last['dbs']} DBs, "
        f"{rate:.1f} MB/s, {last['quarantined'] + last['dbs_quarantined']} quarantined"
    )


def _device_row(host: str, device: dict[str, Any], now: float) -> list[str]:
    quarantined = sum(device["quarantined"].values())
    return [
        host, device["device"] + ("" if device["available"] else " (unavailable)"),
        _parts(device["partitions"]), str(device["handoffs_waiting"]),
        str(device["async_pendings"]), str(quarantined),
        _replication(device["replication"], now),
        _audit(device["auditor"], now) + _progress(device.get("auditing")),
    ]  # fmt: skip


def _progress(running: dict[str, Any] | None) -> str:
    """The audit pass under way on the device, if any."""
    if not running:
        return ""
    return f" (auditing: {running['files']} files, {running['partitions']} partitions so far)"


def render(document: dict[str, Any], console: Console) -> None:
    now = time.time()
    devices = Table(title="Devices (partitions: primary/handoff)")
    for column in ("host", "device", "partitions", "handoffs", "async pendings",
                   "quarantined", "last replication", "last audit"):  # fmt: skip
        devices.add_column(column)
    for host in document["hosts"]:
        if "error" in host:
            devices.add_row(host["host"], "-", f"[red]unreachable: {host['error']}[/red]")
            continue
        for device in host["devices"]:
            devices.add_row(*_device_row(host["host"], device, now))
    console.print(devices)
    rings = Table(title="Rings")
    for column in ("ring", "partitions", "replicas", "devices", "zones", "balance %",
                   "dispersion %"):  # fmt: skip
        rings.add_column(column)
    for ring in document["rings"]:
        rings.add_row(*(str(ring[key]) for key in ("name", "partitions", "replicas",
                                                   "devices", "zones", "balance",
                                                   "dispersion")))  # fmt: skip
    console.print(rings)
