"""proxy.auth: keystoneauth's decisions (owners per reseller prefix, service tokens, names
in ACLs across domains, the project domain an account records), with a fake validator."""

from __future__ import annotations

import asyncio
import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from pocketstack.config import ObjectStoreSettings, ResellerPrefixSettings
from pocketstack.identity.middleware import AuthContext, InvalidToken
from pocketstack.objectstore.exceptions import HTTPForbidden, HTTPUnauthorized
from pocketstack.objectstore.proxy.auth import (
    OWNER,
    PROJECT_DOMAIN_META,
    KeystoneAuth,
    account_prefix,
    matches_project,
    project_domain_meta,
    remember_account,
    reseller_prefixes,
)
from pocketstack.objectstore.proxy.request import Request
from pocketstack.objectstore.storage.types import AccountInfo
from pocketstack.objectstore.timestamp import Timestamp

SETTINGS = ObjectStoreSettings()


def user(project: str = "p1", *roles: str, domain: str = "default", name: str = "alice",
         project_name: str = "proj") -> AuthContext:
    return AuthContext(
        token_id="t", user_id=f"u-{name}", user_name=name, user_domain_id=domain,
        user_domain_name=domain, project_id=project, project_name=project_name,
        project_domain_id=domain, project_domain_name=domain, domain_id=None, system=False,
        roles=frozenset(roles or ("member",)),
        expires_at=datetime.datetime.now(datetime.UTC))


class Tokens:
    """A validator that knows a few tokens."""

    def __init__(self, **tokens: AuthContext) -> None:
        self.tokens = tokens

    async def validate(self, token: str) -> AuthContext:
        if token not in self.tokens:
            raise InvalidToken(token)
        return self.tokens[token]


def account_info(metadata: dict[str, str] | None = None) -> AccountInfo:
    ts = Timestamp(1)
    return AccountInfo("AUTH_x", ts, ts, Timestamp(0), ts, False, 0, 0, 0, "id", False,
                       metadata or {})


def request(path: str, method: str = "GET", **headers: str) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(k.lower().replace("_", "-").encode(),
                                               v.encode()) for k, v in headers.items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}
    return Request.from_scope(scope, receive)


def decide(auth: KeystoneAuth, req: Request, info: AccountInfo | None = None,
           **state: str) -> str:
    """'owner', 'allowed', or the error's status."""
    async def run() -> str:
        await auth.authenticate(req)
        remember_account(req, info or account_info())
        req.state.update(state)
        try:
            await auth.authorize(req)
        except (HTTPForbidden, HTTPUnauthorized) as exc:
            return str(exc.status)
        return "owner" if req.state.get(OWNER) else "allowed"
    return asyncio.run(run())


@pytest.fixture
def auth() -> KeystoneAuth:
    tokens = Tokens(alice=user("p1"), service=user("svc", "service", name="glance"),
                    reader=user("p1", "reader"), admin=user("p9", "ResellerAdmin"),
                    bob=user("p2", name="bob", project_name="other"),
                    far=user("p3", domain="d2", name="bob", project_name="other"))
    return KeystoneAuth(SimpleNamespace(settings=SETTINGS, validator=tokens))  # type: ignore[arg-type]


def test_prefixes() -> None:
    assert reseller_prefixes(SETTINGS) == {"AUTH_": (), "SERVICE_": ("service",)}
    assert account_prefix(SETTINGS, "SERVICE_p") == "SERVICE_"
    assert account_prefix(SETTINGS, "OTHER_p") is None
    assert matches_project(SETTINGS, "SERVICE_p1", "p1")
    assert not matches_project(SETTINGS, "AUTH_p1", "p2")
    custom = ObjectStoreSettings(reseller_prefix="KEY_", reseller_prefixes=[
        ResellerPrefixSettings(prefix="", service_roles=["x"])])
    assert reseller_prefixes(custom) == {"KEY_": (), "": ("x",)}
    assert account_prefix(custom, "KEY_a") == "KEY_"
    assert account_prefix(custom, "anything") == ""


