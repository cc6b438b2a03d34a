"""The Swift-style ring: placement of partition replicas on devices, and lookups.

    builder = RingBuilder(part_power=10, replicas=3, min_part_hours=1)
    builder.add_dev(zone=1, ip="127.0.0.1", port=6200, device="d1", weight=100)
    ...
    builder.rebalance(seed=1)
    builder.get_ring().save("object.ring")
    ring = Ring("object.ring", hasher)
    part, nodes = ring.get_nodes("AUTH_test", "photos", "cat.jpg")

Modules: `types` (vocabulary), `utils` (tiers, device strings), `plan` (how many replicas
each tier should hold), `placement` (who holds them), `builder`, `ring` (file format and
lookups), `stats` (balance, dispersion), `cli` (`pocketstack ring ...`; not imported
here: it pulls in rich, which a server has no use for), `defaults` (the rings of a first
start). The builder is imported on first use: a server that finds its rings made has no
use for it either.
"""

from typing import TYPE_CHECKING, Any

from pocketstack.objectstore.ring.defaults import create_default_rings, ring_name
from pocketstack.objectstore.ring.ring import Ring, RingData
from pocketstack.objectstore.ring.types import (
    Device,
    DeviceId,
    Partition,
    RingBuilderError,
    RingError,
    RingFormatError,
    Tier,
)
from pocketstack.objectstore.ring.utils import ring_path_for

if TYPE_CHECKING:
    from pocketstack.objectstore.ring.builder import RebalanceResult, RingBuilder

__all__ = [
    "Device",
    "DeviceId",
    "Partition",
    "RebalanceResult",
    "Ring",
    "RingBuilder",
    "RingBuilderError",
    "RingData",
    "RingError",
    "RingFormatError",
    "Tier",
    "create_default_rings",
    "ring_name",
    "ring_path_for",
]


def __getattr__(name: str) -> Any:
    if name in ("RebalanceResult", "RingBuilder"):
        from pocketstack.objectstore.ring import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
