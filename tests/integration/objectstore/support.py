"""Object storage test helpers: a raw Swift client, Keystone personas, swiftclient factories.

Bulk setup goes through raw HTTP (:class:`Swift`, :class:`Keystone`); the CLIs and SDKs are
kept for what users do with them. Every container is unique per test (:func:`uniq`), so
tests are independent on the shared session cloud and safe under ``pytest -n``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from swiftclient.client import Connection
from tests.integration.conftest import ADMIN_PASSWORD, BIN, RunningCloud

from pocketstack.objectstore.hashing import PathHasher

T = TypeVar("T")

# Where pocketstack keeps files under its data dir (anything else is a leak).
DATA_DIR_TREES = ("devices", "rings", "keys", "image")
# What a device holds: account/container DBs, objects per policy, temp files, async pendings.
DEVICE_TREES = re.compile(r"^(accounts|containers|objects(-\d+)?|tmp|async_pending(-\d+)?)$")


def uniq(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- Keystone ----------------------------------------------------------------------------------
class Keystone:
    """Just enough of Keystone's admin API to make projects, users and role grants."""

    def __init__(self, cloud: RunningCloud) -> None:
        self.cloud = cloud
        self.http = httpx.Client(base_url=cloud.auth_url, timeout=30,
                                 headers={"X-Auth-Token": cloud.admin_token()})

    def close(self) -> None:
        self.http.close()

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code in (200, 201, 204), (response.status_code, response.text)
        return response.json() if response.content else None

    def create(self, collection: str, key: str, **fields: Any) -> dict[str, Any]:
        body = self._ok(self.http.post(f"/{collection}", json={key: fields}))
        return dict(body[key])

    def role_id(self, name: str) -> str:
        roles = self._ok(self.http.get("/roles", params={"name": name}))["roles"]
        if roles:
            return str(roles[0]["id"])
        response = self.http.post("/roles", json={"role": {"name": name}})
        if response.status_code == 409:  # another worker made it first
            return self.role_id(name)
        return str(self._ok(response)["role"]["id"])

    def grant(self, role: str, *, user: str, project: str) -> None:
        self._ok(self.http.put(f"/projects/{project}/users/{user}/roles/{self.role_id(role)}"))

    def token(self, user_id: str, password: str, project_id: str) -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": user_id, "password": password}}}, "scope": {"project": {"id": project_id}}}}
        response = self.http.post("/auth/tokens", json=body, headers={"X-Auth-Token": ""})
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def persona(self, role: str = "member", *, project: dict[str, Any] | None = None
                ) -> Persona:
        """A new user with ``role`` on ``project`` (a new one unless given)."""
        project = project or self.create("projects", "project", name=uniq("prj"),
                                         domain_id="default")
        password = uniq("pw")
        user = self.create("users", "user", name=uniq("usr"), password=password,
                           domain_id="default")
        self.grant(role, user=user["id"], project=project["id"])
        token = self.token(user["id"], password, project["id"])
        return Persona(self.cloud, user, project, password, token)


@dataclass
class Persona:
    """A user scoped to a project, with a token and a raw client on an account."""

    cloud: RunningCloud
    user: dict[str, Any]
    project: dict[str, Any]
    password: str
    token: str

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    @property
    def project_id(self) -> str:
        return str(self.project["id"])

    @property
    def account(self) -> str:
        return f"AUTH_{self.project_id}"

    @property
    def storage_url(self) -> str:
        return f"{self.cloud.objectstore_url}/v1/{self.account}"

    def swift(self, account: str | None = None) -> Swift:
        """A raw client with this persona's token on ``account`` (its own by default)."""
        return Swift(self.cloud.objectstore_url, account or self.account, self.token)

    def connection(self, **kw: Any) -> Connection:
        """python-swiftclient with Keystone v3 password auth, as users configure it."""
        return Connection(authurl=self.cloud.auth_url, user=self.user["name"],
                          key=self.password, auth_version="3", os_options={
                              "project_id": self.project_id, "user_domain_id": "default",
                              "project_domain_id": "default"}, retries=0, **kw)


def admin_connection(cloud: RunningCloud, **kw: Any) -> Connection:
    return Connection(authurl=cloud.auth_url, user="admin", key=ADMIN_PASSWORD,
                      auth_version="3", os_options={
                          "project_name": "admin", "user_domain_name": "Default",
                          "project_domain_name": "Default"}, retries=0, **kw)


