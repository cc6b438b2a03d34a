"""Identity's default policy: one rule per API operation, Keystone's personas.

Personas (credentials as built by the API's request context):

- *cloud admin*: ``admin`` on the system, or ``admin`` on the cloud's admin project (the
  bootstrap project; Keystone's ``admin_project_name``), which is how the ``openstack`` CLI
  with the bootstrap ``clouds.yaml`` entry acts. ``admin`` on any other project is only a
  project admin: it never reaches beyond its project.
- *cloud reader*: ``reader`` on the system or on the admin project (``admin`` implies it).
- *domain admin / reader*: ``admin`` / ``reader`` with a domain-scoped token, over that
  domain's projects, users and groups.
- *project admin / member / reader*: roles on one project, seeing that project only.
- *owner*: a user reads itself, manages its own credentials and application credentials.
  Changing one's own password (``POST /v3/users/{id}/password``) has no rule, as in
  Keystone: the original password is the proof, so it works even without a token.

An operator may override any rule from a YAML file (``[identity] policy_file``).
"""

from __future__ import annotations

CLOUD_ADMIN = "rule:cloud_admin"
CLOUD_READER = "rule:cloud_reader"


def _domain(role: str, path: str) -> str:
    return f"(role:{role} and domain_id:%({path})s)"


def _either(*rules: str) -> str:
    return " or ".join(rules)


BASE_RULES = {
    "cloud_admin": "role:admin and (system_scope:all or is_admin_project:True)",
    "cloud_reader": "role:reader and (system_scope:all or is_admin_project:True)",
    "service_role": "role:service",
    "token_subject": "user_id:%(target.token.user_id)s",
}


def _grant(role: str) -> str:
    """A domain admin/reader's grant rule (Keystone's): actor and target both in its domain."""
    actors = ("domain_id:%(target.user.domain_id)s", "domain_id:%(target.group.domain_id)s")
    targets = ("domain_id:%(target.project.domain_id)s", "domain_id:%(target.domain.id)s")
    return " or ".join(f"(role:{role} and {a} and {t})" for a in actors for t in targets)


def _member(role: str) -> str:
    """A domain admin/reader's group membership rule: group and user both in its domain."""
    return (f"(role:{role} and domain_id:%(target.group.domain_id)s and "
            "domain_id:%(target.user.domain_id)s)")


def _owned(entity: str, read: bool) -> str:
    role = "reader" if read else "admin"
    head = CLOUD_READER if read else CLOUD_ADMIN
    return _either(head, _domain(role, f"target.{entity}.domain_id"))


