"""A cloud with the local-file store and quotas: data on disk, Glance's 413s, a restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.conftest import RunningCloud, start_cloud
from tests.integration.image.support import Glance


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running = start_cloud(tmp_path_factory.mktemp("filestore"),
                          POCKETSTACK_IMAGE__STORE="file",
                          POCKETSTACK_IMAGE__IMAGE_COUNT_QUOTA="3",
                          POCKETSTACK_IMAGE__IMAGE_SIZE_QUOTA="1000",
                          POCKETSTACK_IMAGE__MAX_IMAGE_SIZE="600")
    yield running
    code = running.stop()
    assert code == 0, f"exit {code}\n{running.log()}"


def test_file_store_quotas_and_restart(small: RunningCloud) -> None:
    glance = Glance(small, small.admin_token())
    images = small.data_dir / "image" / "images"
    try:
        assert glance.http.get("/v2/info/stores").json()["stores"][0]["id"] == "file"
        too_big = glance.create(disk_format="raw", container_format="bare")
        response = glance.upload(too_big["id"], b"b" * 601)  # over max_image_size
        assert response.status_code == 413 and "too large" in response.text

        first = glance.active(b"a" * 500)
        assert first["stores"] == "file"
        assert (images / first["id"]).read_bytes() == b"a" * 500
        response = glance.upload(too_big["id"], b"b" * 501)  # over the byte quota
        assert response.status_code == 413 and "storage quota" in response.text
        assert glance.show(too_big["id"])["status"] == "queued"
        assert glance.upload(too_big["id"], b"b" * 500).status_code == 204

        glance.create()  # the third image
        over = glance.http.post("/v2/images", json={"name": "fourth"})
        assert over.status_code == 413 and "image_count_total" in over.text

        small.restart()
        glance.close()
        glance = Glance(small, small.admin_token())
        assert glance.http.get(f"/v2/images/{first['id']}/file").content == b"a" * 500
        assert glance.http.delete(f"/v2/images/{first['id']}").status_code == 204
        assert not (images / first["id"]).exists()
        assert glance.http.post("/v2/images", json={"name": "room again"}).status_code == 201
    finally:
        glance.close()
