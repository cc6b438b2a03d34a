"""Container updates that could not be delivered, kept on disk for the updater.

One file per update: ``<dev>/async_pending[-N]/<suffix>/<object hash>-<timestamp>``
(N = the object's storage policy when not 0, as Swift), written atomically (temp file in
``<dev>/tmp``, fsync, rename, fsync dir). A second update for the same object and
timestamp replaces the first. Content, format version 1 (JSON, never pickle)::

    {"format": 1, "account": ..., "container": ..., "obj": ..., "timestamp": "<internal>",
     "size": 0, "content_type": ..., "etag": ..., "deleted": false, "policy_index": 0}

A pending is addressed by its device-relative path (``pending_id``), which is checked
against the naming pattern before use, so an id can never point outside the device.
"""

from __future__ import annotations

import json
import os
import re
from typing import Final

from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.storage import fsutil
from pocketstack.objectstore.storage.types import AsyncPending, ContainerUpdate
from pocketstack.objectstore.timestamp import Timestamp

FORMAT_VERSION: Final = 1
_DIR_RE: Final = re.compile(r"async_pending(?:-[0-9]+)?")
_ID_RE: Final = re.compile(
    r"(async_pending(?:-[0-9]+)?)/([0-9a-f]{3})/([0-9a-f]{32})-([0-9]{10}\.[0-9]{5}(?:_[0-9a-f]{16})?)"
)


class CorruptPending(ValueError):
    """A pending file that cannot be decoded."""


def encode_update(update: ContainerUpdate) -> bytes:
    return json.dumps(
        {
            "format": FORMAT_VERSION,
            "account": update.account,
            "container": update.container,
            "obj": update.obj,
            "timestamp": update.timestamp.internal,
            "size": update.size,
            "content_type": update.content_type,
            "etag": update.etag,
            "deleted": update.deleted,
            "policy_index": update.policy_index,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode("ascii")


def decode_update(blob: bytes) -> ContainerUpdate:
    try:
        data = json.loads(blob)
        if data.get("format") != FORMAT_VERSION:
            raise CorruptPending(f"unknown format {data.get('format')!r}")
        return ContainerUpdate(
            account=str(data["account"]),
            container=str(data["container"]),
            obj=str(data["obj"]),
            timestamp=Timestamp(data["timestamp"]),
            size=int(data["size"]),
            content_type=str(data["content_type"]),
            etag=str(data["etag"]),
            deleted=bool(data["deleted"]),
            policy_index=int(data["policy_index"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptPending(str(exc)) from exc


def write_pending(
    devices: fsutil.Devices,
    hasher: PathHasher,
    device: str,
    policy: int,
    update: ContainerUpdate,
    *,
    fsync: bool,
) -> str:
    """Store ``update`` atomically; returns its pending_id."""
    device_path = devices.path(device)
    name_hash = hasher.hexdigest(update.account, update.container, update.obj)
    relative_dir = os.path.join(
        fsutil.policy_dir(fsutil.ASYNC_DIR, policy), fsutil.suffix_of(name_hash)
    )
    filename = f"{name_hash}-{update.timestamp.internal}"
    tmp_dir = devices.tmp_dir(device_path)
    with fsutil.map_os_errors("async pending"):
        tmp_path = fsutil.write_new_file(tmp_dir, encode_update(update), fsync=fsync)
        try:
            fsutil.publish_file(
                tmp_path, os.path.join(device_path, relative_dir), filename, fsync=fsync
            )
        except BaseException:
            fsutil.unlink_quietly(tmp_path)
            raise
    return f"{relative_dir}/{filename}"


def list_pending_dirs(devices: fsutil.Devices, device: str, policy: int | None) -> list[str]:
    """Device-relative ``async_pending[-N]/<suffix>`` directories, sorted."""
    device_path = devices.path(device)
    found = []
    for top in sorted(_listdir(device_path)):
        if _DIR_RE.fullmatch(top) is None or (policy is not None and _policy_of(top) != policy):
            continue
        for suffix in sorted(_listdir(os.path.join(device_path, top))):
            if re.fullmatch(r"[0-9a-f]{3}", suffix):
                found.append(f"{top}/{suffix}")
    return found


def read_pendings(devices: fsutil.Devices, device: str, relative_dir: str) -> list[AsyncPending]:
    """Every decodable pending of one suffix directory (corrupt ones are skipped)."""
    device_path = devices.path(device)
    pendings = []
    for filename in sorted(_listdir(os.path.join(device_path, relative_dir))):
        pending_id = f"{relative_dir}/{filename}"
        match = _ID_RE.fullmatch(pending_id)
        if match is None:
            continue
        try:
            with open(os.path.join(device_path, pending_id), "rb") as handle:
                update = decode_update(handle.read())
        except (FileNotFoundError, CorruptPending):
            continue
        pendings.append(AsyncPending(pending_id, device, _policy_of(match.group(1)), update))
    return pendings


def remove_pending(devices: fsutil.Devices, device: str, pending_id: str) -> None:
    """Delete a delivered pending (and its suffix dir once empty)."""
    if _ID_RE.fullmatch(pending_id) is None:
        raise ValueError(f"not a pending id: {pending_id!r}")
    path = os.path.join(devices.path(device), pending_id)
    with fsutil.map_os_errors("async pending"):
        fsutil.unlink_quietly(path)
        fsutil.remove_empty_dir(os.path.dirname(path))


def _policy_of(top: str) -> int:
    """The policy of an ``async_pending[-N]`` directory name."""
    _base, _dash, number = top.partition("-")
    return int(number or 0)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
