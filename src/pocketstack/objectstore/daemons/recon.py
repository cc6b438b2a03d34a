"""What ``pocketstack status`` shows of one host: its devices and its daemons' last passes.

`host_status` builds the document (version 1, JSON-ready)::

    {"v": 1, "host": "10.0.0.5:6200", "time": 1700000000.0,
     "devices": [{"device": "d1", "available": true, "bytes_total", "bytes_free",
                  "partitions": {"object": {"primary": 12, "handoff": 1}, ...},
                  "handoffs_waiting": 1, "async_pendings": 0,
                  "quarantined": {"objects": 1, "containers": 0},
                  "replication": {"started", "duration", counts...} | null,
                  "auditor": {"started", "duration", counts...} | null,
                  "auditing": the running audit pass's counts so far | null}],
     "replicator": {"passes", "last", "running"}, "auditor": {...}, "updater": {...}}

from the devices on disk (counted now) and the daemons' stats: live ones from a running
process (the storage node's ``GET /recon/status``), or those a process saved after each
pass in its recon file (`ReconCache`, ``<data_dir>/recon.json`` for ``pocketstack up``),
read by ``pocketstack status`` on a single host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Final

from pocketstack.common.files import atomic_write
from pocketstack.objectstore.daemons.cluster import Cluster, RingRole
from pocketstack.objectstore.daemons.jobs import make_job
from pocketstack.objectstore.storage.local_replication import DeviceReport, kind_dir

LOG = logging.getLogger(__name__)
RECON_FILE: Final = "recon.json"
RECON_VERSION: Final = 1
DAEMONS: Final = ("replicator", "auditor", "updater")


class ReconCache:
    """The daemons' stats saved as JSON at ``path`` (atomically), and read back."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    async def save(self, daemons: dict[str, Any]) -> None:
        if self.path is None:
            return
        data = json.dumps({"v": RECON_VERSION, **daemons}, sort_keys=True, indent=1).encode()
        try:
            await asyncio.to_thread(atomic_write, self.path, data)
        except OSError as exc:
            LOG.warning("cannot save %s: %s", self.path, exc)

    def load(self) -> dict[str, Any]:
        """The saved stats ({} when there are none or they are unreadable)."""
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("v") != RECON_VERSION:
            return {}
        return {name: data[name] for name in DAEMONS if name in data}


def _device_pass(
    daemon: dict[str, Any] | None, device: str, which: str = "last"
) -> dict[str, Any] | None:
    """One device's part of a daemon's ``last`` (or ``running``) pass."""
    done = (daemon or {}).get(which)
    if not done or device not in done.get("devices", {}):
        return None
    return {"started": done["started"], "duration": done["duration"], **done["devices"][device]}


def _partitions(cluster: Cluster, role: RingRole, report: DeviceReport) -> dict[str, int]:
    found = report.partitions.get(kind_dir(role.kind, role.policy), [])
    jobs = [make_job(cluster, role, report.device, part) for part in found]
    primary = sum(1 for job in jobs if job is not None and job.primary)
    return {"primary": primary, "handoff": len(found) - primary}


async def device_status(cluster: Cluster, device: str, daemons: dict[str, Any]) -> dict[str, Any]:
    roles = cluster.rings()
    report = await cluster.local.describe_device(
        device, [kind_dir(role.kind, role.policy) for role in roles]
    )
    partitions = {role.name: _partitions(cluster, role, report) for role in roles}
    return {
        "device": device,
        "available": report.available,
        "bytes_total": report.bytes_total,
        "bytes_free": report.bytes_free,
        "partitions": partitions,
        "handoffs_waiting": sum(p["handoff"] for p in partitions.values()),
        "async_pendings": report.async_pendings,
        "quarantined": report.quarantined,
        "replication": _device_pass(daemons.get("replicator"), device),
        "auditor": _device_pass(daemons.get("auditor"), device),
        "auditing": _device_pass(daemons.get("auditor"), device, "running"),
    }


async def host_status(cluster: Cluster, daemons: dict[str, Any], host: str) -> dict[str, Any]:
    """The status document of this host (module docstring)."""
    devices = [await device_status(cluster, d, daemons) for d in cluster.local_devices()]
    return {
        "v": RECON_VERSION,
        "host": host,
        "time": time.time(),
        "devices": devices,
        **{name: daemons.get(name) for name in DAEMONS},
    }
