"""openstacksdk: create_image (upload and interoperable import), download_image byte-exact
with the checksums the SDK verifies, paging through image lists."""

from __future__ import annotations

import hashlib
from pathlib import Path

from openstack.connection import Connection
from tests.integration.image.support import ServiceAccount, digests, random_file, uniq


def test_create_and_download_round_trip(sdk: Connection, tmp_path: Path,
                                        service_account: ServiceAccount) -> None:
    data = random_file(tmp_path / "rootfs.tar", 5 * 1024 * 1024 + 7)
    md5, sha512 = digests(data)
    image = sdk.image.create_image(uniq("sdk"), filename=str(tmp_path / "rootfs.tar"),
                                   disk_format="raw", container_format="bare",
                                   validate_checksum=True, wait=True, os_distro="alpine")
    fetched = sdk.image.get_image(image.id)
    assert (fetched.status, fetched.size, fetched.checksum) == ("active", len(data), md5)
    assert (fetched.hash_algo, fetched.hash_value) == ("sha512", sha512)
    assert fetched.os_distro == "alpine"

    assert sdk.image.download_image(fetched).content == data  # the SDK checks sha512
    sdk.image.download_image(fetched, output=str(tmp_path / "out.tar"))
    assert (tmp_path / "out.tar").read_bytes() == data
    streamed = sdk.image.download_image(fetched, stream=True)
    digest = hashlib.md5()
    for chunk in streamed.iter_content(chunk_size=65536):
        digest.update(chunk)
    assert digest.hexdigest() == md5 == streamed.headers["Content-MD5"]

    assert image.id in service_account.objects()
    sdk.image.delete_image(image.id, ignore_missing=False)
    assert image.id not in service_account.objects()


def test_create_by_interoperable_import(sdk: Connection) -> None:
    data = b"imported " * 100000
    assert sdk.image.get_import_info().import_methods["value"] == ["glance-direct"]
    image = sdk.image.create_image(uniq("import"), data=data, disk_format="raw",
                                   container_format="bare", use_import=True)
    done = sdk.image.wait_for_status(image, status="active", wait=60, interval=0.2)
    assert (done.size, done.checksum) == (len(data), hashlib.md5(data).hexdigest())
    assert sdk.image.download_image(done).content == data
    sdk.image.delete_image(done)


def test_stores_and_schemas(sdk: Connection) -> None:
    stores = list(sdk.image.stores())
    assert [(s.id, s.is_default) for s in stores] == [("swift", True)]
    schema = sdk.image.get_image_schema()
    assert "visibility" in schema.properties
    assert sdk.image.get_member_schema().properties["status"]["enum"] == \
        ["pending", "accepted", "rejected"]


def test_paging_follows_next_links(sdk: Connection) -> None:
    tag = uniq("page")
    made = [sdk.image.create_image(uniq("p"), tags=[tag], disk_format="raw",
                                   container_format="bare", allow_duplicates=True)
            for _ in range(5)]
    seen = [i.id for i in sdk.image.images(tag=tag, limit=2)]
    assert sorted(seen) == sorted(i.id for i in made)
    by_name = [i.name for i in sdk.image.images(tag=tag, sort="name:asc")]
    assert by_name == sorted(i.name for i in made)
    for image in made:
        sdk.image.delete_image(image)
