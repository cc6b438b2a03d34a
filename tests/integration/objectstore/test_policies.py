"""Storage policies: ``default`` (3 replicas) and ``single`` (1 replica), chosen per container."""

from __future__ import annotations

import httpx
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import (
    Persona,
    Swift,
    eventually,
    object_files,
    uniq,
)


def test_policy_decides_replica_count(cloud: RunningCloud, swift: Swift) -> None:
    single = swift.container(uniq(), **{"X-Storage-Policy": "single"})
    default = swift.container()
    assert swift.request("HEAD", single).headers["x-storage-policy"] == "single"
    assert swift.request("HEAD", default).headers["x-storage-policy"] == "default"
    for name in (single, default):
        swift.put(f"{name}/obj", name.encode())
        assert swift.get(f"{name}/obj").content == name.encode()
    one = object_files(cloud.data_dir, swift.account, single, "obj")
    three = object_files(cloud.data_dir, swift.account, default, "obj")
    assert len(one) == 1 and one[0].parts[-5] == "objects-1"
    assert len(three) == 3 and {p.parts[-5] for p in three} == {"objects"}
    assert len({p.parts[-6] for p in three}) == 3  # on three different devices


def test_policy_name_is_case_insensitive_and_validated(swift: Swift) -> None:
    name = swift.container(uniq(), **{"X-Storage-Policy": "SINGLE"})
    assert swift.request("HEAD", name).headers["x-storage-policy"] == "single"
    bad = swift.request("PUT", uniq(), headers={"X-Storage-Policy": "gold"})
    assert bad.status_code == 400
    assert "gold" in bad.text


def test_changing_policy_is_409(swift: Swift) -> None:
    name = swift.container(uniq(), **{"X-Storage-Policy": "single"})
    response = swift.request("PUT", name, headers={"X-Storage-Policy": "default"})
    assert response.status_code == 409
    same = swift.request("PUT", name, headers={"X-Storage-Policy": "single"})
    assert same.status_code == 202
    assert swift.request("PUT", name).status_code == 202  # no header: keeps its policy
    assert swift.request("HEAD", name).headers["x-storage-policy"] == "single"


def test_deleted_container_may_come_back_with_another_policy(swift: Swift) -> None:
    name = swift.container(uniq(), **{"X-Storage-Policy": "single"})
    swift.ok("DELETE", name)
    assert swift.request("PUT", name, headers={"X-Storage-Policy": "default"}
                         ).status_code == 201
    assert swift.request("HEAD", name).headers["x-storage-policy"] == "default"


def test_account_stats_per_policy(owner: Persona) -> None:
    own = owner.swift()
    own.container("one", **{"X-Storage-Policy": "single"})
    own.container("three")
    own.put("one/a", b"12345")
    own.put("one/b", b"67")
    own.put("three/c", b"1")

    def stats() -> httpx.Headers:
        headers = own.request("HEAD").headers
        assert headers["x-account-object-count"] == "3"
        assert headers["x-account-bytes-used"] == "8"
        assert headers["x-account-container-count"] == "2"
        assert headers["x-account-storage-policy-single-object-count"] == "2"
        assert headers["x-account-storage-policy-single-bytes-used"] == "7"
        assert headers["x-account-storage-policy-single-container-count"] == "1"
        assert headers["x-account-storage-policy-default-object-count"] == "1"
        assert headers["x-account-storage-policy-default-bytes-used"] == "1"
        assert headers["x-account-storage-policy-default-container-count"] == "1"
        return headers

    eventually(stats)
    listing = {c["name"]: (c["count"], c["bytes"]) for c in own.listing()}
    assert listing == {"one": (2, 7), "three": (1, 1)}
