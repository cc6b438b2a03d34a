"""Upstream OpenStack for the side-by-side run: Keystone and Swift from PyPI, in their own
virtualenv, configured and run on loopback ports by the bench (nothing of them is imported).

Layout (``.bench/``, gitignored)::

    upstream/venv/                  swift, keystone, keystonemiddleware, pyuwsgi, pymemcache
    upstream/venv/.bench.json       what was installed (a change rebuilds the venv)
    logs/pip.log                    pip's output
    run-<time>/upstream/            one run: etc/ (confs, rings), srv/node/d1..d3, keystone/

How it is run, and why that is fair (upstream's own recommendations, sized for the cores):

- Keystone: SQLite, Fernet tokens, bcrypt with 12 rounds (as pocketstack), caching on in
  memcached (oslo.cache, as every deployment guide sets it), served by uWSGI with the
  settings of keystone's ``httpd/keystone-uwsgi-public.ini`` (master, ``lazy-apps``,
  ``thunder-lock``) and devstack's worker count for the machine (max(2, cores / 4)).
- Swift: 3 replicas on 3 devices in 3 zones (rings built with ``swift-ring-builder``, part
  power 10 as pocketstack's), ``swift.conf`` with a hash prefix and suffix; proxy with
  ``authtoken`` + ``keystoneauth`` and Swift's sample pipeline (less ``container_sync`` and
  ``ratelimit``, which pocketstack lacks); account, container and object servers; every
  server with ``workers = `` the core count (Swift's ``auto``). Memcached (Debian's) for the
  proxy's token and info caches. Request logging off on both sides; no replicators,
  auditors or updaters (pocketstack's background tasks do run, and count).
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.clouds import PASSWORD, Startup, free_port, wait_started
from bench.procstat import ProcessTree

PINS = {"swift": "2.38.3", "keystone": "30.0.0", "keystonemiddleware": "13.0.1",
        "pyuwsgi": "2.0.30.post1", "pymemcache": "4.0.0"}
REPLICAS = 3
PART_POWER = 10
CORES = os.cpu_count() or 2
SWIFT_WORKERS = CORES
KEYSTONE_PROCESSES = max(2, CORES // 4)
PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk "
            "tempurl formpost authtoken keystoneauth copy staticweb container-quotas "
            "account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server")
EGG_FILTERS = {"catch_errors": "catch_errors", "gatekeeper": "gatekeeper",
               "healthcheck": "healthcheck", "proxy-logging": "proxy_logging",
               "listing_formats": "listing_formats", "bulk": "bulk", "tempurl": "tempurl",
               "formpost": "formpost", "copy": "copy", "staticweb": "staticweb",
               "container-quotas": "container_quotas", "account-quotas": "account_quotas",
               "slo": "slo", "dlo": "dlo", "versioned_writes": "versioned_writes",
               "symlink": "symlink"}
SERVERS = ("account", "container", "object")

# Runs in upstream's venv: the listing container's rows, written into each replica of the
# container DB as the object servers' container updates would (one transaction each).
FILL_SCRIPT = """
import os, sys
from swift.common.ring import Ring
from swift.common.utils import Timestamp, hash_path, set_swift_dir, storage_directory
from swift.container.backend import ContainerBroker
swift_dir, devices, account, container, count, etag = sys.argv[1:]
set_swift_dir(swift_dir)
part, nodes = Ring(swift_dir, ring_name="container").get_nodes(account, container)
name_hash = hash_path(account, container)
ts = Timestamp.now().internal
for node in nodes:
    db = os.path.join(devices, node["device"], storage_directory("containers", part, name_hash),
                      name_hash + ".db")
    broker = ContainerBroker(db, account=account, container=container)
    broker.merge_items([{"name": "item-%07d" % i, "created_at": ts, "size": 0,
                         "content_type": "application/octet-stream", "etag": etag,
                         "deleted": 0, "storage_policy_index": 0, "ctype_timestamp": ts,
                         "meta_timestamp": ts} for i in range(int(count))])
