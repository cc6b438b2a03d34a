"""The ``openstack`` CLI on images, as users run it (``OS_CLOUD=pocketstack``): create from
a file, list, show, set and unset properties and tags, save, delete; data in object storage."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import RunningCloud
from tests.integration.image.support import (
    Glance,
    Member,
    ServiceAccount,
    digests,
    random_file,
    uniq,
)

SIZE = 6 * 1024 * 1024 + 12345  # several MiB, not a multiple of any chunk size


def test_image_lifecycle_with_the_cli(cloud: RunningCloud, tmp_path: Path,
                                      service_account: ServiceAccount) -> None:
    data = random_file(tmp_path / "disk.raw", SIZE)
    md5, sha512 = digests(data)
    name = uniq("cli")
    created = cloud.openstack("image", "create", "--file", str(tmp_path / "disk.raw"),
                              "--disk-format", "raw", "--container-format", "bare",
                              "--property", "os_distro=debian", "--tag", "base", name)
    image_id = created["id"]
    assert (created["status"], created["size"], created["checksum"]) == ("active", SIZE, md5)
    assert created["properties"]["os_hash_value"] == sha512
    assert created["properties"]["os_distro"] == "debian" and created["tags"] == ["base"]

    # The bytes live in object storage, under the image service's account.
    assert image_id in service_account.objects()
    stored = service_account.get(image_id)
    assert stored.status_code == 200 and stored.headers["etag"].strip('"') == md5
    assert stored.content == data

    listed = cloud.openstack("image", "list", "--name", name)
    assert [(i["ID"], i["Status"]) for i in listed] == [(image_id, "active")]

    cloud.cli("openstack", "image", "set", "--property", "hw_arch=x86_64", "--tag", "extra",
              "--min-ram", "512", name)
    shown = cloud.openstack("image", "show", name)
    assert shown["properties"]["hw_arch"] == "x86_64" and shown["min_ram"] == 512
    assert sorted(shown["tags"]) == ["base", "extra"]
    cloud.cli("openstack", "image", "unset", "--property", "hw_arch", "--tag", "base", name)
    shown = cloud.openstack("image", "show", image_id)
    assert "hw_arch" not in shown["properties"] and shown["tags"] == ["extra"]

    cloud.cli("openstack", "image", "save", "--file", str(tmp_path / "saved.raw"), name)
    assert (tmp_path / "saved.raw").read_bytes() == data

    cloud.cli("openstack", "image", "delete", name)
    assert cloud.openstack("image", "list", "--name", name) == []
    assert image_id not in service_account.objects()
    assert service_account.get(image_id).status_code == 404


def test_protected_images_are_not_deleted(cloud: RunningCloud, glance: Glance) -> None:
    image = glance.create(protected=True)
    failed = cloud.cli("openstack", "image", "delete", image["id"], check=False)
    assert failed.returncode != 0 and "protected" in failed.stderr
    cloud.cli("openstack", "image", "set", "--unprotected", image["id"])
    cloud.cli("openstack", "image", "delete", image["id"])


def test_sharing_with_a_project(cloud: RunningCloud, glance: Glance, member: Member) -> None:
    image = glance.active(b"shared bytes", visibility="shared")
    project_id = member.project["id"]
    added = cloud.openstack("image", "add", "project", image["id"], project_id)
    assert (added["member_id"], added["status"]) == (project_id, "pending")

    def member_list() -> list[str]:
        out = cloud.cli("openstack", "image", "list", "-f", "json", env=member.env).stdout
        return [i["ID"] for i in json.loads(out)]

    assert image["id"] not in member_list()  # pending: not listed by default
    cloud.cli("openstack", "image", "set", "--accept", image["id"], env=member.env)
    assert image["id"] in member_list()
    members = cloud.openstack("image", "member", "list", image["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(project_id, "accepted")]
    saved = cloud.cli("openstack", "image", "save", image["id"], env=member.env)
    assert saved.returncode == 0
    cloud.cli("openstack", "image", "set", "--reject", image["id"], env=member.env)
    assert image["id"] not in member_list()
    cloud.cli("openstack", "image", "remove", "project", image["id"], project_id)
    hidden = cloud.cli("openstack", "image", "show", image["id"], check=False, env=member.env)
    assert hidden.returncode != 0
