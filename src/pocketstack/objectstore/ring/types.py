"""The ring's small typed vocabulary: partitions, device ids, devices, tiers and errors.

A *tier* is a tuple naming a failure domain, from the widest to the narrowest::

    (region,)  (region, zone)  (region, zone, ip)  (region, zone, ip, device id)

Placement works on tiers as plain data (see `utils.tiers_for_dev`), so a device's whole
position in the cluster is one tuple of tuples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NewType

Partition = NewType("Partition", int)
DeviceId = NewType("DeviceId", int)

Tier = tuple[int | str, ...]

# Device ids are stored as unsigned 16-bit ints in the partition tables; the top value marks
# a replica slot that has no device (only ever seen inside the builder, never in a ring).
NO_DEVICE = 0xFFFF
MAX_DEVICE_ID = NO_DEVICE - 1


class RingError(ValueError):
    """Base class of the ring's errors (a ValueError: they all mean bad input or state)."""


class RingFormatError(RingError):
    """A ring or builder file is not in a format (or format version) we understand."""


class RingBuilderError(RingError):
    """The builder cannot do what was asked (too few devices, unknown device, ...)."""


@dataclass(frozen=True)
class Device:
    """One storage device, as the ring knows it.

    `weight` is relative to the other devices of the same ring: a device of weight 200 gets
    about twice the partitions of one of weight 100. Weight 0 drains a device.
    """

    id: DeviceId
    region: int
    zone: int
    ip: str
    port: int
    device: str
    weight: float
    meta: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Device:
        """Inverse of `to_dict`; raises RingFormatError on missing or mistyped fields."""
        try:
            dev = cls(
                id=DeviceId(_typed(raw, "id", int)),
                region=_typed(raw, "region", int),
                zone=_typed(raw, "zone", int),
                ip=_typed(raw, "ip", str),
                port=_typed(raw, "port", int),
                device=_typed(raw, "device", str),
                weight=float(_typed(raw, "weight", (int, float))),
                meta=_typed(raw, "meta", str) if "meta" in raw else "",
            )
        except (KeyError, TypeError) as exc:
            raise RingFormatError(f"bad device record {raw!r}: {exc}") from exc
        return dev

    @property
    def address(self) -> str:
        """`ip:port`, with IPv6 addresses in brackets."""
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        """The device in swift-ring-builder's search-value form: `d0r1z2-10.0.0.1:6200/sdb`."""
        meta = f"_{self.meta}" if self.meta else ""
        return f"d{self.id}r{self.region}z{self.zone}-{self.address}/{self.device}{meta}"


def _typed(raw: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{key} has type {type(value).__name__}")
    return value
