"""rclone (Debian's) with a Swift remote authenticating against Keystone v3."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.integration.conftest import ADMIN_PASSWORD, RunningCloud
from tests.integration.objectstore.support import Swift, make_tree, md5, read_tree, uniq

RCLONE = shutil.which("rclone")
pytestmark = pytest.mark.skipif(RCLONE is None, reason="rclone is not installed "
                                "(make test installs it from Debian)")


def rclone(config: Path, *args: str) -> str:
    assert RCLONE is not None
    result = subprocess.run([RCLONE, "--config", str(config), "--retries", "1",
                             "--low-level-retries", "1", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"rclone {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def remote(cloud: RunningCloud, tmp_path: Path) -> Path:
    config = tmp_path / "rclone.conf"
    config.write_text(
        "[ps]\ntype = swift\nuser = admin\n"
        f"key = {ADMIN_PASSWORD}\nauth = {cloud.auth_url}\ndomain = Default\n"
        "tenant = admin\ntenant_domain = Default\nauth_version = 3\n")
    return config


def test_sync_check_and_copy_back(remote: Path, swift: Swift, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    name = uniq()
    rclone(remote, "mkdir", f"ps:{name}")
    rclone(remote, "sync", str(src), f"ps:{name}")
    rclone(remote, "check", str(src), f"ps:{name}")
    assert sorted(swift.names(name)) == sorted(files)
    for rel, data in files.items():
        assert swift.request("HEAD", f"{name}/{rel}").headers["etag"] == md5(data)
    back = tmp_path / "back"
    rclone(remote, "copy", f"ps:{name}", str(back))
    assert read_tree(back) == files


def test_sync_applies_changes_and_deletions(remote: Path, swift: Swift,
                                            tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, big=200_000)
    name = uniq()
    rclone(remote, "sync", str(src), f"ps:{name}")
    (src / "readme.txt").write_bytes(b"changed content\n")
    (src / "docs" / "guide.md").unlink()
    (src / "new dir").mkdir()
    (src / "new dir" / "added.txt").write_bytes(os.urandom(777))
    rclone(remote, "sync", str(src), f"ps:{name}")
    rclone(remote, "check", str(src), f"ps:{name}")
    expected = read_tree(src)
    assert sorted(swift.names(name)) == sorted(expected)
    assert swift.get(f"{name}/readme.txt").content == b"changed content\n"
    assert "docs/guide.md" not in swift.names(name)
    assert len(expected) == len(files)  # one removed, one added
    listed = rclone(remote, "lsf", "-R", f"ps:{name}").split("\n")
    assert "new dir/added.txt" in listed