"""


def ensure_venv(root: Path) -> Path:
    """``root/upstream/venv`` with the pinned packages (built once, a few minutes)."""
    venv = root / "upstream" / "venv"
    marker = venv / ".bench.json"
    wanted = {"pins": PINS, "python": sys.version.split()[0]}
    try:
        if json.loads(marker.read_text()) == wanted:
            return venv
    except (OSError, ValueError):
        pass
    print(f"upstream: building {venv} ({', '.join(f'{k}=={v}' for k, v in PINS.items())}; "
          "a few minutes, once)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    log = root / "logs" / "pip.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for args in (["install", "-q", "--upgrade", "pip"],
                     ["install", *(f"{k}=={v}" for k, v in PINS.items())]):
            done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args],
                                  stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode:
                raise RuntimeError(f"upstream: pip {' '.join(args)} failed, see {log}")
    marker.write_text(json.dumps(wanted, indent=2) + "\n")
    return venv


def ensure_memcached() -> str:
    found = shutil.which("memcached") or "/usr/bin/memcached"
    if not Path(found).exists():
        print("upstream: installing Debian's memcached", flush=True)
        sudo = [] if os.getuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*sudo, "apt-get", "install", "-y", "--no-install-recommends",
                        "memcached"], check=True, env=env, stdout=subprocess.DEVNULL)
    return found


def _ini(sections: dict[str, dict[str, object]]) -> str:
    out = []
    for name, options in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{key} = {value}" for key, value in options.items())
        out.append("")
    return "\n".join(out)


class UpstreamCloud:
    """memcached + Keystone (uWSGI) + Swift's proxy, account, container and object servers."""

    name = "upstream"

    def __init__(self, root: Path, work: Path) -> None:
        self.venv = ensure_venv(root)
        self.memcached = ensure_memcached()
        self.dir = work / "upstream"
        self.etc = self.dir / "etc"
        self.ports = {name: free_port() for name in
                      ("keystone", "memcached", "proxy", *SERVERS)}
        self.auth_url = f"http://127.0.0.1:{self.ports['keystone']}/v3"
        self.swift_url = f"http://127.0.0.1:{self.ports['proxy']}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def _run(self, *args: str) -> None:
        log = self.dir / "setup.log"
        with log.open("a") as out:
            done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, check=False,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode not in (0, 1) or (done.returncode == 1
                                              and "ring-builder" not in args[0]):
            raise RuntimeError(f"upstream: {' '.join(args)} exited {done.returncode} ({log})")

    # -- first start: what a deployment tool does ------------------------------------------

    def setup(self) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        self._write_keystone()
        conf = str(self.etc / "keystone.conf")
        user = pwd.getpwuid(os.getuid()).pw_name
        group = user if os.getgid() == 0 else str(os.getgid())
        manage = self._bin("keystone-manage")
        self._run(manage, "--config-file", conf, "db_sync")
        for what in ("fernet_setup", "credential_setup"):
            self._run(manage, "--config-file", conf, what, "--keystone-user", user,
                      "--keystone-group", group)
        self._run(manage, "--config-file", conf, "bootstrap", "--bootstrap-password",
                  PASSWORD, "--bootstrap-admin-url", self.auth_url, "--bootstrap-public-url",
                  self.auth_url, "--bootstrap-internal-url", self.auth_url,
                  "--bootstrap-region-id", "RegionOne")
        self._write_swift()

    def _write_keystone(self) -> None:
        ks = self.dir / "keystone"
        ks.mkdir(parents=True, exist_ok=True)
        memcache = f"127.0.0.1:{self.ports['memcached']}"
        (self.etc / "keystone.conf").write_text(_ini({
            "DEFAULT": {"log_file": ks / "keystone.log", "debug": "false"},
            "database": {"connection": f"sqlite:///{ks / 'keystone.db'}"},
            "token": {"provider": "fernet"},
            "fernet_tokens": {"key_repository": ks / "fernet-keys"},
            "fernet_receipts": {"key_repository": ks / "fernet-keys"},
            "credential": {"key_repository": ks / "credential-keys"},
            "identity": {"password_hash_algorithm": "bcrypt", "password_hash_rounds": 12},
            "cache": {"enabled": "true", "backend": "dogpile.cache.pymemcache",
                      "memcache_servers": memcache},
        }))
        (self.etc / "keystone-uwsgi.ini").write_text(_ini({"uwsgi": {
            "http-socket": f"127.0.0.1:{self.ports['keystone']}",
            "module": "keystone.wsgi.api:application",
            "master": "true", "processes": KEYSTONE_PROCESSES, "threads": 1,
            "enable-threads": "true", "thunder-lock": "true", "lazy-apps": "true",
            "buffer-size": 65535, "die-on-term": "true", "disable-logging": "true",
            "need-app": "true",
            # devstack's: a sync worker must not wait on an idle keep-alive connection
            "add-header": "Connection: close"}}))

    def _write_swift(self) -> None:
        nodes = self.dir / "srv" / "node"
        for zone in range(1, REPLICAS + 1):
            (nodes / f"d{zone}").mkdir(parents=True, exist_ok=True)
        (self.etc / "swift.conf").write_text(_ini({
            "swift-hash": {"swift_hash_path_prefix": "bench-prefix",
                           "swift_hash_path_suffix": "bench-suffix"},
            "storage-policy:0": {"name": "Policy-0", "default": "yes"}}))
        builder = self._bin("swift-ring-builder")
        for server in SERVERS:
            file = str(self.etc / f"{server}.builder")
            self._run(builder, file, "create", str(PART_POWER), str(REPLICAS), "1")
            for zone in range(1, REPLICAS + 1):
                self._run(builder, file, "add", "--region", "1", "--zone", str(zone), "--ip",
                          "127.0.0.1", "--port", str(self.ports[server]), "--device",
                          f"d{zone}", "--weight", "100")
            self._run(builder, file, "rebalance")
        common = {"bind_ip": "127.0.0.1", "workers": SWIFT_WORKERS, "swift_dir": self.etc,
                  "user": pwd.getpwuid(os.getuid()).pw_name,
                  "log_level": "WARNING", "log_address": "/nonexistent"}
        for server in SERVERS:
            (self.etc / f"{server}-server.conf").write_text(_ini({
                "DEFAULT": {**common, "bind_port": self.ports[server], "devices": nodes,
                            "mount_check": "false", "log_requests": "false"},
                "pipeline:main": {"pipeline": f"{server}-server"},
                f"app:{server}-server": {"use": f"egg:swift#{server}"}}))
        self._write_proxy(common)

    def _write_proxy(self, common: dict[str, object]) -> None:
        keystone = f"http://127.0.0.1:{self.ports['keystone']}"
        sections: dict[str, dict[str, object]] = {
            "DEFAULT": {**common, "bind_port": self.ports["proxy"]},
            "pipeline:main": {"pipeline": PIPELINE},
            "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": "true"},
            "filter:cache": {"use": "egg:swift#memcache",
                             "memcache_servers": f"127.0.0.1:{self.ports['memcached']}"},
            "filter:authtoken": {
                "paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
                "www_authenticate_uri": f"{keystone}/v3", "auth_url": keystone,
                "auth_type": "password", "project_domain_id": "default",
                "user_domain_id": "default", "project_name": "admin", "username": "admin",
                "password": PASSWORD, "delay_auth_decision": "True", "cache": "swift.cache",
                "include_service_catalog": "False"},
            "filter:keystoneauth": {"use": "egg:swift#keystoneauth",
                                    "operator_roles": "admin, member"},
        }
        for name, egg in EGG_FILTERS.items():
            sections[f"filter:{name}"] = {"use": f"egg:swift#{egg}"}
        (self.etc / "proxy-server.conf").write_text(_ini(sections))

    # -- processes --------------------------------------------------------------------------

    def start(self) -> Startup:
        """Start every server; a first start (no config yet) deploys first, timed too."""
        started = time.perf_counter()
        self.dir.mkdir(parents=True, exist_ok=True)
        log = (self.dir / "servers.log").open("ab")
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}

        def spawn(name: str, *args: str) -> None:
            self.processes[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True, env=env)

        env["OS_KEYSTONE_CONFIG_FILES"] = str(self.etc / "keystone.conf")
        spawn("memcached", self.memcached, "-l", "127.0.0.1", "-p",
              str(self.ports["memcached"]), "-U", "0", "-m", "256", "-c", "4096",
              *(["-u", "root"] if os.getuid() == 0 else []))
        setup_cpu_s = 0.0
        if not (self.etc / "proxy-server.conf").exists():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.setup()  # keystone-manage bootstrap needs memcached (keystone's cache)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            setup_cpu_s = (after.ru_utime + after.ru_stime
                           - before.ru_utime - before.ru_stime)
        spawn("keystone", self._bin("uwsgi"), "--ini", str(self.etc / "keystone-uwsgi.ini"))
        for server in (*SERVERS, "proxy"):
            spawn(server, self._bin(f"swift-{server}-server"),
                  str(self.etc / f"{server}-server.conf"))
        return wait_started(self, started, self._alive, setup_cpu_s=setup_cpu_s)

    def fill_container(self, account: str, container: str, count: int, etag: str) -> None:
        """``count`` empty objects ``item-0000000``... in the listing of an existing
        container, written straight into its DB replicas (a setup step: through the proxy,
        10 000 PUTs take minutes here; the listing that is measured is the same)."""
        script = self.dir / "fill_container.py"
        script.write_text(FILL_SCRIPT)
        self._run(self._bin("python"), str(script), str(self.etc),
                  str(self.dir / "srv" / "node"), account, container, str(count), etag)

    def _alive(self) -> bool:
        return all(p.poll() is None for p in self.processes.values())

    def servers(self) -> ProcessTree:
        return ProcessTree(p.pid for p in self.processes.values())

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # its own session: it and its workers
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.processes.clear()
