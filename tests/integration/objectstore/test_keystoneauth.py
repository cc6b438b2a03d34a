"""keystoneauth's finer points: service tokens and the SERVICE_ prefix, project domains
(X-Account-Project-Domain-Id, names in ACLs), and what an invalid service token does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Keystone, Persona, Swift, uniq


def persona_in(keystone: Keystone, domain_id: str, role: str = "member") -> Persona:
    """A new project and user in ``domain_id`` (the user has ``role`` on the project)."""
    project = keystone.create("projects", "project", name=uniq("prj"), domain_id=domain_id)
    password = uniq("pw")
    user = keystone.create("users", "user", name=uniq("usr"), password=password,
                           domain_id=domain_id)
    keystone.grant(role, user=user["id"], project=project["id"])
    token = keystone.token(user["id"], password, project["id"])
    return Persona(keystone.cloud, user, project, password, token)


@pytest.fixture(scope="module")
def other_domain(keystone: Keystone) -> dict[str, Any]:
    return keystone.create("domains", "domain", name=uniq("dom"))


def with_service(client: Swift, service_token: str) -> Swift:
    client.http.headers["X-Service-Token"] = service_token
    return client


# -- service tokens ----------------------------------------------------------------------------
def test_service_account_needs_user_and_service_together(keystone: Keystone) -> None:
    user = keystone.persona("member")
    service = keystone.persona("service")
    account = f"SERVICE_{user.project_id}"
    alone = user.swift(account)
    assert alone.request("PUT", "c").status_code == 403  # the user alone: no
    assert service.swift(account).request("HEAD").status_code == 403  # the service alone
    together = with_service(user.swift(account), service.token)
    assert together.request("PUT", "c").status_code == 201
    assert together.request("PUT", "c/o", content=b"data").status_code == 201
    assert together.get("c/o").content == b"data"
    assert together.request("POST", "", headers={"X-Account-Meta-K": "v"}).status_code == 204
    assert together.request("HEAD").headers["x-account-meta-k"] == "v"
    # a service token without a service role does not count
    not_a_service = with_service(user.swift(account), keystone.persona("member").token)
    assert not_a_service.request("GET", "c/o").status_code == 403
    # the user's own AUTH_ account needs no service token, and takes one without harm
    assert with_service(user.swift(), service.token).request("PUT", "c").status_code == 201
    reseller = keystone.persona("ResellerAdmin").swift(account)
    assert reseller.request("DELETE", "c/o").status_code == 204


def test_invalid_service_token_makes_the_request_anonymous(keystone: Keystone) -> None:
    user = keystone.persona("member")
    own = user.swift()
    own.container("c")
    response = with_service(user.swift(), "not-a-token").request("GET", "c")
    assert response.status_code == 401


def test_accounts_outside_every_prefix(keystone: Keystone, cloud: RunningCloud) -> None:
    user = keystone.persona("member")
    anonymous = Swift(cloud.objectstore_url, f"OTHER_{user.project_id}", None)
    assert anonymous.request("GET", "c/o").status_code == 401
    assert user.swift(f"OTHER_{user.project_id}").request("HEAD").status_code == 403


def test_info_lists_the_prefixes(cloud: RunningCloud) -> None:
    keystoneauth = httpx.get(f"{cloud.objectstore_url}/info").json()["keystoneauth"]
    assert keystoneauth["reseller_prefix"] == "AUTH_"
    assert keystoneauth["reseller_prefixes"] == ["AUTH_", "SERVICE_"]
    assert keystoneauth["service_roles"] == {"SERVICE_": ["service"]}


# -- project domains ---------------------------------------------------------------------------
def test_account_remembers_its_project_domain(keystone: Keystone,
                                               other_domain: dict[str, Any]) -> None:
    elsewhere = persona_in(keystone, other_domain["id"])
    own = elsewhere.swift()
    own.ok("POST", "", 204)  # creates the account
    assert own.request("HEAD").headers["x-account-project-domain-id"] == other_domain["id"]
    assert own.request("GET").headers["x-account-project-domain-id"] == other_domain["id"]
    default = keystone.persona("member").swift()
    default.container()  # a container PUT creates the account too
    assert default.request("HEAD").headers["x-account-project-domain-id"] == "default"
    reseller = keystone.persona("ResellerAdmin")
    fresh = keystone.create("projects", "project", name=uniq("prj"), domain_id="default")
    made_by_reseller = reseller.swift(f"AUTH_{fresh['id']}")
    made_by_reseller.container()
    assert made_by_reseller.request("HEAD").headers["x-account-project-domain-id"] == \
        "_unknown"


def test_names_in_acls_only_within_the_default_domain(keystone: Keystone,
                                                      other_domain: dict[str, Any]) -> None:
    owner = keystone.persona("member")
    reader = keystone.persona("member")
    stranger = persona_in(keystone, other_domain["id"])
    own = owner.swift()
    name = own.container()
    own.put(f"{name}/o", b"x")
    by_name = f"{reader.project['name']}:{reader.user['name']}"
    own.ok("POST", name, 204, headers={"X-Container-Read": by_name})
    assert reader.swift(owner.account).get(f"{name}/o").status_code == 200
    own.ok("POST", name, 204, headers={
        "X-Container-Read": f"{stranger.project['name']}:{stranger.user['name']}"})
    assert stranger.swift(owner.account).get(f"{name}/o").status_code == 403
    own.ok("POST", name, 204, headers={
        "X-Container-Read": f"{stranger.project_id}:{stranger.user_id}"})
    assert stranger.swift(owner.account).get(f"{name}/o").status_code == 200
    # an account of a project in another domain: names never match there
    theirs = stranger.swift()
    other = theirs.container()
    theirs.put(f"{other}/o", b"y")
    theirs.ok("POST", other, 204, headers={"X-Container-Read": by_name})
    assert reader.swift(stranger.account).get(f"{other}/o").status_code == 403
    theirs.ok("POST", other, 204, headers={
        "X-Container-Read": f"{reader.project_id}:{reader.user_id}"})
    assert reader.swift(stranger.account).get(f"{other}/o").status_code == 200


def test_empty_account_acl_is_not_shown(keystone: Keystone) -> None:
    own = keystone.persona("member").swift()
    own.ok("POST", "", 204, headers={"X-Account-Access-Control": "{}"})
    assert "x-account-access-control" not in own.request("GET").headers
    assert own.request("POST", "", headers={"X-Account-Access-Control": "yuck"}
                       ).status_code == 400
    assert "x-account-access-control" not in own.request("HEAD").headers
