"""Who reaches which account: owners, other projects, container and account ACLs, public
containers, reseller admins, and the v1.0 auth endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Keystone, Persona, Swift, uniq


@dataclass
class Shared:
    """Project A's account with one container and object, and a user of project B."""

    a: Persona
    b: Persona
    container: str

    @property
    def obj(self) -> str:
        return f"{self.container}/obj"

    def as_b(self) -> Swift:
        return self.b.swift(self.a.account)

    def anonymous(self) -> Swift:
        return Swift(self.a.cloud.objectstore_url, self.a.account, None)

    def acl(self, **headers: str) -> None:
        self.a.swift().ok("POST", self.container, 204, headers=headers)


@pytest.fixture
def shared(keystone: Keystone) -> Shared:
    a, b = keystone.persona("member"), keystone.persona("member")
    own = a.swift()
    name = own.container()
    own.put(f"{name}/obj", b"secret", **{"X-Object-Meta-Kind": "private"})
    return Shared(a, b, name)


def statuses(client: Swift, *requests: tuple[str, str]) -> list[int]:
    return [client.request(method, path, content=b"x" if method == "PUT" and "/" in path
                           else None).status_code for method, path in requests]


EVERYTHING = [("HEAD", ""), ("GET", ""), ("POST", ""), ("HEAD", "{c}"), ("GET", "{c}"),
              ("PUT", "{c}"), ("POST", "{c}"), ("DELETE", "{c}"), ("PUT", "new-{c}"),
              ("HEAD", "{c}/obj"), ("GET", "{c}/obj"), ("PUT", "{c}/obj"),
              ("POST", "{c}/obj"), ("DELETE", "{c}/obj"), ("PUT", "{c}/other")]


def everything(shared: Shared) -> list[tuple[str, str]]:
    return [(m, p.format(c=shared.container)) for m, p in EVERYTHING]


# -- isolation ---------------------------------------------------------------------------------
def test_other_project_gets_403_everywhere(shared: Shared) -> None:
    assert statuses(shared.as_b(), *everything(shared)) == [403] * len(EVERYTHING)
    assert shared.a.swift().get(shared.obj).content == b"secret"  # nothing changed


def test_a_container_listing_is_authorized_before_anything_else_is_said(
        shared: Shared) -> None:
    """The proxy reads the page first (as Swift's does), but a client without access hears
    403 for what the storage would say: not 404 for a missing container, not 412 for bad
    parameters, which only the owner hears. An unacceptable Accept is 406 to anyone,
    anonymous clients included, as Swift's listing_formats answers it before auth (and
    before staticweb, which authorizes an anonymous listing itself)."""
    other, owner, anonymous = shared.as_b(), shared.a.swift(), shared.anonymous()
    asks = [({}, shared.container), ({}, "missing"), ({"limit": "100000"}, shared.container),
            ({"limit": "100000"}, "missing"), ({"format": "bogus"}, shared.container)]
    accept = {"Accept": "nothing/at-all"}
    for params, container in asks:
        assert other.request("GET", container, params=params).status_code == 403
    for method in ("GET", "HEAD"):
        assert other.request(method, shared.container, headers=accept).status_code == 406
        assert anonymous.request(method, shared.container, headers=accept).status_code == 406
        assert anonymous.request(method, headers=accept).status_code == 406
        assert anonymous.request(method, shared.container).status_code == 401
    assert [owner.request("GET", container, params=params).status_code
            for params, container in asks] == [200, 404, 412, 404, 200]
    assert owner.request("GET", shared.container, headers=accept).status_code == 406
    assert owner.listing(shared.container)[0]["name"] == "obj"


def test_an_account_listing_is_authorized_before_anything_else_is_said(
        shared: Shared) -> None:
    """As for containers: the page is read first, but only the owner hears about bad
    parameters; the listing and its headers come from that one read; an unacceptable
    Accept is 406 to anyone."""
    other, owner = shared.as_b(), shared.a.swift()
    accept = {"Accept": "nothing/at-all"}
    assert other.request("GET", params={"limit": "100000"}).status_code == 403
    assert other.request("GET", headers=accept).status_code == 406
    assert other.request("HEAD", headers=accept).status_code == 406
    assert other.request("GET").status_code == 403
    assert owner.request("GET", params={"limit": "100000"}).status_code == 412
    assert owner.request("GET", headers=accept).status_code == 406
    page = owner.request("GET", params={"format": "json"})
    assert page.status_code == 200 and [c["name"] for c in page.json()] == [shared.container]
    assert page.headers["x-account-container-count"] == "1"


