"""Keystone authentication and Swift authorization (Swift's keystoneauth semantics).

``authenticate`` runs first for every request: it turns ``X-Auth-Token`` (or
``X-Storage-Token``) and ``X-Service-Token`` into ``AuthContext``s with identity's
middleware and attaches the deferred ``authorize`` step. Controllers call ``authorize``
once they know the account's and container's ACLs (`remember_account` and the container's
``read_acl``/``write_acl`` in ``req.state``), as Swift's controllers call
``swift.authorize``:

1. a reseller admin (role ``ResellerAdmin``) owns every account;
2. a user with an operator role (``admin``, ``member``) on project P owns ``<prefix>P`` for
   every reseller prefix (``AUTH_``, ``SERVICE_``); a prefix with service roles also wants
   an ``X-Service-Token`` carrying one of them (keystoneauth's ``SERVICE_service_roles``):
   a service's data for a project is reached by the user and the service together;
3. otherwise the account ACL (``X-Account-Access-Control``: read-only, read-write, admin)
   and then the container ACLs (``X-Container-Read`` / ``-Write``: referrers, projects,
   users, roles) decide. Names (not ids) in ACLs match only when the user, its project and
   the account's project are all in the default domain (keystoneauth's
   ``_is_name_allowed_in_acl``);
4. else 403 for a known user and 401 for an anonymous one (also for an account outside
   every reseller prefix).

A request whose ``X-Service-Token`` is invalid is anonymous (keystoneauth: the identity is
not confirmed). The account remembers its project's domain in
``X-Account-Sysmeta-Project-Domain-Id`` (set on creation and on owner POSTs, see
`project_domain_meta`) and shows it as ``X-Account-Project-Domain-Id``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pocketstack.config import ObjectStoreSettings
from pocketstack.identity.middleware import AuthContext, InvalidToken
from pocketstack.objectstore.exceptions import HTTPForbidden, HTTPUnauthorized
from pocketstack.objectstore.proxy import acl
from pocketstack.objectstore.proxy.context import ProxyContext
from pocketstack.objectstore.proxy.request import Request
from pocketstack.objectstore.storage.types import AccountInfo

OWNER = "swift_owner"
ACCOUNT_ACL_META = "X-Account-Sysmeta-Core-Access-Control"
PROJECT_DOMAIN_META = "X-Account-Sysmeta-Project-Domain-Id"
PROJECT_DOMAIN_HEADER = "X-Account-Project-Domain-Id"
DEFAULT_DOMAIN_ID = "default"
UNKNOWN_DOMAIN_ID = "_unknown"  # keystoneauth's: an account made by someone else's token
READ_METHODS = frozenset({"GET", "HEAD"})


def reseller_prefixes(settings: ObjectStoreSettings) -> dict[str, tuple[str, ...]]:
    """prefix -> the service roles its accounts want; ``reseller_prefix`` always served."""
    prefixes: dict[str, tuple[str, ...]] = {settings.reseller_prefix: ()}
    for entry in settings.reseller_prefixes:
        prefixes[entry.prefix] = tuple(entry.service_roles)
    return prefixes


def account_prefix(settings: ObjectStoreSettings, account: str) -> str | None:
    """The reseller prefix ``account`` falls under (a non-empty one first), or None."""
    prefixes = reseller_prefixes(settings)
    for prefix in prefixes:
        if prefix and account.startswith(prefix):
            return prefix
    return "" if "" in prefixes else None


def matches_project(settings: ObjectStoreSettings, account: str, project_id: str | None
                    ) -> bool:
    """Is ``account`` one of ``project_id``'s accounts (under any prefix)?"""
    return project_id is not None and any(
        f"{prefix}{project_id}" == account for prefix in reseller_prefixes(settings))


def remember_account(req: Request, info: AccountInfo | None) -> None:
    """What authorization needs to know about the request's account."""
    metadata: Mapping[str, str] = info.metadata if info is not None else {}
    req.state["account_exists"] = info is not None
    req.state["account_acl"] = metadata.get(ACCOUNT_ACL_META, "")
    req.state["account_domain"] = metadata.get(PROJECT_DOMAIN_META)