def test_owners_per_prefix(auth: KeystoneAuth) -> None:
    assert decide(auth, request("/v1/AUTH_p1/c", X_Auth_Token="alice")) == "owner"
    assert decide(auth, request("/v1/SERVICE_p1/c", X_Auth_Token="alice")) == "403"
    assert decide(auth, request("/v1/SERVICE_p1/c", X_Auth_Token="alice",
                                X_Service_Token="service")) == "owner"
    assert decide(auth, request("/v1/SERVICE_p1/c", X_Auth_Token="alice",
                                X_Service_Token="bob")) == "403"  # no service role
    assert decide(auth, request("/v1/SERVICE_p1/c", X_Auth_Token="service",
                                X_Service_Token="service")) == "403"  # not p1's user
    assert decide(auth, request("/v1/AUTH_p1/c", X_Auth_Token="reader")) == "403"
    assert decide(auth, request("/v1/SERVICE_p1/c", X_Auth_Token="admin")) == "owner"
    assert decide(auth, request("/v1/OTHER_p1/c", X_Auth_Token="admin")) == "owner"


def test_invalid_service_token_is_anonymous(auth: KeystoneAuth) -> None:
    assert decide(auth, request("/v1/AUTH_p1/c", X_Auth_Token="alice",
                                X_Service_Token="bogus")) == "401"
    assert decide(auth, request("/v1/AUTH_p1/c", X_Auth_Token="bogus")) == "401"


def test_anonymous_outside_every_prefix(auth: KeystoneAuth) -> None:
    public = {"read_acl": ".r:*"}
    assert decide(auth, request("/v1/AUTH_p1/c/o"), **public) == "allowed"
    assert decide(auth, request("/v1/OTHER_p1/c/o"), **public) == "401"


def test_names_in_acls_only_in_the_default_domain(auth: KeystoneAuth) -> None:
    by_name = {"read_acl": "other:bob"}
    assert decide(auth, request("/v1/AUTH_p1/c/o", X_Auth_Token="bob"), **by_name) == "allowed"
    assert decide(auth, request("/v1/AUTH_p1/c/o", X_Auth_Token="far"), **by_name) == "403"
    by_id = {"read_acl": "p3:u-bob"}
    assert decide(auth, request("/v1/AUTH_p1/c/o", X_Auth_Token="far"), **by_id) == "allowed"
    elsewhere = account_info({PROJECT_DOMAIN_META: "d2"})
    assert decide(auth, request("/v1/AUTH_p1/c/o", X_Auth_Token="bob"), elsewhere,
                  **by_name) == "403"
    legacy = account_info()  # no domain recorded: names still match
    assert decide(auth, request("/v1/AUTH_p1/c/o", X_Auth_Token="bob"), legacy,
                  **by_name) == "allowed"


def test_project_domain_meta() -> None:
    own = request("/v1/AUTH_p3", "POST")
    own.auth = user("p3", domain="d2")
    assert project_domain_meta(SETTINGS, own, None) == {PROJECT_DOMAIN_META: "d2"}
    assert project_domain_meta(SETTINGS, own, account_info()) == {}  # not the default
    other = request("/v1/AUTH_p3", "POST")
    other.auth = user("p9", "ResellerAdmin")
    assert project_domain_meta(SETTINGS, other, None) == {PROJECT_DOMAIN_META: "_unknown"}
    unknown = account_info({PROJECT_DOMAIN_META: "_unknown"})
    assert project_domain_meta(SETTINGS, own, unknown) == {PROJECT_DOMAIN_META: "d2"}
    assert project_domain_meta(SETTINGS, other, unknown) == {}
    legacy = request("/v1/AUTH_p1", "POST")
    legacy.auth = user("p1")
    assert project_domain_meta(SETTINGS, legacy, account_info()) == \
        {PROJECT_DOMAIN_META: "default"}
    anonymous = request("/v1/AUTH_p1", "POST")
    assert project_domain_meta(SETTINGS, anonymous, None) == {}