def test_anonymous_and_bad_tokens_get_401(shared: Shared) -> None:
    anonymous = shared.anonymous()
    assert statuses(anonymous, *everything(shared)) == [401] * len(EVERYTHING)
    bogus = Swift(shared.a.cloud.objectstore_url, shared.a.account, "not-a-token")
    response = bogus.request("GET", shared.obj)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Swift realm=")


def test_owner_cannot_reach_into_unowned_fresh_account(shared: Shared, keystone: Keystone
                                                       ) -> None:
    other = keystone.create("projects", "project", name=uniq("prj"), domain_id="default")
    stranger = shared.a.swift(f"AUTH_{other['id']}")
    assert stranger.request("HEAD").status_code == 403
    assert stranger.request("PUT", "c").status_code == 403


def test_reader_role_is_not_an_owner(keystone: Keystone, shared: Shared) -> None:
    reader = keystone.persona("reader", project=shared.a.project)
    as_reader = reader.swift()
    assert as_reader.request("GET", shared.obj).status_code == 403
    shared.acl(**{"X-Container-Read": "reader"})  # a role ACL: users scoped to A only
    assert as_reader.get(shared.obj).content == b"secret"
    assert as_reader.request("GET", shared.container).status_code == 200
    assert as_reader.request("PUT", f"{shared.container}/x", content=b"").status_code == 403
    assert shared.as_b().request("GET", shared.obj).status_code == 403


# -- container ACLs ----------------------------------------------------------------------------
def test_read_acl_for_a_project(shared: Shared) -> None:
    shared.acl(**{"X-Container-Read": f"{shared.b.project_id}:*"})
    as_b = shared.as_b()
    response = as_b.get(shared.obj)
    assert response.status_code == 200 and response.content == b"secret"
    assert as_b.request("HEAD", shared.obj).headers["x-object-meta-kind"] == "private"
    assert as_b.names(shared.container) == ["obj"]
    head = as_b.request("HEAD", shared.container)
    assert head.status_code == 204
    assert "x-container-read" not in head.headers  # ACLs are for owners' eyes only
    assert shared.a.swift().request("HEAD", shared.container).headers["x-container-read"] == \
        f"{shared.b.project_id}:*"
    assert statuses(as_b, ("PUT", f"{shared.container}/new"), ("DELETE", shared.obj),
                    ("POST", shared.obj), ("POST", shared.container),
                    ("DELETE", shared.container), ("GET", "")) == [403] * 6


def test_read_acl_for_one_user(shared: Shared, keystone: Keystone) -> None:
    shared.acl(**{"X-Container-Read": f"{shared.b.project_id}:{shared.b.user_id}"})
    assert shared.as_b().get(shared.obj).status_code == 200
    colleague = keystone.persona("member", project=shared.b.project)
    assert colleague.swift(shared.a.account).get(shared.obj).status_code == 403
    shared.acl(**{"X-Container-Read": f"*:{colleague.user_id}"})
    assert colleague.swift(shared.a.account).get(shared.obj).status_code == 200
    assert shared.as_b().get(shared.obj).status_code == 403


def test_write_acl(shared: Shared) -> None:
    shared.acl(**{"X-Container-Write": f"{shared.b.project_id}:*"})
    as_b = shared.as_b()
    assert as_b.request("PUT", f"{shared.container}/from-b", content=b"hi").status_code == 201
    assert as_b.request("POST", shared.obj, headers={"X-Object-Meta-B": "1"}
                        ).status_code == 202
    assert as_b.request("GET", shared.obj).status_code == 403  # write is not read
    assert as_b.request("GET", shared.container).status_code == 403
    assert as_b.request("POST", shared.container).status_code == 403
    assert as_b.request("DELETE", shared.obj).status_code == 204
    assert shared.a.swift().names(shared.container) == ["from-b"]


