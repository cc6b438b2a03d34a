"""The Store contract, run against every implementation: ``file`` is a FileStore in a temp
dir; ``swift`` a SwiftStore talking over real sockets to this process's identity and object
storage services (uvicorn), authenticated as the image service's user, as in a cloud;
``swift-segmented`` the same with 1 MiB segments, so that most blobs here are static large
objects."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp
from tests.ports import free_port

from pocketstack.common.db import Database
from pocketstack.config import Settings
from pocketstack.identity import runtime as identity_runtime
from pocketstack.identity.middleware import LocalValidator
from pocketstack.identity.service.bootstrap import CatalogEntry
from pocketstack.image.runtime import ensure_service_user
from pocketstack.image.store import (
    DataNotFound,
    FileStore,
    LazyClient,
    ServiceAuth,
    ServiceCredentials,
    Store,
    SwiftStore,
)
from pocketstack.objectstore import runtime as objectstore_runtime

pytestmark = pytest.mark.anyio
CAPABILITIES = {"file": {"reports_md5": False}, "swift": {"reports_md5": True},
                "swift-segmented": {"reports_md5": False}}
SEGMENT = 1024 * 1024
PASSWORD = "glance-secret"


class Boom(Exception):
    """The data source fails halfway (a client that went away)."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # one loop for the module: the servers outlive a test


@dataclass
class Cloud:
    identity_port: int
    apps: dict[int, ASGIApp]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """Identity and object storage (one device, one replica) built as ``pocketstack up``
    builds them, plus the image service's user."""
    data = tmp_path_factory.mktemp("cloud")
    ports = {"identity": free_port(), "swift": free_port()}
    policy = {"index": 0, "name": "default", "replicas": 1, "default": True}
    settings = Settings.model_validate({
        "data_dir": data, "identity": {"bcrypt_rounds": 4, "port": ports["identity"]},
        "objectstore": {"devices": 1, "replicas": 1, "policies": [policy], "fsync": False,
                        "port": ports["swift"]}})
    db = Database(f"sqlite:///{data / 'control.db'}")
    catalog = [CatalogEntry("identity", "keystone", "", settings.url_for(ports["identity"],
                                                                         "/v3/")),
               CatalogEntry("object-store", "swift", "", settings.url_for(
                   ports["swift"], "/v1/AUTH_%(project_id)s"))]
    identity = identity_runtime.build(settings, db, admin_password="admin-pw",
                                      catalog=catalog, access_log=False)
    swift = objectstore_runtime.build(settings, LocalValidator(identity.identity),
                                      access_log=False)
    ensure_service_user(identity.identity, settings, PASSWORD)
    yield Cloud(ports["identity"], {ports["identity"]: identity.app, ports["swift"]: swift.app})
    db.close()


@pytest.fixture(scope="module")
async def running(cloud: Cloud) -> AsyncIterator[Cloud]:
    """The cloud's services on their ports (uvicorn, real sockets) for the module."""
    servers = [uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none",
                                             lifespan="off", log_config=None,
                                             access_log=False))
               for port, app in cloud.apps.items()]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    while not all(server.started for server in servers):
        await asyncio.sleep(0.01)
    yield cloud
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)


def swift_store(cloud: Cloud, **kw: int) -> SwiftStore:
    http = LazyClient(30)
    credentials = ServiceCredentials(auth_url=f"http://127.0.0.1:{cloud.identity_port}/v3",
                                     user_name="glance", password=PASSWORD,
                                     project_name="service")
    auth = ServiceAuth(credentials, http, region="RegionOne")
    return SwiftStore(auth, http, container="glance-test", chunk_size=65536, **kw)


