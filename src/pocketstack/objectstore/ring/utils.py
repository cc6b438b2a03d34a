"""Tiers, the tier tree, and the device strings of the CLI (parsing and validation).

Device strings follow swift-ring-builder's *search values*::

    d<id>r<region>z<zone>-<ip>:<port>/<device>_<meta>

Every part is optional in a search (`z2`, `-10.0.0.1`, `/sdb`, `d7`); adding a device needs
zone, ip, port and device (region defaults to 1). IPv6 addresses go in brackets:
`r1z1-[::1]:6200/sdb`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from pocketstack.objectstore.ring.types import Device, Tier

_SEARCH_RE = re.compile(
    r"""^(?:d(?P<id>\d+))?
        (?:r(?P<region>\d+))?
        (?:z(?P<zone>\d+))?
        (?:-(?P<ip>\[[0-9A-Fa-f:.]+\]|[^:/_\s\[\]]+))?
        (?::(?P<port>\d+))?
        (?:/(?P<device>[^_/\s]+))?
        (?:_(?P<meta>.*))?$""",
    re.VERBOSE,
)
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_DEVICE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")


def tiers_for_dev(dev: Device) -> tuple[Tier, Tier, Tier, Tier]:
    """The four tiers of a device, widest first.

    >>> tiers_for_dev(Device(DeviceId(7), 1, 2, "10.0.0.1", 6200, "sdb", 100.0))
    ((1,), (1, 2), (1, 2, '10.0.0.1'), (1, 2, '10.0.0.1', 7))
    """
    return (
        (dev.region,),
        (dev.region, dev.zone),
        (dev.region, dev.zone, dev.ip),
        (dev.region, dev.zone, dev.ip, dev.id),
    )


def build_tier_tree(devs: Iterable[Device]) -> dict[Tier, list[Tier]]:
    """Map each tier to its child tiers (sorted), under a synthetic root `()`.

    Two regions, three zones, four hosts, six devices::

                              ()
                  ┌───────────┴───────────┐
                (1,)                     (2,)
            ┌─────┴─────┐                 │
         (1, 1)      (1, 2)            (2, 1)
         ┌──┴──┐        │                 │
     (1,1,ipA) (1,1,ipB) (1,2,ipC)     (2,1,ipD)
       │  │      │       │  │            │
       d0 d1     d2      d3 d4           d5       (leaves: (r, z, ip, id))

    A tier without devices has no entry; leaves (devices) have no entry either.
    """
    tree: dict[Tier, set[Tier]] = defaultdict(set)
    for dev in devs:
        parent: Tier = ()
        for tier in tiers_for_dev(dev):
            tree[parent].add(tier)
            parent = tier
    return {tier: sorted(children, key=_tier_sort_key) for tier, children in tree.items()}


def _tier_sort_key(tier: Tier) -> tuple[tuple[int, str], ...]:
    return tuple((0, f"{p:020d}") if isinstance(p, int) else (1, p) for p in tier)


@dataclass(frozen=True)
class DeviceSearch:
    """A parsed search value: every field that is not None must match."""

    id: int | None = None
    region: int | None = None
    zone: int | None = None
    ip: str | None = None
    port: int | None = None
    device: str | None = None
    meta: str | None = None

    def matches(self, dev: Device) -> bool:
        return all(
            getattr(self, f.name) is None or getattr(self, f.name) == getattr(dev, f.name)
            for f in fields(self)
        )

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass(frozen=True)
class DeviceSpec:
    """Everything needed to add a device, except its weight (given separately)."""

    region: int
    zone: int
    ip: str
    port: int
    device: str
    meta: str = ""


def parse_search_value(value: str) -> DeviceSearch:
    """Parse `d1r1z2-10.0.0.1:6200/sdb_meta` (any part optional). A bare number is an id,
    and an address with a dot or brackets (`10.0.0.1`, `[::1]:6200`, `node1.example`) may
    leave out its leading `-`.

    Raises ValueError when the string is not a search value or matches everything.
    """
    text = value
    if text.isdigit():
        return DeviceSearch(id=int(text))
    match = _SEARCH_RE.match(text)
    if not match and (text[:1] == "[" or "." in text.split(":")[0].split("/")[0]):
        match = _SEARCH_RE.match("-" + text)  # a bare address: `10.0.0.1:6200/sdb`
    if not match or not text:
        raise ValueError(f"invalid device search value {value!r} "
                         "(expected e.g. d3, z2, r1z1-10.0.0.1:6200/sdb)")
    groups = match.groupdict()
    ints = {k: int(groups[k]) if groups[k] is not None else None
            for k in ("id", "region", "zone", "port")}
    ip = validate_ip(groups["ip"]) if groups["ip"] is not None else None
    return DeviceSearch(ip=ip, device=groups["device"], meta=groups["meta"], **ints)


def parse_device_spec(value: str) -> DeviceSpec:
    """Parse the device string of `ring add`: `[r<region>]z<zone>-<ip>:<port>/<device>[_meta]`."""
    search = parse_search_value(value)
    missing = [name for name in ("zone", "ip", "port", "device") if getattr(search, name) is None]
    if search.id is not None or missing:
        detail = "must not give an id" if search.id is not None else f"missing {', '.join(missing)}"
        raise ValueError(f"invalid device {value!r}: {detail} "
                         "(expected e.g. r1z1-127.0.0.1:6200/sdb)")
    assert search.zone is not None and search.ip is not None
    assert search.port is not None and search.device is not None
    return DeviceSpec(
        region=validate_region_or_zone("region", 1 if search.region is None else search.region),
        zone=validate_region_or_zone("zone", search.zone),
        ip=search.ip,
        port=validate_port(search.port),
        device=validate_device_name(search.device),
        meta=search.meta or "",
    )


def validate_ip(value: str) -> str:
    """Return a normalized IP literal or lower-case host name; ValueError otherwise."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _HOSTNAME_RE.match(text) and not text.replace(".", "").isdigit():
        return text.lower()
    raise ValueError(f"invalid ip address or host name {value!r}")


def validate_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"invalid port {port!r} (expected 1..65535)")
    return port


def validate_region_or_zone(what: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"invalid {what} {value!r} (expected an integer 0..65535)")
    return value


def validate_device_name(name: str) -> str:
    if not isinstance(name, str) or not _DEVICE_NAME_RE.match(name):
        raise ValueError(f"invalid device name {name!r} (1 to 64 letters, digits, '.' or '-'; "
                         "'_' separates the meta field)")
    return name


def validate_weight(weight: float) -> float:
    try:
        value = float(weight)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid weight {weight!r}") from exc
    if isinstance(weight, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"invalid weight {weight!r} (expected a finite number >= 0)")
    return value


def validate_meta(meta: str) -> str:
    if not isinstance(meta, str) or any(ch in meta for ch in "\r\n\0") or len(meta) > 1024:
        raise ValueError("invalid meta (at most 1024 characters, one line)")
    return meta


def ring_path_for(builder_path: Path) -> Path:
    """The ring file written beside a builder: `x.builder` -> `x.ring` (other names get
    `.ring` appended)."""
    if builder_path.suffix == ".builder":
        return builder_path.with_suffix(".ring")
    return builder_path.with_name(builder_path.name + ".ring")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never a mix:
    a temp file in the same directory, fsync, chmod 0644, rename, fsync the directory."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    except OSError:  # some file systems cannot fsync a directory; the rename stands anyway
        pass
    finally:
        os.close(dir_fd)
