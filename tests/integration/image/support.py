"""Image test helpers on top of the session ``cloud``: a raw Glance client, projects with
users, and the image service's own view of object storage (its service account).

Bulk setup goes through raw HTTP; the ``openstack`` CLI and openstacksdk are kept for what
users do with them. Names are unique per test (:func:`uniq`), so tests are independent on
the shared cloud and safe under ``pytest -n``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api, cli_env, uniq

PATCH = "application/openstack-images-v2.1-json-patch"
__all__ = ["PATCH", "Glance", "Member", "ServiceAccount", "digests", "make_member",
           "random_file", "uniq"]


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


class Glance:
    """A small Glance v2 client: raw responses, plus helpers that assert success."""

    def __init__(self, cloud: RunningCloud, token: str) -> None:
        self.cloud = cloud
        self.http = httpx.Client(base_url=cloud.image_url, timeout=60,
                                 headers={"X-Auth-Token": token,
                                          "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, **kw)

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.http.post("/v2/images", json={"name": uniq("img"), **body})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def upload(self, image_id: str, data: bytes) -> httpx.Response:
        return self.http.put(f"/v2/images/{image_id}/file", content=data,
                             headers={"Content-Type": "application/octet-stream"})

    def show(self, image_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def patch(self, image_id: str, *ops: dict[str, Any], content_type: str = PATCH
              ) -> httpx.Response:
        return self.http.patch(f"/v2/images/{image_id}", content=json.dumps(list(ops)),
                               headers={"Content-Type": content_type})

    def active(self, data: bytes = b"image data", **body: Any) -> dict[str, Any]:
        image = self.create(disk_format="raw", container_format="bare", **body)
        assert self.upload(image["id"], data).status_code == 204
        return self.show(image["id"])

    def ids(self, **params: Any) -> list[str]:
        response = self.http.get("/v2/images", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["images"]]


@dataclass
class Member:
    """A project with a member user, its token and a CLI environment."""

    project: dict[str, Any]
    user: dict[str, Any]
    password: str
    token: str
    env: dict[str, str]


def make_member(api: Api, role: str = "member") -> Member:
    project = api.project()
    password = uniq("pw")
    user = api.user(password=password)
    api.grant(role, user=user["id"], project=project["id"])
    token = api.token_for(user_id=user["id"], password=password,
                          scope={"project": {"id": project["id"]}})
    env = cli_env(api.cloud, OS_USERNAME=user["name"], OS_USER_DOMAIN_ID="default",
                  OS_PASSWORD=password, OS_PROJECT_ID=project["id"])
    return Member(project, user, password, token, env)


class ServiceAccount:
    """Object storage as the image service sees it: its user's token and its account."""

    def __init__(self, cloud: RunningCloud) -> None:
        record = json.loads((cloud.data_dir / "image" / "service-user.json").read_text())
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": record["user"], "domain": {"id": "default"},
            "password": record["password"]}}},
            "scope": {"project": {"name": record["project"], "domain": {"id": "default"}}}}}
        response = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body, timeout=30)
        assert response.status_code == 201, response.text
        catalog = response.json()["token"]["catalog"]
        swift = next(e for e in catalog if e["type"] == "object-store")
        url = next(e["url"] for e in swift["endpoints"] if e["interface"] == "public")
        self.http = httpx.Client(base_url=url, timeout=30,
                                 headers={"X-Auth-Token": response.headers["X-Subject-Token"]})

    def objects(self, container: str = "glance") -> list[str]:
        response = self.http.get(f"/{container}", params={"format": "json"})
        if response.status_code == 404:
            return []
        assert response.status_code in (200, 204), response.text
        return [o["name"] for o in response.json()] if response.content else []

    def get(self, image_id: str, container: str = "glance") -> httpx.Response:
        return self.http.get(f"/{container}/{image_id}")

    def close(self) -> None:
        self.http.close()
