"""``pocketstack``: run the cloud and administer it.

    pocketstack up [--data-dir D] [--host H] [--config FILE] [--clouds-yaml PATH]
                   [--database-url URL] [--devices N] [--workers N] ...
    pocketstack admin rotate-keys [--data-dir D | --config FILE]
    pocketstack ring create|add|remove|set-weight|rebalance|show ...
    pocketstack storage-node --devices DIR --bind IP:PORT [--rings DIR]
                             [--data-dir D | --config FILE]
    pocketstack status [--data-dir D | --config FILE] [--rings DIR] [--cluster] [--json]
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

# pydantic looks for plugins in every installed distribution's entry points when the first
# model is built: a tenth of a second of `up`'s start for plugins we never use
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pocketstack.config import ConfigError, Settings, load_settings  # noqa: E402

CONFIG_NAME = "pocketstack.toml"


def _settings(config: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    """Settings from --config, else ``<data_dir>/pocketstack.toml`` when it exists."""
    if config is None:
        base = data_dir or load_settings(None).data_dir
        candidate = base / CONFIG_NAME
        config = candidate if candidate.exists() else None
    values = {"data_dir": data_dir, **overrides}
    try:
        return load_settings(config, overrides=values)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)


class _Commands(click.Group):
    """The ``ring`` commands are imported (with rich and the ring builder) only when used,
    which keeps them out of ``up``'s start."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "ring"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "ring":
            from pocketstack.objectstore.ring.cli import ring_group

            return ring_group
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """pocketstack: OpenStack's core services as one light cloud."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where all state lives.")
@click.option("--host", help="Address every service binds (default 127.0.0.1).")
@click.option("--config", "config", type=click.Path(path_type=Path, exists=True,
                                                    dir_okay=False), help="TOML config file.")
@click.option("--clouds-yaml", type=click.Path(path_type=Path, dir_okay=False),
              help="clouds.yaml to write the 'pocketstack' entry into "
                   "(default ~/.config/openstack/clouds.yaml).")
@click.option("--identity-port", type=int, help="Port of the identity API (default 5000).")
@click.option("--objectstore-port", type=int,
              help="Port of the object storage API (default 8080).")
@click.option("--image-port", type=int, help="Port of the image API (default 9292).")
@click.option("--replicas", type=int, help="Replicas of the default storage policy, "
              "accounts and containers (first start).")
@click.option("--devices", type=int, help="Storage devices to create (first start); 0: "
              "a proxy only, serving the devices of the rings in <data-dir>/rings.")
@click.option("--database-url", help="Control database, e.g. postgresql+psycopg://user:pw@"
              "host/db (default: SQLite in the data dir); every proxy of a cluster uses one.")
@click.option("--workers", type=click.IntRange(1, 64), help="Processes serving the object "
              "storage API (default 1; identity, image and the daemons run in the first).")
@click.option("--log-level", help="debug, info, warning or error.")
def up(data_dir: Path | None, host: str | None, config: Path | None,
       clouds_yaml: Path | None, identity_port: int | None, objectstore_port: int | None,
       image_port: int | None, replicas: int | None, devices: int | None,
       database_url: str | None, workers: int | None, log_level: str | None) -> None:
    """Start the cloud (first start creates everything)."""
    # Starting allocates ~1M objects that live as long as the process and almost none that
    # are garbage: the collector's full passes over them were a tenth of a second of the
    # start and freed nothing. It stays off until the servers start (`Cloud.serve` freezes
    # what startup built, then turns it back on), or until the start fails.
    gc.disable()
    try:
        from pocketstack.cloud import Cloud, write_default_config

        settings = _settings(config, data_dir, host=host, log_level=log_level,
                             **{"database.url": database_url,
                                "identity.port": identity_port,
                                "objectstore.port": objectstore_port,
                                "image.port": image_port,
                                "objectstore.replicas": replicas,
                                "objectstore.devices": devices,
                                "objectstore.workers": workers})
        if replicas is not None:
            policies = settings.objectstore.policies
            for policy in policies:
                if policy.default:
                    policy.replicas = replicas
        _logging(settings.log_level)
        cloud = Cloud(settings, clouds_yaml=clouds_yaml)
        try:
            started = cloud.prepare(identity_first=True)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot start: {exc}") from exc
        if config is None:
            write_default_config(settings.data_dir / CONFIG_NAME, settings)
        _announce(started)
        try:
            cloud.run()  # object storage and image are prepared here (identity first)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot start: {exc}") from exc
    finally:
        gc.enable()


def _announce(started: Any) -> None:
    for name, url in started.endpoints.items():
        click.echo(f"{name:>12}: {url}")
    if started.generated_password:
        click.echo(f"admin password (shown once): {started.admin_password}")
    if started.clouds_yaml is not None:
        click.echo(f"clouds.yaml: {started.clouds_yaml} (cloud 'pocketstack')")
        click.echo("export OS_CLOUD=pocketstack")
    sys.stdout.flush()


@main.group()
def admin() -> None:
    """Operator tasks on a cloud's data dir."""


