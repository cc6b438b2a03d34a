"""The openstack CLI against a fresh cloud: the first things a user does."""

from __future__ import annotations

from tests.integration.conftest import RunningCloud


def test_token_issue_and_project_list(cloud: RunningCloud) -> None:
    token = cloud.openstack("token", "issue")
    assert token["id"] and token["project_id"]
    names = {p["Name"] for p in cloud.openstack("project", "list")}
    assert "admin" in names


def test_catalog_lists_identity(cloud: RunningCloud) -> None:
    catalog = cloud.openstack("catalog", "list")
    assert {c["Type"] for c in catalog} >= {"identity"}
