"""The users Swift's functional tests log in as, created through the identity API, and the
``test.conf`` that names them.

``test/functional/__init__.py`` knows six users (``swift_test_user[0..5]``); the table in
``test/functional/test_access_control.py`` says what each must be. With keystone v3 auth
(``auth_version = 3``), per slot ``k``::

    no. project@domain        user      role           used for
    1   test@Default          tester    member         owner of the primary account
    2   test2@Default         tester2   member         owner of a second account
    3   test@Default          tester3   _member_       same project, no operator role
    4   test4@test-domain     tester4   member         account in a non-default domain
    5   test5@Default         tester5   service        X-Service-Token (service_prefix)
    6   test@Default          tester6   ResellerAdmin  reaches every account

Slot 0 uses exactly these names (test_access_control's scenarios name users literally:
``'tester3'``, ``'test:tester2'``), so it must run that module; slot ``k > 0`` appends
``-s<k>`` to every project and user so that slots never share an account
(``tearDownModule`` deletes every container of the primary account).

``member`` is one of pocketstack's operator roles (``objectstore.operator_roles``); the
others are created if missing. ``_member_`` is what the suite's table gives tester3: a role
that grants nothing in object storage (``reader`` could become a Swift project-reader role).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from tests.conformance.errors import HarnessError

DEFAULT_DOMAIN = "Default"
OTHER_DOMAIN = "test-domain"
SERVICE_PREFIX = "SERVICE"
OPERATOR_ROLE = "member"
NO_ACCESS_ROLE = "_member_"
SERVICE_ROLE = "service"
RESELLER_ADMIN_ROLE = "ResellerAdmin"


@dataclass(frozen=True)
class TestUser:
    number: int  # 1..6, as in test.conf's username, username2 ... username6
    project: str
    name: str
    password: str
    domain: str
    role: str

    __test__ = False  # not a pytest test class


def slot_users(slot: int) -> list[TestUser]:
    """The six users of one slot (see the module docstring)."""
    sfx = f"-s{slot}" if slot else ""
    return [
        TestUser(1, f"test{sfx}", f"tester{sfx}", "testing", DEFAULT_DOMAIN, OPERATOR_ROLE),
        TestUser(2, f"test2{sfx}", f"tester2{sfx}", "testing2", DEFAULT_DOMAIN, OPERATOR_ROLE),
        TestUser(3, f"test{sfx}", f"tester3{sfx}", "testing3", DEFAULT_DOMAIN, NO_ACCESS_ROLE),
        TestUser(4, f"test4{sfx}", f"tester4{sfx}", "testing4", OTHER_DOMAIN, OPERATOR_ROLE),
        TestUser(5, f"test5{sfx}", f"tester5{sfx}", "testing5", DEFAULT_DOMAIN, SERVICE_ROLE),
        TestUser(6, f"test{sfx}", f"tester6{sfx}", "testing6", DEFAULT_DOMAIN,
                 RESELLER_ADMIN_ROLE),
    ]


def render_test_conf(users: list[TestUser], *, auth_version: str, identity_url: str,
                     objectstore_url: str) -> str:
    """Swift's ``test.conf`` (format of the sdist's test/sample.conf) for ``users``."""
    by_number = {u.number: u for u in users}
    auth_uri = (f"{identity_url}/v3/" if auth_version == "3"
                else f"{objectstore_url}/auth/v1.0")
    lines = ["[func_test]", f"auth_version = {auth_version}", f"auth_uri = {auth_uri}"]
    for number, user in sorted(by_number.items()):
        n = "" if number == 1 else str(number)
        if number != 3:  # user 3 shares user 1's account: there is no 'account3'
            lines.append(f"account{n} = {user.project}")
        lines += [f"username{n} = {user.name}", f"password{n} = {user.password}",
                  f"domain{n} = {user.domain}"]
    lines += [f"service_prefix = {SERVICE_PREFIX}", "collate = C", "insecure = no",
              "storage_domain =", "", "[swift-constraints]",
              "# empty: the suite takes the constraints from GET /info", ""]
    return "\n".join(lines)


class Keystone:
    """Just the identity calls provisioning needs, as the admin of clouds.yaml."""

    def __init__(self, auth_url: str, admin: dict[str, Any]) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.http = httpx.Client(base_url=self.auth_url, timeout=30)
        token = self.token(admin["username"], admin["password"], admin["project_name"],
                           user_domain=admin.get("user_domain_name", DEFAULT_DOMAIN),
                           project_domain=admin.get("project_domain_name", DEFAULT_DOMAIN))
        self.http.headers["X-Auth-Token"] = token

    def close(self) -> None:
        self.http.close()

    def login(self, user: str, password: str, project: str, *, user_domain: str,
              project_domain: str) -> httpx.Response:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": user_domain}}}},
            "scope": {"project": {"name": project, "domain": {"name": project_domain}}}}}
        return httpx.post(f"{self.auth_url}/auth/tokens", json=body, timeout=30)

    def token(self, user: str, password: str, project: str, *, user_domain: str,
              project_domain: str) -> str:
        response = self.login(user, password, project, user_domain=user_domain,
                              project_domain=project_domain)
        if response.status_code != 201:
            raise HarnessError(f"identity: {user}@{user_domain} cannot log in to "
                               f"{project}@{project_domain}: {response.status_code}",
                               detail=response.text[:2000])
        return response.headers["X-Subject-Token"]

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400 and response.status_code != 409:
            raise HarnessError(f"identity: {method} {path} → {response.status_code}",
                               detail=response.text[:2000])
        return response

    def find(self, collection: str, name: str, **query: str) -> str | None:
        items = self._call("GET", f"/{collection}", params={"name": name, **query}).json()
        matches = [item["id"] for item in items[collection] if item.get("name") == name]
        return matches[0] if matches else None

    def find_or_create(self, collection: str, body: dict[str, Any], **query: str) -> str:
        """The id of the ``collection`` entry named ``body['name']``, created if missing."""
        found = self.find(collection, body["name"], **query)
        if found:
            return found
        member = collection.rstrip("s")
        response = self._call("POST", f"/{collection}", json={member: body})
        if response.status_code == 409:  # created meanwhile
            found = self.find(collection, body["name"], **query)
            if found:
                return found
            raise HarnessError(f"identity: {member} {body['name']!r} conflicts but is not "
                               "listed", detail=response.text[:2000])
        return str(response.json()[member]["id"])

    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        self._call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")


def provision(keystone: Keystone, users: Iterable[TestUser]) -> None:
    """Create the domains, roles, projects and users of ``users`` and their role grants."""
    domains: dict[str, str] = {}
    roles: dict[str, str] = {}
    projects: dict[tuple[str, str], str] = {}
    for user in users:
        if user.domain not in domains:
            domains[user.domain] = keystone.find_or_create("domains", {"name": user.domain})
        domain_id = domains[user.domain]
        if user.role not in roles:
            roles[user.role] = keystone.find_or_create("roles", {"name": user.role})
        key = (user.domain, user.project)
        if key not in projects:
            projects[key] = keystone.find_or_create(
                "projects", {"name": user.project, "domain_id": domain_id},
                domain_id=domain_id)
        user_id = keystone.find_or_create(
            "users", {"name": user.name, "password": user.password, "domain_id": domain_id,
                      "default_project_id": projects[key]}, domain_id=domain_id)
        keystone.grant(projects[key], user_id, roles[user.role])


def storage_url(keystone: Keystone, user: TestUser) -> tuple[str, str]:
    """Log ``user`` in as the suite will; (object-store public URL, token) from the catalog."""
    response = keystone.login(user.name, user.password, user.project,
                              user_domain=user.domain, project_domain=user.domain)
    if response.status_code != 201:
        raise HarnessError(f"test user {user.name} cannot log in to {user.project}: "
                           f"{response.status_code}", detail=response.text[:2000])
    catalog = response.json()["token"].get("catalog", [])
    for service in catalog:
        if service.get("type") == "object-store":
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") == "public":
                    return endpoint["url"], response.headers["X-Subject-Token"]
    raise HarnessError(f"no public object-store endpoint in {user.name}'s catalog",
                       detail=str(catalog)[:2000])
