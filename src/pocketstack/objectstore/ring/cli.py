"""`pocketstack ring ...`: build and inspect rings, like swift-ring-builder.

    pocketstack ring create object.builder 10 3 1
    pocketstack ring add object.builder r1z1-127.0.0.1:6200/d1 100 r1z2-127.0.0.1:6200/d2 100
    pocketstack ring add object.builder --zone 3 --ip 127.0.0.1 --port 6200 --device d3 --weight 100
    pocketstack ring rebalance object.builder          # writes object.ring beside it
    pocketstack ring show object.builder               # or object.ring
    pocketstack ring set-weight object.builder d2 50   # a device id, or a search value
    pocketstack ring remove object.builder z3

Every error is a one-line message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table

from pocketstack.objectstore.ring.builder import RebalanceResult, RingBuilder
from pocketstack.objectstore.ring.ring import RingData
from pocketstack.objectstore.ring.stats import RingStats, compute_stats
from pocketstack.objectstore.ring.types import Device, RingFormatError
from pocketstack.objectstore.ring.utils import (
    parse_device_spec,
    parse_search_value,
    ring_path_for,
    validate_weight,
)

P = ParamSpec("P")
R = TypeVar("R")

BUILDER_PATH = click.Path(dir_okay=False, path_type=Path)


def _clean_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can cause into click errors (message, exit code 1)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except FileNotFoundError as exc:
            raise click.ClickException(f"no such file: {exc.filename}") from exc
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or 'I/O error'}: {exc.strerror}") from exc
        except ValueError as exc:  # RingError and every validation error
            raise click.ClickException(str(exc)) from exc

    return wrapper


@contextlib.contextmanager
def _editing(path: Path) -> Iterator[RingBuilder]:
    """Load a builder, let the caller change it, save it back (only if no error)."""
    builder = RingBuilder.load(path)
    yield builder
    builder.save(path)


@click.group(name="ring")
def ring_group() -> None:
    """Build and inspect rings (accounts, containers, and objects of each policy)."""


@ring_group.command("create")
@click.argument("builder_file", type=BUILDER_PATH)
@click.argument("part_power", type=int)
@click.argument("replicas", type=int)
@click.argument("min_part_hours", type=int)
@click.option("--force", is_flag=True, help="Overwrite an existing builder file.")
@_clean_errors
def create(builder_file: Path, part_power: int, replicas: int, min_part_hours: int,
           force: bool) -> None:
    """Create a builder with 2**PART_POWER partitions of REPLICAS replicas each."""
    if builder_file.exists() and not force:
        raise click.ClickException(f"{builder_file} exists (use --force to overwrite it)")
    builder = RingBuilder(part_power, replicas, min_part_hours)
    builder.save(builder_file)
    click.echo(f"Created {builder_file}: {builder.partition_count} partitions, {replicas} "
               f"replicas, min_part_hours {min_part_hours}")


# so that `-10.0.0.1` (a search value) and `-5` (a bad weight) reach us as arguments
ARGS_MAY_START_WITH_DASH = {"ignore_unknown_options": True}


@ring_group.command("add", context_settings=ARGS_MAY_START_WITH_DASH)
@click.argument("builder_file", type=BUILDER_PATH)
@click.argument("devices", nargs=-1)
@click.option("--region", type=int, default=None, help="Region (default 1).")
@click.option("--zone", type=int, default=None)
@click.option("--ip", default=None, help="IP address or host name of the storage node.")
@click.option("--port", type=int, default=None)
@click.option("--device", default=None, help="Device name, e.g. sdb or d1.")
@click.option("--weight", default=None, help="Relative weight, e.g. 100.")
@click.option("--meta", default="", help="Free-form note kept with the device.")
@_clean_errors
def add(builder_file: Path, devices: Sequence[str], region: int | None, zone: int | None,
        ip: str | None, port: int | None, device: str | None, weight: str | None,
        meta: str) -> None:
    """Add devices: `DEVICE WEIGHT` pairs like `r1z1-127.0.0.1:6200/sdb 100`, or the options.

    A device added here gets partitions at the next rebalance.
    """
    options = {"zone": zone, "ip": ip, "port": port, "device": device, "weight": weight}
    given = [name for name, value in options.items() if value is not None]
    if devices and (given or region is not None):
        raise click.UsageError("give devices as `DEVICE WEIGHT` pairs or as options, not both")
    if not devices:
        if len(given) != len(options):
            missing = ", ".join(f"--{n}" for n in options if n not in given)
            raise click.UsageError(f"missing {missing} (or give `DEVICE WEIGHT` pairs)")
        devices = (f"r{1 if region is None else region}z{zone}-{_host(str(ip))}:{port}/{device}",
                   str(weight))
    if len(devices) % 2:
        raise click.UsageError("devices come in `DEVICE WEIGHT` pairs; a weight is missing")
    with _editing(builder_file) as builder:
        for text, weight_text in zip(devices[::2], devices[1::2], strict=True):
            spec = parse_device_spec(text)
            dev_id = builder.add_dev(
                region=spec.region, zone=spec.zone, ip=spec.ip, port=spec.port,
                device=spec.device, weight=_weight(weight_text), meta=spec.meta or meta)
            click.echo(f"Added device {builder.get_dev(dev_id)} weight {weight_text}")


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


def _weight(text: str) -> float:
    try:
        return validate_weight(float(text))
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a weight (a number >= 0)") from exc


def _select(builder: RingBuilder, search_text: str, allow_many: bool) -> list[Device]:
    """Devices matching a device id or search value; an error if none (or many, unless
    allowed)."""
    search = parse_search_value(search_text)
    if search.is_empty():
        raise click.BadParameter("an empty search value would match every device")
    matches = builder.search_devs(search)
    if not matches:
        raise click.ClickException(f"no device matches {search_text!r}")
    if len(matches) > 1 and not allow_many:
        listed = ", ".join(str(dev) for dev in matches)
        raise click.ClickException(
            f"{search_text!r} matches {len(matches)} devices ({listed}); use --yes for all")
    return matches


@ring_group.command("remove", context_settings=ARGS_MAY_START_WITH_DASH)
@click.argument("builder_file", type=BUILDER_PATH)
@click.argument("search_value")
@click.option("--yes", is_flag=True, help="Remove every device the search value matches.")
@_clean_errors
def remove(builder_file: Path, search_value: str, yes: bool) -> None:
    """Remove a device (an id like 3 or d3, or a search value like z2-10.0.0.1:6200/sdb).

    Its partitions move away at the next rebalance, min_part_hours or not.
    """
    with _editing(builder_file) as builder:
        for dev in _select(builder, search_value, yes):
            builder.remove_dev(dev.id)
            click.echo(f"Marked {dev} for removal; rebalance to move its partitions away")


@ring_group.command("set-weight", context_settings=ARGS_MAY_START_WITH_DASH)
@click.argument("builder_file", type=BUILDER_PATH)
@click.argument("search_value")
@click.argument("weight")
@click.option("--yes", is_flag=True, help="Set the weight of every device matched.")
@_clean_errors
def set_weight(builder_file: Path, search_value: str, weight: str, yes: bool) -> None:
    """Set the weight of a device (0 drains it at the next rebalances)."""
    new_weight = _weight(weight)
    with _editing(builder_file) as builder:
        for dev in _select(builder, search_value, yes):
            builder.set_dev_weight(dev.id, new_weight)
            click.echo(f"Set weight of {dev} from {dev.weight:g} to {new_weight:g}")


@ring_group.command("rebalance")
@click.argument("builder_file", type=BUILDER_PATH)
@click.option("--seed", type=int, default=None, help="Seed for a reproducible placement.")
@_clean_errors
def rebalance(builder_file: Path, seed: int | None) -> None:
    """Place partitions, move what must move, and write the ring file beside the builder."""
    with _editing(builder_file) as builder:
        result = builder.rebalance(seed=seed)
    ring_path = ring_path_for(builder_file)
    builder.get_ring().save(ring_path)  # after the builder: a rerun rewrites a lost ring
    click.echo(_rebalance_summary(builder, result))
    click.echo(f"Wrote {ring_path} (ring version {builder.ring_version})")


def _rebalance_summary(builder: RingBuilder, result: RebalanceResult) -> str:
    slots = builder.partition_count * builder.replicas
    lines = [f"Reassigned {result.parts_moved} of {slots} replicas "
             f"({100.0 * result.parts_moved / slots:.2f}%). Balance is now "
             f"{result.balance:.2f}. Dispersion is now {result.dispersion:.2f}."]
    if result.removed_devices:
        lines.append("Removed devices " + ", ".join(f"d{d}" for d in result.removed_devices))
    if result.blocked:
        lines.append(f"min_part_hours ({builder.min_part_hours}) put off up to "
                     f"{result.blocked} moves; rebalance again after that time.")
    return "\n".join(lines)


@ring_group.command("pretend-min-part-hours-passed")
@click.argument("builder_file", type=BUILDER_PATH)
@_clean_errors
def pretend_min_part_hours_passed(builder_file: Path) -> None:
    """Let the next rebalance move any partition (for tests and emergencies)."""
    with _editing(builder_file) as builder:
        builder.pretend_min_part_hours_passed()
    click.echo("Every partition may move at the next rebalance")


@ring_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_clean_errors
def show(file: Path) -> None:
    """Summarize a builder or ring file and list its devices."""
    builder, ring = _load_any(file)
    if builder is not None:
        stats = builder.stats()
        header = (f"{file} (builder), ring version {builder.ring_version}\n"
                  f"{builder.partition_count} partitions, {builder.replicas} replicas, "
                  f"min_part_hours {builder.min_part_hours}")
        removing = builder.removing
    else:
        assert ring is not None
        stats = compute_stats(ring.devs, ring.replica2part2dev_id, ring.replica_count,
                              ring.partition_count)
        header = (f"{file} (ring), version {ring.version}\n"
                  f"{ring.partition_count} partitions, {ring.replica_count} replicas")
        removing = frozenset()
    click.echo(header)
    click.echo(f"{stats.regions} regions, {stats.zones} zones, {stats.hosts} hosts, "
               f"{len(stats.devices)} devices; balance {stats.balance:.2f}, "
               f"dispersion {stats.dispersion:.2f}")
    if stats.devices:
        _print_devices(stats, removing)
        click.echo("balance: % off the device's share by weight; target: its share once "
                   "replicas are spread over regions, zones and hosts first")


def _load_any(file: Path) -> tuple[RingBuilder | None, RingData | None]:
    if not file.exists():
        raise click.ClickException(f"no such file: {file}")
    loaders: list[Callable[[], tuple[RingBuilder | None, RingData | None]]] = [
        lambda: (None, RingData.load(file)),
        lambda: (RingBuilder.load(file), None),
    ]
    if file.suffix == ".builder":
        loaders.reverse()
    for load in loaders:
        with contextlib.suppress(RingFormatError):
            return load()
    raise click.ClickException(f"{file} is neither a ring nor a ring builder file")


def _print_devices(stats: RingStats, removing: frozenset[int]) -> None:
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for name in ("id", "region", "zone", "address", "device", "weight", "partitions",
                 "target", "balance", "meta"):
        table.add_column(name, justify="right" if name not in ("address", "device", "meta")
                         else "left")
    for dev_stats in stats.devices:
        dev = dev_stats.device
        note = "removing" if dev.id in removing else dev.meta
        table.add_row(str(dev.id), str(dev.region), str(dev.zone), dev.address, dev.device,
                      f"{dev.weight:.2f}", str(dev_stats.parts), f"{dev_stats.target:.0f}",
                      f"{dev_stats.balance:.2f}", note)
    Console(highlight=False, width=120).print(table)
