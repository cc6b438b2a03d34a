"""A multi-host object storage cluster on one machine, built as an operator builds one.

::

    <base>/builders/        account|container|object|object-1 .builder + .ring,
                            hash_path.json          (the operator's ring workspace)
    <base>/n1/devices/d1..  <base>/n1/rings/        one `pocketstack storage-node` per host,
    <base>/n2/...           (its copy of the rings) each on its own loopback address
    <base>/proxy1/          `pocketstack up` data dir: rings copied in before first start,
                            [objectstore] devices = 0 (a proxy only), SQLite or PostgreSQL

Hosts get their own addresses, 127.0.0.<k+1>, all on the loopback interface (any address
of 127/8 reaches it on Linux), and a free port each; so the rings list hosts by ip:port
as a real cluster's do. (Network namespaces would isolate the hosts' stacks further, but
need root and leave namespaces behind when a run is killed; nothing here needs them:
SIGKILL makes a refused host and SIGSTOP a silent one.)

Rings are built with the `pocketstack ring` commands (3 zones, 3 replicas for the default
policy, accounts and containers, 1 for policy 1) and copied to every host and proxy, as
an operator distributes ring files. `Cluster.close` stops every process it started, also
paused ones, and unmounts every filesystem it mounted (`SmallFilesystem`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from tests.integration.conftest import BIN, RunningCloud
from tests.integration.scaleout.disks import SmallFilesystem
from tests.ports import free_port

from pocketstack import cli
from pocketstack.objectstore.hashing import PathHasher
from pocketstack.objectstore.ring.ring import Ring
from pocketstack.objectstore.storage.fileformat import read_trailer

RING_NAMES = ("account", "container", "object", "object-1")
PART_POWER = 7
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# Short daemon intervals for every process (unknown options are rejected by the config
# loader, so only options that exist are set; the storage-node daemons add theirs).
PROXY_ENV = {
    "POCKETSTACK_OBJECTSTORE__DEVICES": "0",  # a proxy only: every device is remote
    "POCKETSTACK_OBJECTSTORE__NODE_TIMEOUT": "2",
    "POCKETSTACK_OBJECTSTORE__RING_CHECK_INTERVAL": "0.5",
    "POCKETSTACK_OBJECTSTORE__UPDATER_INTERVAL": "0.5",
    "POCKETSTACK_OBJECTSTORE__FSYNC": "false",
}
NODE_ENV = {
    "POCKETSTACK_OBJECTSTORE__FSYNC": "false",  # SIGKILL loses no page cache; speed
}


@dataclass
class StorageHost:
    """One storage host: its devices, its copy of the rings, its storage-node process."""

    name: str
    ip: str
    port: int
    zone: int
    root: Path
    devices: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def devices_dir(self) -> Path:
        return self.root / "devices"

    @property
    def rings_dir(self) -> Path:
        return self.root / "rings"

    @property
    def log_path(self) -> Path:
        return self.root / "storage-node.log"

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def prepare(self) -> None:
        for device in self.devices:
            (self.devices_dir / device).mkdir(parents=True, exist_ok=True)
        self.rings_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        args = [str(BIN / "pocketstack"), "storage-node", "--devices", str(self.devices_dir),
                "--bind", f"{self.ip}:{self.port}", "--rings", str(self.rings_dir),
                "--data-dir", str(self.root)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **NODE_ENV, **self.env})
        self.paused = False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthcheck", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT}s")

    def signal(self, sig: int) -> None:
        assert self.process is not None and self.alive, f"{self.name} is not running"
        os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL: the host is gone at once (connections refused from now on)."""
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(STOP_TIMEOUT)

    def pause(self) -> None:
        """SIGSTOP: the host hangs (connections open, no answer: timeouts)."""
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> int:
        """SIGTERM (after SIGCONT if paused), SIGKILL if it does not end; its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        if self.paused:
            self.resume()
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(STOP_TIMEOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def device_specs(self) -> list[str]:
        """``r1z<zone>-<ip>:<port>/<device> 100`` for `pocketstack ring add`."""
        specs = []
        for device in self.devices:
            specs += [f"r1z{self.zone}-{self.ip}:{self.port}/{device}", "100"]
        return specs


class Proxy(RunningCloud):
    """`pocketstack up` as a proxy only: the cluster's rings in its data dir, no devices."""

    def admin_account(self) -> Account:
        token = self.admin_token()
        projects = httpx.get(f"{self.auth_url}/auth/projects", timeout=30,
                             headers={"X-Auth-Token": token}).json()["projects"]
        project = next(p["id"] for p in projects if p["name"] == "admin")
        return Account(self.objectstore_url, f"AUTH_{project}", token)