class KeystoneAuth:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    async def authenticate(self, req: Request) -> None:
        token = req.headers.get("x-auth-token") or req.headers.get("x-storage-token")
        if token:
            req.auth = await self.identify(token)
        service_token = req.headers.get("x-service-token")
        if service_token:
            req.service_auth = await self.identify(service_token)
            if req.service_auth is None:
                req.auth = None  # an unconfirmed identity is anonymous
        if req.auth is not None and not req.auth.allows("object-store", req.method, req.path):
            raise HTTPUnauthorized()  # an application credential's access rules refuse it
        req.authorize = self.authorize

    async def identify(self, token: str) -> AuthContext | None:
        """The caller behind a token; None when it is not valid now."""
        try:
            return await self.ctx.validator.validate(token)
        except InvalidToken:
            return None

    async def authorize(self, req: Request) -> None:
        """Raise 401/403 unless the caller may do ``req`` (ACLs in ``req.state``)."""
        if req.auth is None:
            self._authorize_anonymous(req)
            return
        if self._is_owner(req, req.auth):
            req.state[OWNER] = True
            return
        names = self._names_allowed(req, req.auth)
        level = self._account_level(req, req.auth, names)
        if level == "admin":
            req.state[OWNER] = True
            return
        if acl.account_level_allows(level, method=req.method, is_account=req.container is None):
            return
        if self._container_acl_allows(req, names):
            return
        raise HTTPForbidden()

    def _authorize_anonymous(self, req: Request) -> None:
        if account_prefix(self.settings, req.account or "") is None:
            raise HTTPUnauthorized()  # not an account this auth system speaks for
        if not self._container_acl_allows(req, False):
            raise HTTPUnauthorized()

    def _is_owner(self, req: Request, auth: AuthContext) -> bool:
        return self.owns(auth, req.account or "", req.service_auth)

    def owns(self, auth: AuthContext, account: str, service_auth: AuthContext | None
             ) -> bool:
        """Reseller admin, or an operator of the account's project (with the service token
        the account's prefix asks for)."""
        if auth.has_role(self.settings.reseller_admin_role):
            return True
        if not matches_project(self.settings, account, auth.project_id):
            return False
        if not auth.has_role(*self.settings.operator_roles):
            return False
        prefix = account_prefix(self.settings, account)
        service_roles = reseller_prefixes(self.settings).get(prefix or "", ())
        if not service_roles:
            return True
        return service_auth is not None and service_auth.has_role(*service_roles)

    def _names_allowed(self, req: Request, auth: AuthContext) -> bool:
        """May ACL entries match this user by name? Only within the default domain."""
        if auth.user_domain_id and auth.user_domain_id != DEFAULT_DOMAIN_ID:
            return False
        if auth.project_domain_id and auth.project_domain_id != DEFAULT_DOMAIN_ID:
            return False
        if matches_project(self.settings, req.account or "", auth.project_id):
            return True
        return bool(req.state.get("account_exists")) and \
            req.state.get("account_domain") in (DEFAULT_DOMAIN_ID, None)

    def _account_level(self, req: Request, auth: AuthContext, names: bool
                       ) -> acl.AccessLevel | None:
        if auth.project_id is None:
            return None
        parsed = acl.load_account_acl(req.state.get("account_acl") or None)
        return acl.account_access_level(parsed, identity_of(auth), allow_names=names)

    def _container_acl_allows(self, req: Request, names: bool) -> bool:
        if req.container is None:
            return False
        if req.obj is None and req.method not in READ_METHODS:
            return False  # ACLs never grant container PUT/POST/DELETE
        acls = acl.ContainerAcls.from_headers(req.state.get("read_acl") or None,
                                              req.state.get("write_acl") or None)
        auth = req.auth
        identity = identity_of(auth) if auth is not None else None
        project = None  # role grants only count for the account's own project
        if auth is not None and matches_project(self.settings, req.account or "",
                                                auth.project_id):
            project = auth.project_id
        return acl.authorize_container(acls, identity, method=req.method,
                                       is_object=req.obj is not None,
                                       referrer=req.headers.get("referer"),
                                       account_project_id=project, allow_names=names)


def project_domain_meta(settings: ObjectStoreSettings, req: Request,
                        info: AccountInfo | None) -> dict[str, str]:
    """The account sysmeta an account POST or a container PUT (which may create the
    account) records about the project's domain (keystoneauth's ``_set_project_domain_id``):
    a new account gets the token's project domain when it is the token's own project
    (else ``_unknown``); an existing one without it learns the default domain, and an
    ``_unknown`` one the domain of its own project's token."""
    auth = req.auth
    if auth is None:
        return {}
    own = matches_project(settings, req.account or "", auth.project_id)
    token_domain = auth.project_domain_id if own else None
    stored = info.metadata.get(PROJECT_DOMAIN_META) if info is not None else None
    new: str | None = None
    if info is None:
        new = token_domain if own else UNKNOWN_DOMAIN_ID
    elif stored is None and token_domain == DEFAULT_DOMAIN_ID:
        new = token_domain
    elif stored == UNKNOWN_DOMAIN_ID and own:
        new = token_domain or ""
    return {PROJECT_DOMAIN_META: new} if new else {}


def identity_of(auth: AuthContext) -> acl.Identity | None:
    if auth.project_id is None:
        return None
    return acl.Identity(user_id=auth.user_id, user_name=auth.user_name,
                        project_id=auth.project_id, project_name=auth.project_name,
                        roles=frozenset(auth.roles))


def is_owner(req: Request) -> bool:
    return bool(req.state.get(OWNER))