@pytest.fixture(params=["file", "swift", "swift-segmented"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, running: Cloud
                ) -> AsyncIterator[Store]:
    if request.param == "file":
        made: Store = FileStore(tmp_path / "images", fsync=False, chunk_size=65536)
    elif request.param == "swift":
        made = swift_store(running)
    else:
        made = swift_store(running, segment_size=SEGMENT)
    yield made
    await made.close()


def caps(store: Store) -> dict[str, bool]:
    if isinstance(store, SwiftStore) and store.segment_size == SEGMENT:
        return CAPABILITIES["swift-segmented"]
    return CAPABILITIES[store.kind]


async def source(data: bytes, size: int = 65536, fail_after: int | None = None
                 ) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        if fail_after is not None and offset >= fail_after:
            raise Boom()
        yield data[offset:offset + size]


async def read(store: Store, location: str, **kw: int) -> bytes:
    reader = await store.open(location, **kw)
    return b"".join([chunk async for chunk in reader])


DATA = bytes(range(256)) * 12289  # ~3 MiB, not a multiple of the chunk size


async def test_put_then_read(store: Store) -> None:
    stored = await store.put("img-1", source(DATA))
    assert stored.location == store.location_for("img-1")
    assert await read(store, stored.location) == DATA
    if caps(store)["reports_md5"]:
        assert stored.md5 == hashlib.md5(DATA).hexdigest()
    else:
        assert stored.md5 is None


async def test_ranges(store: Store) -> None:
    stored = await store.put("img-2", source(DATA))
    assert await read(store, stored.location, offset=70000, length=5) == DATA[70000:70005]
    assert await read(store, stored.location, offset=len(DATA) - 3) == DATA[-3:]


async def test_missing_data(store: Store) -> None:
    with pytest.raises(DataNotFound):
        await store.open(store.location_for("never-stored"))
    await store.delete(store.location_for("never-stored"))  # not an error


async def test_delete(store: Store) -> None:
    stored = await store.put("img-3", source(b"bytes"))
    await store.delete(stored.location)
    with pytest.raises(DataNotFound):
        await store.open(stored.location)


async def test_a_failing_source_leaves_nothing(store: Store) -> None:
    with pytest.raises(Boom):
        await store.put("img-4", source(DATA, fail_after=200000))
    with pytest.raises(DataNotFound):
        await store.open(store.location_for("img-4"))


async def test_put_replaces(store: Store) -> None:
    await store.put("img-5", source(b"first"))
    stored = await store.put("img-5", source(b"second"))
    assert await read(store, stored.location) == b"second"


async def test_closing_a_reader_early(store: Store) -> None:
    stored = await store.put("img-6", source(DATA))
    reader = await store.open(stored.location)
    async for _chunk in reader:
        break
    await reader.aclose()
    assert await read(store, stored.location, offset=1, length=1) == DATA[1:2]


async def test_an_empty_blob(store: Store) -> None:
    stored = await store.put("img-7", source(b""))
    assert await read(store, stored.location) == b""


async def test_swift_reauthenticates_on_401(running: Cloud) -> None:
    store = swift_store(running)
    stored = await store.put("img-8", source(b"data"))
    token = store.auth._token
    assert token is not None
    store.auth._token = type(token)("not-a-token", token.expires, token.catalog)
    assert await read(store, stored.location) == b"data"
    await store.delete(stored.location)
    await store.close()


# -- large images on the swift store (static large objects) ----------------------------------
async def names(cloud: Cloud, store: SwiftStore, container: str) -> list[str]:
    url = await store._url(container=container)
    response = await store.http.client().get(
        url, params={"format": "json"}, headers={"X-Auth-Token": await store.auth.token()})
    return [] if response.status_code == 404 else [e["name"] for e in response.json()]


async def test_a_large_image_is_segments_and_a_manifest(running: Cloud) -> None:
    store = swift_store(running, segment_size=SEGMENT)
    stored = await store.put("big-1", source(DATA, size=50000))
    segments = [n for n in await names(running, store, "glance-test_segments")
                if n.startswith("big-1/")]
    assert len(segments) == -(-len(DATA) // SEGMENT)  # 3 MiB + 256 bytes: 4 segments
    head = await store._request("HEAD", await store._url("big-1"))
    assert head.headers["x-static-large-object"] == "True"
    assert int(head.headers["content-length"]) == len(DATA)
    assert await read(store, stored.location) == DATA
    boundary = SEGMENT - 3  # a range across two segments
    assert await read(store, stored.location, offset=boundary, length=7) == \
        DATA[boundary:boundary + 7]
    await store.delete(stored.location)
    assert not [n for n in await names(running, store, "glance-test_segments")
                if n.startswith("big-1/")]
    with pytest.raises(DataNotFound):
        await store.open(stored.location)
    await store.close()


async def test_one_segment_exactly_stays_one_object(running: Cloud) -> None:
    store = swift_store(running, segment_size=SEGMENT)
    data = DATA[:SEGMENT]
    stored = await store.put("big-2", source(data, size=100000))
    assert stored.md5 == hashlib.md5(data).hexdigest()
    head = await store._request("HEAD", await store._url("big-2"))
    assert "x-static-large-object" not in head.headers
    assert not [n for n in await names(running, store, "glance-test_segments")
                if n.startswith("big-2/")]
    await store.delete(stored.location)
    await store.close()


@pytest.mark.parametrize("fail_after", [SEGMENT, SEGMENT + 65536 * 3])
async def test_a_large_upload_that_fails_leaves_nothing(running: Cloud, fail_after: int
                                                       ) -> None:
    store = swift_store(running, segment_size=SEGMENT)
    image = f"big-fail-{fail_after}"
    with pytest.raises(Boom):
        await store.put(image, source(DATA, fail_after=fail_after))
    with pytest.raises(DataNotFound):
        await store.open(store.location_for(image))
    assert not [n for n in await names(running, store, "glance-test_segments")
                if n.startswith(f"{image}/")]
    await store.close()


def test_segment_size_is_checked() -> None:
    with pytest.raises(ValueError):
        SwiftStore(None, None, container="c", segment_size=0)
