"""Dynamic large objects (Swift's ``dlo``): raw HTTP, rclone's segmented uploads, swift CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from tests.integration.conftest import ADMIN_PASSWORD, RunningCloud
from tests.integration.objectstore.support import Keystone, Swift, md5, run_cli, uniq

RCLONE = shutil.which("rclone")


def dlo(swift: Swift, parts: dict[str, bytes], *, container: str | None = None,
        manifest_body: bytes = b"") -> tuple[str, bytes]:
    """Segments ``<c>/seg/<name>`` (uploaded in reverse order) and a manifest ``<c>/man``;
    the container and the expected content (listing order)."""
    name = container or swift.container()
    for part in sorted(parts, reverse=True):
        swift.put(f"{name}/seg/{part}", parts[part])
    swift.put(f"{name}/man", manifest_body, **{"X-Object-Manifest": f"{name}/seg/"})
    return name, b"".join(parts[p] for p in sorted(parts))


def dlo_etag(parts: dict[str, bytes]) -> str:
    return '"' + md5("".join(md5(parts[p]) for p in sorted(parts)).encode()) + '"'


MANIFEST_GET = {"multipart-manifest": "get"}
PARTS = {"00": b"a" * 10, "01": b"b" * 10, "02": b"c" * 10, "03": b"d" * 7}


def test_get_and_head_concatenate_segments_in_listing_order(swift: Swift) -> None:
    name, content = dlo(swift, PARTS)
    got = swift.get(f"{name}/man")
    assert got.status_code == 200 and got.content == content
    assert got.headers["etag"] == dlo_etag(PARTS)
    assert got.headers["content-length"] == str(len(content))
    assert got.headers["x-object-manifest"] == f"{name}/seg/"
    head = swift.request("HEAD", f"{name}/man")
    assert head.status_code == 200 and head.headers["etag"] == dlo_etag(PARTS)
    assert head.headers["content-length"] == str(len(content))
    manifest = swift.request("GET", f"{name}/man", params=MANIFEST_GET)
    assert manifest.content == b"" and manifest.headers["etag"] == md5(b"")
    swift.put(f"{name}/seg/015", b"new")  # a segment added later is part of it
    assert swift.get(f"{name}/man").content == b"a" * 10 + b"b" * 10 + b"new" + b"c" * 10 + \
        b"d" * 7


def test_ranges_across_segments(swift: Swift) -> None:
    name, content = dlo(swift, PARTS)
    for header, start, stop in (("bytes=5-24", 5, 25), ("bytes=-12", 25, 37),
                                ("bytes=28-", 28, 37), ("bytes=0-0", 0, 1)):
        got = swift.get(f"{name}/man", Range=header)
        assert got.status_code == 206, header
        assert got.content == content[start:stop], header
        assert got.headers["content-range"] == f"bytes {start}-{stop - 1}/37"
    several = swift.get(f"{name}/man", Range="bytes=0-4,10-14")
    assert several.status_code == 200 and several.content == content  # Swift's DLO answer
    past = swift.get(f"{name}/man", Range="bytes=50-60")
    assert past.status_code == 416 and past.headers["content-range"] == "bytes */37"


def test_conditional_requests_use_the_large_object_etag(swift: Swift) -> None:
    name, _ = dlo(swift, PARTS)
    etag = dlo_etag(PARTS)
    for method in ("GET", "HEAD"):
        def status(method: str = method, **headers: str) -> int:
            return swift.request(method, f"{name}/man", headers=headers).status_code

        assert status(**{"If-Match": etag}) == 200
        assert status(**{"If-Match": '"other"'}) == 412
        assert status(**{"If-None-Match": etag}) == 304
        assert status(**{"If-None-Match": '"other"'}) == 200
        assert status(**{"If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"}) == 304


def test_copy_copies_the_content_or_the_manifest(swift: Swift) -> None:
    name, content = dlo(swift, PARTS)
    copied = swift.request("COPY", f"{name}/man", headers={"Destination": f"{name}/copy"})
    assert copied.status_code == 201
    assert copied.headers["x-copied-from"] == f"{name}/man"
    got = swift.get(f"{name}/copy")
    assert got.content == content and "x-object-manifest" not in got.headers
    assert got.headers["etag"] == md5(content)  # a plain object now
    swift.ok("PUT", f"{name}/copy2", 201, headers={"X-Copy-From": f"{name}/man"})
    assert swift.get(f"{name}/copy2").content == content
    swift.ok("COPY", f"{name}/man", 201, params=MANIFEST_GET,
             headers={"Destination": f"{name}/mancopy"})
    again = swift.get(f"{name}/mancopy")
    assert again.headers["x-object-manifest"] == f"{name}/seg/" and again.content == content


def test_bad_manifest_headers_are_400_and_store_nothing(swift: Swift) -> None:
    name = swift.container()
    for value in ("no-slash", "/leading", "c/", "c//prefix", "c/p?x", "c/p&x", ""):
        response = swift.request("PUT", f"{name}/bad", content=b"",
                                 headers={"X-Object-Manifest": value})
        assert response.status_code == 400, value
        assert response.text == "X-Object-Manifest must be in the format container/prefix"
    assert swift.request("HEAD", f"{name}/bad").status_code == 404


def test_post_makes_and_unmakes_a_manifest(swift: Swift) -> None:
    name, content = dlo(swift, PARTS)
    swift.put(f"{name}/plain", b"plain")
    swift.ok("POST", f"{name}/plain", 202, headers={"X-Object-Manifest": f"{name}/seg/"})
    assert swift.get(f"{name}/plain").content == content
    assert swift.request("GET", f"{name}/plain", params=MANIFEST_GET).content == b"plain"
    swift.ok("POST", f"{name}/plain", 202, headers={"X-Object-Meta-A": "b"})
    assert swift.get(f"{name}/plain").content == b"plain"


def test_manifest_data_and_empty_listing(swift: Swift) -> None:
    """The manifest's own bytes count when its name has the prefix; no segment: empty."""
    name = swift.container()
    swift.put(f"{name}/p-0", b"seg")
    swift.put(f"{name}/p-man", b"mine", **{"X-Object-Manifest": f"{name}/p-"})
    assert swift.get(f"{name}/p-man").content == b"segmine"
    swift.put(f"{name}/empty", b"", **{"X-Object-Manifest": f"{name}/nothing-here"})
    got = swift.get(f"{name}/empty")
    assert got.status_code == 200 and got.content == b""
    assert got.headers["etag"] == f'"{md5(b"")}"'