# -- raw Swift ---------------------------------------------------------------------------------
class Swift:
    """Raw HTTP on one account: ``swift.request("PUT", "c/o", content=b"...")``.

    Paths are relative to the account and quoted here (``/`` kept); pass ``raw=True`` to send
    a path exactly as given (already percent-encoded).
    """

    def __init__(self, base_url: str, account: str, token: str | None) -> None:
        self.base_url = base_url
        self.account = account
        self.token = token
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def close(self) -> None:
        self.http.close()

    def url(self, path: str = "", *, raw: bool = False) -> str:
        quoted = path if raw else quote(path, safe="/")
        return f"/v1/{self.account}" + (f"/{quoted}" if path else "")

    def request(self, method: str, path: str = "", *, headers: dict[str, str] | None = None,
                token: bool = True, raw: bool = False, **kw: Any) -> httpx.Response:
        all_headers = dict(headers or {})
        if token and self.token:
            all_headers.setdefault("X-Auth-Token", self.token)
        return self.http.request(method, self.url(path, raw=raw), headers=all_headers, **kw)

    def ok(self, method: str, path: str = "", status: int | tuple[int, ...] = (200, 201, 202,
                                                                             204),
           **kw: Any) -> httpx.Response:
        response = self.request(method, path, **kw)
        wanted = (status,) if isinstance(status, int) else status
        assert response.status_code in wanted, (method, path, response.status_code,
                                                response.text)
        return response

    def container(self, name: str | None = None, **headers: str) -> str:
        name = name or uniq()
        self.ok("PUT", name, headers=headers)
        return name

    def put(self, path: str, data: bytes = b"", **headers: str) -> httpx.Response:
        return self.ok("PUT", path, 201, content=data, headers=headers)

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.request("GET", path, headers=headers)

    def listing(self, container: str = "", **params: str) -> list[Any]:
        response = self.ok("GET", container, (200, 204), params={"format": "json", **params})
        return list(response.json())

    def names(self, container: str = "", **params: str) -> list[str]:
        return [e.get("name", e.get("subdir")) for e in self.listing(container, **params)]


def raw_request(base_url: str, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send a request line exactly as given (no client-side path normalization)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        conn.close()


# -- files -------------------------------------------------------------------------------------
def make_tree(root: Path, *, big: int = 3 * 1024 * 1024) -> dict[str, bytes]:
    """A small tree of files (nested dirs, unicode names, one of ``big`` bytes); the map of
    relative path -> content."""
    files = {
        "readme.txt": b"hello object storage\n",
        "empty.dat": b"",
        "docs/guide.md": b"# guide\n" * 100,
        "docs/deep/er/notes.txt": os.urandom(1000),
        "données/résumé ünïcødé.txt": "ünïcødé ✓\n".encode(),
        "日本/ファイル.bin": os.urandom(70_000),
        "data/big.bin": os.urandom(big),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def stray_files(data_dir: Path) -> list[Path]:
    """Files under ``data_dir`` outside the trees pocketstack keeps there (and its top-level
    database and config files)."""
    stray = []
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(data_dir)
        if len(rel.parts) == 1 or (rel.parts[0] in DATA_DIR_TREES[1:]):
            continue
        if rel.parts[0] == "devices" and len(rel.parts) > 3 and DEVICE_TREES.match(rel.parts[2]):
            continue
        stray.append(rel)
    return stray


def walk(root: Path) -> Iterator[Path]:
    yield from (p for p in root.rglob("*") if p.is_file())


def eventually(check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.1) -> T:
    """``check()``'s value once it stops raising AssertionError (what eventual consistency
    promises: account stats, expirer passes), else its last failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def run_cli(cloud: RunningCloud, tool: str, *args: str, cwd: Path | None = None,
            env: dict[str, str] | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    """``cloud.cli`` with a working directory (downloads land in ``cwd``)."""
    result = subprocess.run([str(BIN / tool), *args], capture_output=True, text=True,
                            env={**cloud.env, **(env or {})}, timeout=120, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def object_files(data_dir: Path, account: str, container: str, obj: str,
                 suffix: str = ".data") -> list[Path]:
    """The ``suffix`` files of one object on every device, found by its path hash."""
    secret = json.loads((data_dir / "rings" / "hash_path.json").read_text())
    hasher = PathHasher(secret["prefix"].encode(), secret["suffix"].encode())
    digest = hasher.hexdigest(account, container, obj)
    return sorted(data_dir.glob(f"devices/*/objects*/*/{digest[-3:]}/{digest}/*{suffix}"))


def container_replicas(data_dir: Path, account: str, container: str) -> dict[str, list[str]]:
    """What each device's copy of a container database lists (device -> live names)."""
    secret = json.loads((data_dir / "rings" / "hash_path.json").read_text())
    digest = PathHasher(secret["prefix"].encode(), secret["suffix"].encode()).hexdigest(
        account, container)
    found = {}
    for db in data_dir.glob(f"devices/*/containers/*/{digest[-3:]}/{digest}/{digest}.db"):
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT name FROM object WHERE deleted = 0 ORDER BY name")
            found[db.relative_to(data_dir).parts[1]] = [row[0] for row in rows]
    return found


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d ")
EXPECTED_5XX = re.compile(r"^pocketstack\.objectstore\.exceptions\.HTTP50[137]\b")


def tracebacks(log: str) -> list[str]:
    """The final exception line of every traceback in a server log (a chain counts once)."""
    found: list[str] = []
    inside, last = False, ""
    for line in [*log.splitlines(), "0000-00-00 end"]:
        if LOG_LINE.match(line):
            if inside:
                found.append(last)
            inside = False
        elif line.startswith("Traceback (most recent call last):"):
            inside = True
        elif inside and line and not line[0].isspace() and not line.startswith(
                ("The above exception", "During handling")):
            last = line
    return found


def unexpected_tracebacks(log: str) -> list[str]:
    """Tracebacks other than the proxy's own 501/503/507 answers (which the shared error edge
    logs with a traceback, as it logs every 5xx)."""
    return [t for t in tracebacks(log) if not EXPECTED_5XX.match(t)]