RULES: dict[str, str] = {
    **BASE_RULES,
    # tokens and the auth/* listings
    "identity:validate_token": _either(CLOUD_READER, "rule:service_role",
                                       "rule:token_subject"),
    "identity:check_token": _either(CLOUD_READER, "rule:service_role", "rule:token_subject"),
    "identity:revoke_token": _either(CLOUD_ADMIN, "rule:service_role", "rule:token_subject"),
    "identity:get_auth_catalog": "",
    "identity:get_auth_projects": "",
    "identity:get_auth_domains": "",
    "identity:get_auth_system": "",
    # domains
    "identity:get_domain": _either(CLOUD_READER, "domain_id:%(target.domain.id)s",
                                   "project_domain_id:%(target.domain.id)s"),
    "identity:list_domains": CLOUD_READER,
    "identity:create_domain": CLOUD_ADMIN,
    "identity:update_domain": CLOUD_ADMIN,
    "identity:delete_domain": CLOUD_ADMIN,
    # projects
    "identity:get_project": _either(_owned("project", True),
                                    "project_id:%(target.project.id)s"),
    "identity:list_projects": _either(CLOUD_READER, _domain("reader", "target.domain_id")),
    "identity:list_user_projects": _either(_owned("user", True), "user_id:%(target.user.id)s"),
    "identity:create_project": _owned("project", False),
    "identity:update_project": _owned("project", False),
    "identity:delete_project": _owned("project", False),
    "identity:get_project_tag": _either(_owned("project", True),
                                        "project_id:%(target.project.id)s"),
    "identity:list_project_tags": _either(_owned("project", True),
                                          "project_id:%(target.project.id)s"),
    "identity:update_project_tags": _either(
        _owned("project", False), "(role:admin and project_id:%(target.project.id)s)"),
    "identity:create_project_tag": _either(
        _owned("project", False), "(role:admin and project_id:%(target.project.id)s)"),
    "identity:delete_project_tag": _either(
        _owned("project", False), "(role:admin and project_id:%(target.project.id)s)"),
    "identity:delete_project_tags": _either(
        _owned("project", False), "(role:admin and project_id:%(target.project.id)s)"),
    # users
    "identity:get_user": _either(_owned("user", True), "user_id:%(target.user.id)s"),
    "identity:list_users": _either(CLOUD_READER, _domain("reader", "target.domain_id")),
    "identity:create_user": _owned("user", False),
    "identity:update_user": _owned("user", False),
    "identity:delete_user": _owned("user", False),
    "identity:list_groups_for_user": _either(_owned("user", True),
                                             "user_id:%(target.user.id)s"),
    # groups
    "identity:get_group": _owned("group", True),
    "identity:list_groups": _either(CLOUD_READER, _domain("reader", "target.domain_id")),
    "identity:create_group": _owned("group", False),
    "identity:update_group": _owned("group", False),
    "identity:delete_group": _owned("group", False),
    "identity:list_users_in_group": _owned("group", True),
    "identity:check_user_in_group": _either(CLOUD_READER, _member("reader")),
    "identity:add_user_to_group": _either(CLOUD_ADMIN, _member("admin")),
    "identity:remove_user_from_group": _either(CLOUD_ADMIN, _member("admin")),
    # roles and implied roles
    "identity:get_role": _either(CLOUD_READER, _domain("reader", "target.role.domain_id")),
    "identity:list_roles": _either(CLOUD_READER, _domain("reader", "target.domain_id")),
    "identity:create_role": CLOUD_ADMIN,
    "identity:update_role": CLOUD_ADMIN,
    "identity:delete_role": CLOUD_ADMIN,
    "identity:get_implied_role": CLOUD_READER,
    "identity:list_implied_roles": CLOUD_READER,
    "identity:list_role_inference_rules": CLOUD_READER,
    "identity:create_implied_role": CLOUD_ADMIN,
    "identity:delete_implied_role": CLOUD_ADMIN,
    # grants and role assignments
    "identity:check_grant": _either(CLOUD_READER, _grant("reader")),
    "identity:list_grants": _either(CLOUD_READER, _grant("reader")),
    "identity:create_grant": _either(CLOUD_ADMIN, _grant("admin")),
    "identity:revoke_grant": _either(CLOUD_ADMIN, _grant("admin")),
    "identity:check_system_grant": CLOUD_READER,
    "identity:list_system_grants": CLOUD_READER,
    "identity:create_system_grant": CLOUD_ADMIN,
    "identity:revoke_system_grant": CLOUD_ADMIN,
    "identity:list_role_assignments": _either(CLOUD_READER,
                                              _domain("reader", "target.domain_id")),
    "identity:list_role_assignments_for_tree": _either(
        CLOUD_READER, _domain("reader", "target.project.domain_id"),
        "(role:admin and project_id:%(target.project.id)s)"),
    # catalog
    "identity:get_region": "",
    "identity:list_regions": "",
    "identity:create_region": CLOUD_ADMIN,
    "identity:update_region": CLOUD_ADMIN,
    "identity:delete_region": CLOUD_ADMIN,
    "identity:get_service": CLOUD_READER,
    "identity:list_services": CLOUD_READER,
    "identity:create_service": CLOUD_ADMIN,
    "identity:update_service": CLOUD_ADMIN,
    "identity:delete_service": CLOUD_ADMIN,
    "identity:get_endpoint": CLOUD_READER,
    "identity:list_endpoints": CLOUD_READER,
    "identity:create_endpoint": CLOUD_ADMIN,
    "identity:update_endpoint": CLOUD_ADMIN,
    "identity:delete_endpoint": CLOUD_ADMIN,
    # credentials
    "identity:get_credential": _either(CLOUD_READER,
                                       "user_id:%(target.credential.user_id)s"),
    "identity:list_credentials": _either(CLOUD_READER, "user_id:%(target.credential.user_id)s"),
    "identity:create_credential": _either(CLOUD_ADMIN,
                                          "user_id:%(target.credential.user_id)s"),
    "identity:update_credential": _either(CLOUD_ADMIN,
                                          "user_id:%(target.credential.user_id)s"),
    "identity:delete_credential": _either(CLOUD_ADMIN,
                                          "user_id:%(target.credential.user_id)s"),
    # application credentials and access rules
    "identity:get_application_credential": _either(CLOUD_READER,
                                                   "user_id:%(target.user.id)s"),
    "identity:list_application_credentials": _either(CLOUD_READER,
                                                     "user_id:%(target.user.id)s"),
    "identity:create_application_credential": "user_id:%(target.user.id)s",
    "identity:delete_application_credential": _either(CLOUD_ADMIN,
                                                      "user_id:%(target.user.id)s"),
    "identity:get_access_rule": _either(CLOUD_READER, "user_id:%(target.user.id)s"),
    "identity:list_access_rules": _either(CLOUD_READER, "user_id:%(target.user.id)s"),
    "identity:delete_access_rule": _either(CLOUD_ADMIN, "user_id:%(target.user.id)s"),
}
