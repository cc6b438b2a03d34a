"""Identity test helpers on top of the session ``cloud``: an admin API client and personas.

Bulk setup goes through :class:`Api` (raw HTTP, ~ms per call); the ``openstack`` CLI (~1 s a
call) is kept for what users do. Every name is unique per test (:func:`uniq`) so that tests
are independent and safe under ``pytest -n``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from tests.integration.conftest import ADMIN_PASSWORD, RunningCloud


def uniq(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def password_auth(*, user_id: str | None = None, name: str | None = None,
                  domain_id: str = "default", password: str,
                  scope: dict[str, Any] | str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {"password": password}
    if user_id:
        user["id"] = user_id
    else:
        user.update(name=name, domain={"id": domain_id})
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


class Api:
    """A small Keystone v3 client: raw responses, plus helpers that assert success."""

    def __init__(self, cloud: RunningCloud, token: str | None = None) -> None:
        self.cloud = cloud
        self.token = token
        self.http = httpx.Client(base_url=cloud.auth_url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def as_token(self, token: str | None) -> Api:
        return Api(self.cloud, token)

    def request(self, method: str, path: str, *, token: str | None = None,
                headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        all_headers = dict(headers or {})
        if token or self.token:
            all_headers.setdefault("X-Auth-Token", token or self.token or "")
        return self.http.request(method, path, headers=all_headers, **kwargs)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def head(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("HEAD", path, **kw)

    # -- helpers that must succeed -------------------------------------------------------------
    def ok(self, response: httpx.Response, status: int | tuple[int, ...] = (200, 201, 204)
           ) -> Any:
        wanted = (status,) if isinstance(status, int) else status
        assert response.status_code in wanted, (response.status_code, response.text)
        return response.json() if response.content else None

    def create(self, collection: str, key: str, **fields: Any) -> dict[str, Any]:
        return self.ok(self.post(f"/{collection}", json={key: fields}), 201)[key]

    def domain(self, **fields: Any) -> dict[str, Any]:
        return self.create("domains", "domain", **{"name": uniq("dom"), **fields})

    def project(self, **fields: Any) -> dict[str, Any]:
        return self.create("projects", "project", **{"name": uniq("prj"), **fields})

    def user(self, password: str = "secret-pw", **fields: Any) -> dict[str, Any]:
        return self.create("users", "user", **{"name": uniq("usr"), "password": password,
                                              **fields})

    def group(self, **fields: Any) -> dict[str, Any]:
        return self.create("groups", "group", **{"name": uniq("grp"), **fields})

    def role(self, **fields: Any) -> dict[str, Any]:
        return self.create("roles", "role", **{"name": uniq("role"), **fields})

    def role_id(self, name: str) -> str:
        roles = self.ok(self.get("/roles", params={"name": name}))["roles"]
        assert len(roles) == 1, roles
        return str(roles[0]["id"])

    def grant(self, role: str, *, user: str | None = None, group: str | None = None,
              project: str | None = None, domain: str | None = None, system: bool = False,
              inherited: bool = False) -> None:
        role_id = role if len(role) == 32 else self.role_id(role)
        actor = f"users/{user}" if user else f"groups/{group}"
        target = "system" if system else f"projects/{project}" if project \
            else f"domains/{domain}"
        path = f"/{target}/{actor}/roles/{role_id}"
        if inherited:
            path = f"/OS-INHERIT{path}/inherited_to_projects"
        self.ok(self.put(path), 204)

    def issue(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.http.post("/auth/tokens", json=body, **kw)

    def token_for(self, *, password: str = "secret-pw", **kw: Any) -> str:
        response = self.issue(password_auth(password=password, **kw))
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def validate(self, token: str, **params: Any) -> httpx.Response:
        return self.get("/auth/tokens", headers={"X-Subject-Token": token}, params=params)


@dataclass
class Persona:
    """A user with a password, a role on a project (or domain), and a token for it."""

    user: dict[str, Any]
    password: str
    project: dict[str, Any] | None
    domain: dict[str, Any] | None
    token: str

    @property
    def id(self) -> str:
        return str(self.user["id"])

    def cli_env(self, cloud: RunningCloud) -> dict[str, str]:
        """Environment for the ``openstack`` CLI acting as this persona (no clouds.yaml)."""
        env = {"OS_USER_ID": self.id, "OS_PASSWORD": self.password}
        if self.project is not None:
            env["OS_PROJECT_ID"] = str(self.project["id"])
        elif self.domain is not None:
            env["OS_DOMAIN_ID"] = str(self.domain["id"])
        return cli_env(cloud, **env)


# What a client environment may carry that would mix into another identity or scope.
_OS_VARIABLES = ("OS_CLOUD", "OS_USERNAME", "OS_USER_ID", "OS_PASSWORD", "OS_USER_DOMAIN_NAME",
                 "OS_USER_DOMAIN_ID", "OS_PROJECT_NAME", "OS_PROJECT_ID",
                 "OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID", "OS_DOMAIN_NAME",
                 "OS_DOMAIN_ID", "OS_SYSTEM_SCOPE", "OS_AUTH_TYPE", "OS_TOKEN")


def cli_env(cloud: RunningCloud, **values: str) -> dict[str, str]:
    """An ``openstack`` CLI environment with exactly these OS_* values and no clouds.yaml
    entry (an empty variable counts as unset)."""
    env = dict.fromkeys(_OS_VARIABLES, "")
    env.update(OS_AUTH_URL=cloud.auth_url, OS_IDENTITY_API_VERSION="3", **values)
    return env


def make_persona(api: Api, role: str, *, project: dict[str, Any] | None = None,
                 domain: dict[str, Any] | None = None, user_domain: str = "default"
                 ) -> Persona:
    """A new user holding ``role`` on ``project`` (made fresh when neither project nor
    domain is given) or on ``domain``, with a token scoped there."""
    if project is None and domain is None:
        project = api.project()
    password = uniq("pw")
    user = api.user(password=password, domain_id=user_domain)
    if project is not None:
        api.grant(role, user=user["id"], project=project["id"])
        scope: dict[str, Any] = {"project": {"id": project["id"]}}
    else:
        assert domain is not None
        api.grant(role, user=user["id"], domain=domain["id"])
        scope = {"domain": {"id": domain["id"]}}
    token = api.token_for(user_id=user["id"], password=password, scope=scope)
    return Persona(user, password, project, domain, token)


def admin_env(cloud: RunningCloud, **scope: str) -> dict[str, str]:
    """The bootstrap admin for the CLI without clouds.yaml, scoped as given
    (e.g. ``OS_SYSTEM_SCOPE="all"`` or ``OS_DOMAIN_ID=...``)."""
    return cli_env(cloud, OS_USERNAME="admin", OS_USER_DOMAIN_ID="default",
                   OS_PASSWORD=ADMIN_PASSWORD, **scope)


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is a Keystone error with ``status``: ``{"error": {code, title, message}}``."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == status
    assert isinstance(error["title"], str) and error["title"]
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def osc(cloud: RunningCloud, *args: str, env: dict[str, str] | None = None) -> str:
    """Run an ``openstack`` command that prints nothing (set, delete, add...)."""
    return cloud.cli("openstack", *args, env=env).stdout