class Account:
    """Raw Swift requests on one account, as a client drives the proxy (one pool)."""

    def __init__(self, base_url: str, account: str, token: str) -> None:
        self.account = account
        self.token = token
        self.http = httpx.Client(base_url=f"{base_url}/v1/{account}", timeout=60,
                                 headers={"X-Auth-Token": token},
                                 limits=httpx.Limits(max_connections=32))

    def on(self, proxy: Proxy) -> Account:
        """The same account and token through another proxy."""
        return Account(proxy.objectstore_url, self.account, self.token)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str = "", **kw: Any) -> httpx.Response:
        return self.http.request(method, f"/{path}" if path else "", **kw)

    def put(self, path: str, data: bytes = b"") -> int:
        """The status of a PUT; 0 when the request itself failed (nothing acknowledged)."""
        try:
            return self.request("PUT", path, content=data).status_code
        except httpx.HTTPError:
            return 0

    def get(self, path: str) -> tuple[int, bytes | None]:
        """(status, body); body None when the answer was cut off (never half a body)."""
        try:
            response = self.request("GET", path)
        except httpx.HTTPError:
            return 0, None
        return response.status_code, response.content

    def names(self, container: str) -> list[str]:
        response = self.request("GET", container, params={"format": "json"})
        assert response.status_code == 200, (response.status_code, response.text)
        return [entry["name"] for entry in response.json()]


@dataclass(frozen=True)
class Place:
    """Where one replica is: host name and device name."""

    host: str
    device: str