def test_public_container_needs_rlistings_to_list(shared: Shared) -> None:
    anonymous = shared.anonymous()
    shared.acl(**{"X-Container-Read": ".r:*"})
    response = anonymous.get(shared.obj)
    assert response.status_code == 200 and response.content == b"secret"
    assert anonymous.request("HEAD", shared.obj).status_code == 200
    assert anonymous.request("GET", shared.container).status_code == 401
    assert anonymous.request("PUT", f"{shared.container}/x", content=b"").status_code == 401
    assert anonymous.request("DELETE", shared.obj).status_code == 401
    assert anonymous.request("GET", "").status_code == 401
    shared.acl(**{"X-Container-Read": ".r:*,.rlistings"})
    listing = anonymous.request("GET", shared.container)
    assert listing.status_code == 200 and listing.text == "obj\n"
    assert anonymous.request("HEAD", shared.container).status_code == 204
    # other projects' users get the public grants too
    assert shared.as_b().get(shared.obj).status_code == 200


def test_referrer_acl(shared: Shared) -> None:
    shared.acl(**{"X-Container-Read": ".r:.example.com,.r:-bad.example.com"})
    anonymous = shared.anonymous()
    assert anonymous.get(shared.obj, Referer="http://www.example.com/x").status_code == 200
    assert anonymous.get(shared.obj, Referer="http://bad.example.com/").status_code == 401
    assert anonymous.get(shared.obj, Referer="http://example.org/").status_code == 401
    assert anonymous.get(shared.obj).status_code == 401


def test_bad_container_acls_are_400(shared: Shared) -> None:
    own = shared.a.swift()
    response = own.request("POST", shared.container, headers={"X-Container-Write": ".r:*"})
    assert response.status_code == 400
    response = own.request("POST", shared.container, headers={"X-Container-Read": ".r:"})
    assert response.status_code == 400
    response = own.request("PUT", uniq(), headers={"X-Container-Read": ".bogus:x"})
    assert response.status_code == 400


# -- account ACLs ------------------------------------------------------------------------------
def grant(shared: Shared, level: str) -> None:
    acl = json.dumps({level: [f"{shared.b.project_id}:{shared.b.user_id}"]})
    shared.a.swift().ok("POST", "", 204, headers={"X-Account-Access-Control": acl})


def test_account_acl_read_only(shared: Shared) -> None:
    grant(shared, "read-only")
    as_b = shared.as_b()
    assert as_b.request("HEAD").status_code == 204
    assert shared.container in as_b.names()
    assert as_b.names(shared.container) == ["obj"]
    assert as_b.get(shared.obj).content == b"secret"
    assert "x-account-access-control" not in as_b.request("HEAD").headers
    assert statuses(as_b, ("PUT", f"{shared.container}/x"), ("PUT", uniq()),
                    ("POST", shared.container), ("DELETE", shared.obj),
                    ("POST", "")) == [403] * 5


def test_account_acl_read_write(shared: Shared) -> None:
    grant(shared, "read-write")
    as_b = shared.as_b()
    assert as_b.request("PUT", f"{shared.container}/x", content=b"b").status_code == 201
    created = uniq()
    assert as_b.request("PUT", created).status_code == 201
    assert as_b.request("POST", created, headers={"X-Container-Meta-A": "1"}
                        ).status_code == 204
    assert as_b.request("DELETE", created).status_code == 204
    assert as_b.get(shared.obj).content == b"secret"
    assert as_b.request("POST", "", headers={"X-Account-Meta-X": "1"}).status_code == 403
    acl = json.dumps({"admin": [shared.b.project_id]})
    assert as_b.request("POST", "", headers={"X-Account-Access-Control": acl}
                        ).status_code == 403


def test_account_acl_admin(shared: Shared) -> None:
    grant(shared, "admin")
    as_b = shared.as_b()
    assert as_b.request("POST", "", headers={"X-Account-Meta-By": "b"}).status_code == 204
    head = as_b.request("HEAD")
    assert head.headers["x-account-meta-by"] == "b"
    assert "x-account-access-control" in head.headers
    assert as_b.request("DELETE", shared.obj).status_code == 204
    # an admin may hand the account to someone else, or take the grant back
    as_b.ok("POST", "", 204, headers={"X-Account-Access-Control": "{}"})
    assert as_b.request("HEAD").status_code == 403


def test_account_acl_validation_and_visibility(shared: Shared) -> None:
    own = shared.a.swift()
    bad = own.request("POST", "", headers={"X-Account-Access-Control": "not json"})
    assert bad.status_code == 400
    bad = own.request("POST", "", headers={"X-Account-Access-Control": '{"owner": ["x"]}'})
    assert bad.status_code == 400
    own.ok("POST", "", 204, headers={"X-Account-Access-Control":
                                     '{"read-only": ["p:u"], "admin": []}'})
    assert own.request("HEAD").headers["x-account-access-control"] == \
        '{"admin":[],"read-only":["p:u"]}'