def test_segment_container_access_is_checked_as_the_caller(swift: Swift,
                                                           keystone: Keystone) -> None:
    reader = keystone.persona("reader")
    manifests, segments = swift.container(), swift.container()
    swift.put(f"{segments}/s/1", b"secret")
    swift.put(f"{manifests}/man", b"", **{"X-Object-Manifest": f"{segments}/s/"})
    as_reader = reader.swift(swift.account)
    try:
        assert as_reader.get(f"{manifests}/man").status_code == 403
        swift.ok("POST", manifests, 204,
                 headers={"X-Container-Read": f"{reader.project_id}:{reader.user_id}"})
        assert as_reader.get(f"{manifests}/man").status_code == 403  # the listing is refused
        swift.ok("POST", segments, 204,
                 headers={"X-Container-Read": f"{reader.project_id}:{reader.user_id}"})
        assert as_reader.get(f"{manifests}/man").content == b"secret"
    finally:
        as_reader.close()


def test_missing_segment_container_and_vanished_segment(swift: Swift) -> None:
    name = swift.container()
    swift.put(f"{name}/man", b"", **{"X-Object-Manifest": "no-such-container-x/p"})
    assert swift.get(f"{name}/man").status_code == 404


def test_swift_cli_downloads_a_dlo_byte_exact(cloud: RunningCloud, swift: Swift,
                                              tmp_path: Path) -> None:
    parts = {f"{i:03d}": os.urandom(100_000 + i) for i in range(5)}
    name, content = dlo(swift, parts)
    run_cli(cloud, "swift", "download", name, "man", "-o", "out.bin", cwd=tmp_path)
    assert (tmp_path / "out.bin").read_bytes() == content


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")
def test_rclone_large_file_round_trip(cloud: RunningCloud, swift: Swift,
                                      tmp_path: Path) -> None:
    """rclone's default large-file upload: 1 MiB segments in ``<container>_segments``
    and a DLO manifest; it reads the file back through the manifest."""
    config = tmp_path / "rclone.conf"
    config.write_text(
        "[ps]\ntype = swift\nuser = admin\n"
        f"key = {ADMIN_PASSWORD}\nauth = {cloud.auth_url}\ndomain = Default\n"
        "tenant = admin\ntenant_domain = Default\nauth_version = 3\n")

    def rclone(*args: str) -> str:
        assert RCLONE is not None
        result = subprocess.run([RCLONE, "--config", str(config), "--retries", "1",
                                 "--low-level-retries", "1", "--swift-chunk-size", "1M",
                                 *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 12345)
    (src / "big.bin").write_bytes(data)
    name = uniq()
    rclone("mkdir", f"ps:{name}")
    rclone("copy", str(src), f"ps:{name}")
    head = swift.request("HEAD", f"{name}/big.bin")
    assert head.headers["x-object-manifest"].startswith(f"{name}_segments/")
    assert head.headers["content-length"] == str(len(data))
    assert len(swift.names(f"{name}_segments")) == 4
    assert swift.get(f"{name}/big.bin").content == data
    rclone("check", str(src), f"ps:{name}")
    back = tmp_path / "back"
    rclone("copy", f"ps:{name}", str(back))
    assert (back / "big.bin").read_bytes() == data
    if "bulk_delete" in httpx.get(f"{cloud.objectstore_url}/info").json():
        rclone("deletefile", f"ps:{name}/big.bin")  # the segments go with a bulk delete
        assert swift.names(f"{name}_segments") == []