@dataclass
class Cluster:
    """Storage hosts, the rings that list them, proxies, and what the tests break."""

    base: Path
    hosts: list[StorageHost] = field(default_factory=list)
    proxies: list[Proxy] = field(default_factory=list)
    mounts: list[SmallFilesystem] = field(default_factory=list)
    part_power: int = PART_POWER

    @property
    def builders(self) -> Path:
        return self.base / "builders"

    def host(self, name: str) -> StorageHost:
        return next(h for h in self.hosts if h.name == name)

    # -- hosts ---------------------------------------------------------------------------------
    def new_host(self, zone: int, devices: Iterable[str] = ("d1", "d2"),
                 env: dict[str, str] | None = None) -> StorageHost:
        index = len(self.hosts) + 1
        ip = f"127.0.0.{index + 1}"
        host = StorageHost(f"n{index}", ip, free_port_on(ip), zone, self.base / f"n{index}",
                           tuple(devices), dict(env or {}))
        host.prepare()
        self.hosts.append(host)
        return host

    def small_device(self, host: StorageHost, device: str, size_mb: int) -> SmallFilesystem:
        """Put ``host``'s ``device`` on a filesystem of ``size_mb`` (before the host starts)."""
        disk = SmallFilesystem(host.devices_dir / device, self.base / f"{host.name}-{device}.img",
                               size_mb)
        disk.mount()
        self.mounts.append(disk)
        return disk

    # -- rings ---------------------------------------------------------------------------------
    def ring(self, *args: str) -> str:
        """Run ``pocketstack ring ARGS`` (an operator's command); its output. The command
        runs in this process (`click.testing`): the same code and arguments as the shell's
        ``pocketstack ring``, without the interpreter's start-up per call."""
        result = CliRunner().invoke(cli.main, ["ring", *args])
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    def build_rings(self, replicas: int = 3, min_part_hours: int = 1) -> None:
        """Every ring over every host's devices, and a new hash-path secret."""
        self.builders.mkdir(parents=True, exist_ok=True)
        secret = {"prefix": "", "suffix": secrets.token_hex(16)}
        (self.builders / "hash_path.json").write_text(json.dumps(secret))
        specs = [spec for host in self.hosts for spec in host.device_specs()]

        for name in RING_NAMES:
            builder = str(self.builders / f"{name}.builder")
            count = 1 if name == "object-1" else replicas
            self.ring("create", builder, str(self.part_power), str(count), str(min_part_hours))
            self.ring("add", builder, *specs)
            self.ring("rebalance", builder, "--seed", "1")

    def distribute_rings(self) -> None:
        """Copy the ring files and the secret to every host and proxy (an operator's scp)."""
        targets = [h.rings_dir for h in self.hosts] + [p.data_dir / "rings" for p in self.proxies]
        files = [self.builders / f"{n}.ring" for n in RING_NAMES] + \
            [self.builders / "hash_path.json"]
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            for path in files:
                tmp = target / f".{path.name}.tmp"
                shutil.copyfile(path, tmp)
                tmp.rename(target / path.name)  # atomic, as rings are replaced in production

    def load_ring(self, name: str = "object") -> Ring:
        return Ring(self.builders / f"{name}.ring", self.hasher)

    @property
    def hasher(self) -> PathHasher:
        secret = json.loads((self.builders / "hash_path.json").read_text())
        return PathHasher(secret["prefix"].encode(), secret["suffix"].encode())

    # -- processes -----------------------------------------------------------------------------
    def start_hosts(self, hosts: list[StorageHost] | None = None) -> None:
        hosts = self.hosts if hosts is None else hosts
        for host in hosts:
            host.launch()
        for host in hosts:
            host.wait_ready()

    def new_proxy(self, extra_env: dict[str, str] | None = None,
                  extra_args: list[str] | None = None, *, like: Proxy | None = None) -> Proxy:
        """A proxy-only `pocketstack up` with this cluster's rings (copied before start).
        ``like``: a running proxy whose control database this one shares; its token keys
        and the image service user's password are copied first (`seed_proxy`)."""
        name = f"proxy{len(self.proxies) + 1}"
        proxy = Proxy(data_dir=self.base / name, clouds_yaml=self.base / f"{name}-clouds.yaml",
                      ports={"identity": free_port(), "object-store": free_port(),
                             "image": free_port()},
                      extra_env={**PROXY_ENV, **(extra_env or {})},
                      extra_args=list(extra_args or []))
        self.proxies.append(proxy)
        self.distribute_rings()
        if like is not None:
            seed_proxy(like.data_dir, proxy.data_dir)
        proxy.start()
        return proxy

    def close(self) -> list[str]:
        """Stop every process at once (paused ones too), then unmount; what went wrong."""
        stoppers: list[tuple[str, Callable[[], int]]] = [
            *((p.data_dir.name, p.stop) for p in self.proxies),
            *((h.name, h.stop) for h in self.hosts)]
        try:
            with ThreadPoolExecutor(len(stoppers) or 1) as pool:
                codes = list(pool.map(lambda item: item[1](), stoppers))
        finally:
            for disk in self.mounts:
                disk.unmount()
        return [f"{name} exited {code}" for (name, _), code in zip(stoppers, codes, strict=True)
                if code not in (0, -signal.SIGKILL)]

    def status(self) -> dict[str, Any]:
        """``pocketstack status --cluster --json``: what every storage node of the rings
        reports (``GET /recon/status``), as an operator reads it."""
        result = CliRunner().invoke(cli.main, [
            "status", "--cluster", "--json", "--rings", str(self.builders),
            "--data-dir", str(self.base)])
        assert result.exit_code == 0, (result.output, result.exception)
        document: dict[str, Any] = json.loads(result.output)
        return document

    # -- where replicas are --------------------------------------------------------------------
    def data_files(self, policy_dir: str = "objects") -> dict[str, dict[Place, Path]]:
        """Object hash -> place -> its newest .data file there (walks every host's disks)."""
        found: dict[str, dict[Place, Path]] = {}
        for host in self.hosts:
            for device in host.devices:
                for hash_dir, newest in _hash_dirs(host.devices_dir / device / policy_dir):
                    found.setdefault(hash_dir.name, {})[Place(host.name, device)] = newest
        return found

    def replica_md5s(self, account: str, container: str, names: Iterable[str]
                     ) -> dict[str, list[str]]:
        """name -> the MD5 of the body of each of its replicas on disk."""
        found = self.data_files()
        hasher = self.hasher
        return {name: [body_md5(path) for path in
                       found.get(hasher.hexdigest(account, container, name), {}).values()]
                for name in names}

    def primaries(self, account: str, container: str, obj: str,
                  ring: Ring | None = None) -> set[Place]:
        """Where the ring puts the object's replicas."""
        ring = ring or self.load_ring()
        _, devices = ring.get_nodes(account, container, obj)
        by_address = {(h.ip, h.port): h.name for h in self.hosts}
        return {Place(by_address[(d.ip, d.port)], d.device) for d in devices}

    def placement(self, account: str, container: str, names: Iterable[str]
                  ) -> dict[str, tuple[set[Place], set[Place]]]:
        """name -> (places holding it, its primaries) for every name."""
        found = self.data_files()
        ring = self.load_ring()
        hasher = self.hasher
        return {name: (set(found.get(hasher.hexdigest(account, container, name), {})),
                       self.primaries(account, container, name, ring)) for name in names}

    def container_rows(self, account: str, container: str) -> dict[Place, list[str]]:
        """What each copy of a container database lists (live rows), per place."""
        digest = self.hasher.hexdigest(account, container)
        rows: dict[Place, list[str]] = {}
        for host in self.hosts:
            for device in host.devices:
                pattern = f"containers/*/{digest[-3:]}/{digest}/{digest}.db"
                for db in (host.devices_dir / device).glob(pattern):
                    try:  # (replication may move the file away meanwhile)
                        rows[Place(host.name, device)] = _live_rows(db)
                    except sqlite3.OperationalError:
                        continue
        return rows

    def replica_files(self, account: str, container: str, obj: str) -> dict[Place, Path]:
        """The newest .data file of an object on each place holding one."""
        digest = self.hasher.hexdigest(account, container, obj)
        found = {}
        for host in self.hosts:
            for device in host.devices:
                pattern = f"objects/*/{digest[-3:]}/{digest}/*.data"
                files = sorted((host.devices_dir / device).glob(pattern))
                if files:
                    found[Place(host.name, device)] = files[-1]
        return found

    def quarantined(self) -> dict[Place, int]:
        """Quarantined files per place (anything under ``<dev>/quarantined``)."""
        counts: dict[Place, int] = {}
        for host in self.hosts:
            for device in host.devices:
                root = host.devices_dir / device / "quarantined"
                count = sum(len(files) for _, _, files in os.walk(root))
                if count:
                    counts[Place(host.name, device)] = count
        return counts

    def async_pendings(self) -> int:
        """Async pending files on every host's devices."""
        count = 0
        for host in self.hosts:
            for device in host.devices:
                root = host.devices_dir / device
                for tree in root.glob("async_pending*"):
                    count += sum(len(files) for _, _, files in _walk(tree, depth=1))
        return count


