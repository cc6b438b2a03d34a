"""The rings `pocketstack up` creates on first start.

One ring for accounts, one for containers, one per storage policy for objects::

    account.ring  container.ring  object.ring (policy 0)  object-1.ring (policy 1) ...

each with its builder beside it (`account.builder`, ...), so an operator can grow the
cluster later with `pocketstack ring add/rebalance`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pocketstack.objectstore.ring.types import RingBuilderError
from pocketstack.objectstore.ring.utils import ring_path_for

if TYPE_CHECKING:  # imported when a ring is missing: not on a restart (see _builder_for)
    from pocketstack.objectstore.ring.builder import RingBuilder

DEFAULT_DEVICES: tuple[tuple[str, int], ...] = (("d1", 1), ("d2", 2), ("d3", 3))
DEFAULT_WEIGHT = 100.0
DEFAULT_MIN_PART_HOURS = 1
DEFAULT_REGION = 1


def ring_name(kind: str, policy: int = 0) -> str:
    """`account`, `container`, `object` (policy 0) or `object-<n>`: file stem of a ring."""
    if kind in ("account", "container"):
        return kind
    if kind != "object" or policy < 0:
        raise ValueError(f"no ring for {kind!r} (policy {policy})")
    return "object" if policy == 0 else f"object-{policy}"


def create_default_rings(
    ring_dir: Path,
    *,
    devices: Sequence[tuple[str, int]] = DEFAULT_DEVICES,
    replicas: int = 3,
    part_power: int = 10,
    ip: str = "127.0.0.1",
    port: int = 6200,
    object_policies: Sequence[int] = (0,),
    policy_replicas: Mapping[int, int] | None = None,
    seed: int | None = 0,
) -> list[Path]:
    """Build and save the builder and ring of accounts, containers and each object policy.

    `devices` are (device name, zone) pairs, all on `ip:port` in region 1 with equal
    weight. A policy may have its own replica count (`policy_replicas`). Rings that already
    exist are left alone; a missing ring whose builder exists is written from the builder.
    Returns the ring files written. Raises ValueError, before writing anything, on bad
    arguments (a ring with more replicas than devices, a bad device name, ...).
    """
    policy_replicas = dict(policy_replicas or {})
    wanted = {"account": replicas, "container": replicas}
    for policy in object_policies:
        wanted[ring_name("object", policy)] = policy_replicas.get(policy, replicas)
    todo = [_builder_for(ring_dir / f"{name}.builder", devices, count, part_power, ip, port,
                         seed)
            for name, count in wanted.items()
            if not ring_path_for(ring_dir / f"{name}.builder").exists()]
    # everything is validated and rebalanced in memory; only now write
    ring_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for builder_path, builder, changed in todo:
        if changed:
            builder.save(builder_path)
        ring_path = ring_path_for(builder_path)
        builder.get_ring().save(ring_path)
        written.append(ring_path)
    return written


def _builder_for(builder_path: Path, devices: Sequence[tuple[str, int]], replicas: int,
                 part_power: int, ip: str, port: int,
                 seed: int | None) -> tuple[Path, RingBuilder, bool]:
    """The builder at `builder_path` (or a new one), rebalanced; and whether to save it."""
    # imported here: the builder (with placement and stats) is a hundredth of a second of
    # `pocketstack up`'s start, and a restart, whose rings all exist, never uses it
    from pocketstack.objectstore.ring.builder import RingBuilder

    if builder_path.exists():
        builder, changed = RingBuilder.load(builder_path), False
    else:
        builder, changed = _new_builder(builder_path.stem, devices, replicas, part_power, ip,
                                        port), True
    if not builder.rebalanced:
        builder.rebalance(seed=seed)
        changed = True
    return builder_path, builder, changed


def _new_builder(name: str, devices: Sequence[tuple[str, int]], replicas: int,
                 part_power: int, ip: str, port: int) -> RingBuilder:
    from pocketstack.objectstore.ring.builder import RingBuilder

    if replicas > len(devices):
        raise RingBuilderError(f"ring {name!r} needs {replicas} replicas but only "
                               f"{len(devices)} devices are given")
    builder = RingBuilder(part_power, replicas, DEFAULT_MIN_PART_HOURS)
    for device, zone in devices:
        builder.add_dev(region=DEFAULT_REGION, zone=zone, ip=ip, port=port, device=device,
                        weight=DEFAULT_WEIGHT)
    return builder