# -- reseller admin and v1.0 auth --------------------------------------------------------------
def test_reseller_admin_reaches_every_account(keystone: Keystone, shared: Shared) -> None:
    reseller = keystone.persona("ResellerAdmin")
    as_reseller = reseller.swift(shared.a.account)
    assert as_reseller.get(shared.obj).content == b"secret"
    assert as_reseller.request("PUT", f"{shared.container}/r", content=b"r").status_code == 201
    assert as_reseller.request("POST", "", headers={"X-Account-Meta-R": "1"}
                               ).status_code == 204
    assert "x-account-meta-r" in shared.a.swift().request("HEAD").headers


def test_v1_auth_returns_storage_url_and_token(cloud: RunningCloud, shared: Shared) -> None:
    user = f"{shared.a.project['name']}:{shared.a.user['name']}"
    response = httpx.get(f"{cloud.objectstore_url}/auth/v1.0",
                         headers={"X-Auth-User": user, "X-Auth-Key": shared.a.password})
    assert response.status_code == 200, response.text
    url = response.headers["x-storage-url"]
    assert url == shared.a.storage_url
    token = response.headers["x-auth-token"]
    assert response.headers["x-storage-token"] == token
    assert int(response.headers["x-auth-token-expires"]) > 0
    got = httpx.get(f"{url}/{shared.obj}", headers={"X-Auth-Token": token})
    assert got.status_code == 200 and got.content == b"secret"
    for headers in ({"X-Auth-User": user, "X-Auth-Key": "wrong"},
                    {"X-Auth-User": shared.a.user["name"], "X-Auth-Key": shared.a.password},
                    {}):
        refused = httpx.get(f"{cloud.objectstore_url}/auth/v1.0", headers=headers)
        assert refused.status_code == 401


def test_v1_auth_with_swift_cli(cloud: RunningCloud, shared: Shared) -> None:
    env = {k: "" for k in cloud.env if k.startswith("OS_")}
    result = cloud.cli("swift", "-A", f"{cloud.objectstore_url}/auth/v1.0",
                       "-U", f"{shared.a.project['name']}:{shared.a.user['name']}",
                       "-K", shared.a.password, "-V", "1", "list", shared.container, env=env)
    assert result.stdout.split() == ["obj"]


def test_removing_an_acl_takes_access_back(shared: Shared) -> None:
    shared.acl(**{"X-Container-Read": f"{shared.b.project_id}:*"})
    assert shared.as_b().get(shared.obj).status_code == 200
    shared.acl(**{"X-Remove-Container-Read": "x"})
    assert shared.as_b().get(shared.obj).status_code == 403
    assert "x-container-read" not in shared.a.swift().request("HEAD", shared.container).headers
    shared.acl(**{"X-Container-Read": f"{shared.b.project_id}:*"})
    shared.acl(**{"X-Container-Read": ""})
    assert shared.as_b().get(shared.obj).status_code == 403


def test_cross_account_copy_needs_read_access(shared: Shared) -> None:
    own_b = shared.b.swift()
    target = own_b.container()
    copy_from = {"X-Copy-From": shared.obj, "X-Copy-From-Account": shared.a.account}
    assert own_b.request("PUT", f"{target}/stolen", headers=copy_from).status_code == 403
    shared.acl(**{"X-Container-Read": f"{shared.b.project_id}:*"})
    response = own_b.request("PUT", f"{target}/copied", headers=copy_from)
    assert response.status_code == 201, response.text
    assert response.headers["x-copied-from-account"] == shared.a.account
    assert own_b.get(f"{target}/copied").content == b"secret"
    # COPY into another account needs write access there
    response = shared.a.swift().request("COPY", shared.obj, headers={
        "Destination": f"{target}/pushed", "Destination-Account": shared.b.account})
    assert response.status_code == 403
    shared.b.swift().ok("POST", target, 204,
                        headers={"X-Container-Write": f"{shared.a.project_id}:*"})
    response = shared.a.swift().request("COPY", shared.obj, headers={
        "Destination": f"{target}/pushed", "Destination-Account": shared.b.account})
    assert response.status_code == 201, response.text
    assert own_b.get(f"{target}/pushed").content == b"secret"