def _live_rows(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = conn.execute("SELECT name FROM object WHERE deleted = 0 ORDER BY name")
        return [row[0] for row in names]
    finally:
        conn.close()


def seed_proxy(source: Path, target: Path) -> None:
    """What another proxy on the same control database needs from the first one's data
    dir: the Fernet keys (tokens issued by either validate at both) and the image service
    user's password (else its first start would set a new one)."""
    shutil.copytree(source / "keys", target / "keys", dirs_exist_ok=True)
    secret = source / "image" / "service-user.json"
    if secret.exists():
        (target / "image").mkdir(parents=True, exist_ok=True)
        shutil.copy2(secret, target / "image" / secret.name)


def body_md5(path: Path) -> str:
    """md5 of the body of an object file (its first ``body_length`` bytes)."""
    with path.open("rb") as f:
        length = read_trailer(f.fileno(), os.fstat(f.fileno()).st_size).body_length
        return hashlib.md5(f.read(length)).hexdigest()


def corrupt(path: Path, offset: int = 100) -> None:
    """Flip one byte of an object's body on disk (bit rot the footer does not see)."""
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def _walk(root: Path, depth: int) -> Iterator[tuple[str, list[str], list[str]]]:
    """`os.walk` of the directories ``depth`` levels under ``root``, which the daemons may
    change while it runs (a directory that vanished is skipped, as os.walk does)."""
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        level = len(Path(dirpath).parts) - base
        if level >= depth:
            dirnames.clear()
        if level == depth:
            yield dirpath, dirnames, filenames


def _hash_dirs(root: Path) -> Iterator[tuple[Path, Path]]:
    """``<part>/<suffix>/<hash>`` directories holding a .data file, under an objects dir,
    each with its newest .data file."""
    for dirpath, _, filenames in _walk(root, depth=3):
        data = sorted(name for name in filenames if name.endswith(".data"))
        if data:
            yield Path(dirpath), Path(dirpath) / data[-1]


def free_port_on(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def logs(cluster: Cluster) -> str:
    """Every process's log, for an assertion message."""
    out = [f"== {p.data_dir.name}\n{p.log()[-4000:]}" for p in cluster.proxies]
    out += [f"== {h.name}\n{h.log()[-4000:]}" for h in cluster.hosts]
    return "\n".join(out)