@admin.command("rotate-keys")
@click.option("--data-dir", type=click.Path(path_type=Path))
@click.option("--config", "config", type=click.Path(path_type=Path, exists=True))
def rotate_keys(data_dir: Path | None, config: Path | None) -> None:
    """Rotate the Fernet token keys (tokens made with the previous keys stay valid)."""
    from pocketstack.identity.runtime import token_key_repository
    from pocketstack.identity.tokens import KeyRepositoryError

    settings = _settings(config, data_dir)
    repo = token_key_repository(settings)
    try:
        primary = repo.rotate()
    except KeyRepositoryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"rotated: primary key is now {primary}; keys {repo.key_numbers()}")


@main.command("storage-node")
@click.option("--devices", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Root holding this host's devices (one directory each).")
@click.option("--bind", required=True, help="IP:PORT to serve on (the devices' ip:port "
              "in the rings).")
@click.option("--rings", type=click.Path(path_type=Path, file_okay=False),
              help="The cluster's rings dir (holds hash_path.json; default <data-dir>/rings).")
@click.option("--data-dir", type=click.Path(path_type=Path))
@click.option("--config", "config", type=click.Path(path_type=Path, exists=True,
                                                    dir_okay=False), help="TOML config file.")
@click.option("--log-level", help="debug, info, warning or error.")
def storage_node(devices: Path, bind: str, rings: Path | None, data_dir: Path | None,
                 config: Path | None, log_level: str | None) -> None:
    """Serve this host's storage devices to the proxies (internal API)."""
    from pocketstack.common import eventloop
    from pocketstack.objectstore.server.runner import SetupError, options_from, serve

    settings = _settings(config, data_dir, log_level=log_level)
    _logging(settings.log_level)
    try:
        options = options_from(settings, devices=devices, bind=bind, rings=rings)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"storage node: http://{bind} serving {devices}")
    sys.stdout.flush()
    eventloop.run(serve(options))


@main.command("status")
@click.option("--data-dir", type=click.Path(path_type=Path))
@click.option("--config", "config", type=click.Path(path_type=Path, exists=True,
                                                    dir_okay=False), help="TOML config file.")
@click.option("--rings", type=click.Path(path_type=Path, file_okay=False),
              help="The cluster's rings dir (default <data-dir>/rings).")
@click.option("--cluster", "whole_cluster", is_flag=True,
              help="Ask every storage node in the rings (GET /recon/status) instead of "
                   "reading this host's data dir.")
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON.")
def status(data_dir: Path | None, config: Path | None, rings: Path | None,
           whole_cluster: bool, as_json: bool) -> None:
    """Devices (partitions, handoffs waiting, async pendings, quarantined, last
    replication and audit passes) and rings (balance, dispersion)."""
    import json

    from rich.console import Console

    from pocketstack.objectstore.daemons.status import gather_cluster, gather_local, render
    from pocketstack.objectstore.server.runner import SetupError, read_hasher

    settings = _settings(config, data_dir)
    rings = rings or settings.data_dir / "rings"
    try:
        hasher = read_hasher(settings, rings)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from exc
    conf = settings.objectstore
    if whole_cluster:
        document = asyncio.run(gather_cluster(rings, hasher))
    else:
        document = asyncio.run(gather_local(settings.data_dir, rings, hasher,
                                            (conf.storage_ip, conf.storage_port)))
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        render(document, Console(width=200))


if __name__ == "__main__":  # pragma: no cover
    main()
