"""The ``swift`` CLI (python-swiftclient) against the cloud, as a user drives it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Swift, make_tree, md5, read_tree, run_cli, uniq


def swift_cli(cloud: RunningCloud, *args: str, cwd: Path | None = None) -> str:
    return run_cli(cloud, "swift", *args, cwd=cwd).stdout


def stat_lines(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def test_upload_download_tree_round_trips(cloud: RunningCloud, swift: Swift,
                                          tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    name = uniq()
    swift_cli(cloud, "upload", name, ".", cwd=src)
    listed = swift_cli(cloud, "list", name).splitlines()
    assert sorted(listed) == sorted(files)
    dst = tmp_path / "dst"
    dst.mkdir()
    swift_cli(cloud, "download", name, cwd=dst)
    assert read_tree(dst) == files
    for rel, data in files.items():  # the server's ETags are the content's md5s
        assert swift.request("HEAD", f"{name}/{rel}").headers["etag"] == md5(data)


def test_download_single_object_to_file(cloud: RunningCloud, swift: Swift,
                                        tmp_path: Path) -> None:
    name = swift.container()
    data = os.urandom(200_000)
    swift.put(f"{name}/nested/blob.bin", data)
    out = tmp_path / "out.bin"
    swift_cli(cloud, "download", name, "nested/blob.bin", "-o", str(out))
    assert out.read_bytes() == data


def test_stat_account_container_object(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container()
    swift.put(f"{name}/obj", b"12345", **{"Content-Type": "text/x-test"})
    account = stat_lines(swift_cli(cloud, "stat"))
    assert account["Account"] == swift.account
    assert int(account["Containers"]) >= 1
    container = stat_lines(swift_cli(cloud, "stat", name))
    assert container["Container"] == name
    assert container["Objects"] == "1" and container["Bytes"] == "5"
    assert container["X-Storage-Policy"] == "default"
    obj = stat_lines(swift_cli(cloud, "stat", name, "obj"))
    assert obj["Content Type"] == "text/x-test"
    assert obj["Content Length"] == "5"
    assert obj["ETag"] == md5(b"12345")


def test_list_prefix_and_delimiter(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container()
    for obj in ("a/1", "a/2", "a/b/3", "b/4", "top"):
        swift.put(f"{name}/{obj}", obj.encode())
    assert swift_cli(cloud, "list", name, "--prefix", "a/").split() == ["a/1", "a/2", "a/b/3"]
    assert swift_cli(cloud, "list", name, "--delimiter", "/").split() == ["a/", "b/", "top"]
    assert swift_cli(cloud, "list", name, "--prefix", "a/", "--delimiter", "/").split() == \
        ["a/1", "a/2", "a/b/"]
    containers = swift_cli(cloud, "list", "--prefix", name).split()
    assert containers == [name]


def test_post_metadata_and_headers(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container()
    swift.put(f"{name}/obj", b"x")
    swift_cli(cloud, "post", "-m", "Color:blue", "-m", "Size:large", name)
    headers = swift.request("HEAD", name).headers
    assert headers["x-container-meta-color"] == "blue"
    assert headers["x-container-meta-size"] == "large"
    swift_cli(cloud, "post", "-m", "Owner:me", "-H", "Content-Type:text/x-new", name, "obj")
    headers = swift.request("HEAD", f"{name}/obj").headers
    assert headers["x-object-meta-owner"] == "me"
    assert headers["content-type"] == "text/x-new"
    swift_cli(cloud, "post", "-m", "Tier:gold")
    assert swift.request("HEAD").headers["x-account-meta-tier"] == "gold"
    swift_cli(cloud, "post", "-m", "Tier:")
    assert "x-account-meta-tier" not in swift.request("HEAD").headers


def test_upload_with_headers_and_meta(cloud: RunningCloud, swift: Swift,
                                      tmp_path: Path) -> None:
    name = uniq()
    path = tmp_path / "page.html"
    path.write_bytes(b"<p>hi</p>")
    swift_cli(cloud, "upload", name, "page.html", "-H", "Content-Disposition:inline",
              "-H", "X-Object-Meta-Kind:page", "-m", "Lang:en", cwd=tmp_path)
    headers = swift.request("HEAD", f"{name}/page.html").headers
    assert headers["content-disposition"] == "inline"
    assert headers["x-object-meta-kind"] == "page"
    assert headers["x-object-meta-lang"] == "en"
    assert headers["content-type"] == "text/html"


def test_delete_objects_and_containers(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container()
    for obj in ("one", "two", "dir/three"):
        swift.put(f"{name}/{obj}", b"data")
    swift_cli(cloud, "delete", name, "one")
    assert swift.names(name) == ["dir/three", "two"]
    swift_cli(cloud, "delete", name)  # every object, then the container
    assert swift.request("HEAD", name).status_code == 404
    assert name not in swift.names()


def test_upload_changed_skips_unchanged_files(cloud: RunningCloud, swift: Swift,
                                              tmp_path: Path) -> None:
    name = uniq()
    (tmp_path / "a.txt").write_bytes(b"first")
    (tmp_path / "b.txt").write_bytes(b"other")
    swift_cli(cloud, "upload", name, "a.txt", "b.txt", cwd=tmp_path)
    before = {o: swift.request("HEAD", f"{name}/{o}").headers["x-timestamp"]
              for o in ("a.txt", "b.txt")}
    time.sleep(0.05)
    (tmp_path / "a.txt").write_bytes(b"second version")
    swift_cli(cloud, "upload", "--changed", name, "a.txt", "b.txt", cwd=tmp_path)
    after = {o: swift.request("HEAD", f"{name}/{o}").headers["x-timestamp"]
             for o in ("a.txt", "b.txt")}
    assert after["b.txt"] == before["b.txt"]
    assert after["a.txt"] != before["a.txt"]
    assert swift.get(f"{name}/a.txt").content == b"second version"


def test_copy_object(cloud: RunningCloud, swift: Swift) -> None:
    src, dst = swift.container(), swift.container()
    data = os.urandom(100_000)
    swift.put(f"{src}/orig", data, **{"X-Object-Meta-Keep": "yes"})
    swift_cli(cloud, "copy", src, "orig", "--destination", f"/{dst}/copied",
              "-m", "Added:1")
    copied = swift.get(f"{dst}/copied")
    assert copied.content == data
    assert copied.headers["x-object-meta-keep"] == "yes"
    assert copied.headers["x-object-meta-added"] == "1"
    swift_cli(cloud, "copy", src, "orig", "--destination", f"/{dst}/fresh", "--fresh-metadata")
    assert "x-object-meta-keep" not in swift.request("HEAD", f"{dst}/fresh").headers


def test_list_long_json_and_totals(cloud: RunningCloud, swift: Swift) -> None:
    name = swift.container()
    swift.put(f"{name}/x", b"abc")
    swift.put(f"{name}/y", b"de")
    assert swift_cli(cloud, "list", name, "--lh", "--totals").split() == ["5"]
    long = swift_cli(cloud, "list", name, "--long").splitlines()
    assert [line.split()[0] for line in long[:2]] == ["3", "2"]
    assert [line.split()[-1] for line in long[:2]] == ["x", "y"]
