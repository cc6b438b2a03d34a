"""Keystone authentication and Swift authorization (Swift's keystoneauth semantics).

``authenticate`` runs first for every request: it turns ``X-Auth-Token`` (or
``X-Storage-Token``) into an ``AuthContext`` with identity's middleware and attaches the
deferred ``authorize`` step. Controllers call ``authorize`` once they know the account's
and container's ACLs, as Swift's controllers call ``swift.authorize``:

1. a reseller admin (role ``ResellerAdmin``) owns every account;
2. a user with an operator role (``admin``, ``member``) on project P owns ``AUTH_<P>``;
3. otherwise the account ACL (``X-Account-Access-Control``: read-only, read-write, admin)
   and then the container ACLs (``X-Container-Read`` / ``-Write``: referrers, projects,
   users, roles) decide;
4. else 403 for a known user and 401 for an anonymous one.
"""

from __future__ import annotations

from pocketstack.identity.middleware import AuthContext, InvalidToken
from pocketstack.objectstore.exceptions import HTTPForbidden, HTTPUnauthorized
from pocketstack.objectstore.proxy import acl
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.request import Request

OWNER = "swift_owner"
ACCOUNT_ACL_META = "X-Account-Sysmeta-Core-Access-Control"
READ_METHODS = frozenset({"GET", "HEAD"})


class KeystoneAuth:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    async def authenticate(self, req: Request) -> None:
        token = req.headers.get("x-auth-token") or req.headers.get("x-storage-token")
        if token:
            try:
                req.auth = await self.ctx.validator.validate(token)
            except InvalidToken:
                req.state["invalid_token"] = True
        service_token = req.headers.get("x-service-token")
        if service_token:
            try:
                req.service_auth = await self.ctx.validator.validate(service_token)
            except InvalidToken:
                req.state["invalid_token"] = True
        if req.auth is not None and not req.auth.allows("object-store", req.method, req.path):
            raise HTTPUnauthorized()  # an application credential's access rules refuse it
        req.authorize = self.authorize

    async def authorize(self, req: Request) -> None:
        """Raise 401/403 unless the caller may do ``req`` (ACLs in ``req.state``)."""
        if self._is_owner(req):
            req.state[OWNER] = True
            return
        level = self._account_level(req)
        if level == "admin":
            req.state[OWNER] = True
            return
        if acl.account_level_allows(level, method=req.method, is_account=req.container is None):
            return
        if self._container_acl_allows(req):
            return
        raise HTTPForbidden() if req.auth is not None else HTTPUnauthorized()

    def _is_owner(self, req: Request) -> bool:
        auth = req.auth
        account = req.account or ""
        settings = self.ctx.settings
        if auth is None or not account.startswith(settings.reseller_prefix):
            return False
        if auth.has_role(settings.reseller_admin_role):
            return True
        owned = f"{settings.reseller_prefix}{auth.project_id}" == account
        return owned and auth.has_role(*settings.operator_roles)

    def _account_level(self, req: Request) -> acl.AccessLevel | None:
        if req.auth is None or req.auth.project_id is None:
            return None
        parsed = acl.load_account_acl(req.state.get("account_acl") or None)
        return acl.account_access_level(parsed, identity_of(req.auth))

    def _container_acl_allows(self, req: Request) -> bool:
        if req.container is None:
            return False
        if req.obj is None and req.method not in READ_METHODS:
            return False  # ACLs never grant container PUT/POST/DELETE
        acls = acl.ContainerAcls.from_headers(req.state.get("read_acl") or None,
                                              req.state.get("write_acl") or None)
        identity = identity_of(req.auth) if req.auth is not None else None
        prefix = self.ctx.settings.reseller_prefix
        account = req.account or ""
        project = account[len(prefix):] if account.startswith(prefix) else None
        return acl.authorize_container(acls, identity, method=req.method,
                                       is_object=req.obj is not None,
                                       referrer=req.headers.get("referer"),
                                       account_project_id=project)


def identity_of(auth: AuthContext) -> acl.Identity | None:
    if auth.project_id is None:
        return None
    return acl.Identity(user_id=auth.user_id, user_name=auth.user_name,
                        project_id=auth.project_id, project_name=auth.project_name,
                        roles=frozenset(auth.roles))


def is_owner(req: Request) -> bool:
    return bool(req.state.get(OWNER))
