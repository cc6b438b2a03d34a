"""openstacksdk and keystoneauth1 in-process: version discovery, the clouds.yaml entry,
and the identity proxy calls the SDK makes."""

from __future__ import annotations

import openstack
import pytest
from keystoneauth1 import discover
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import generic, v3
from tests.integration.conftest import ADMIN_PASSWORD, RunningCloud
from tests.integration.identity.support import uniq


def test_version_discovery(cloud: RunningCloud) -> None:
    """keystoneauth finds v3 from the unversioned root (GET / answers 300)."""
    auth = generic.Password(auth_url=cloud.identity_url, username="admin",
                            password=ADMIN_PASSWORD, user_domain_id="default",
                            project_name="admin", project_domain_id="default")
    sess = ksa_session.Session(auth=auth)
    assert sess.get_token()
    assert sess.get_endpoint(service_type="identity", interface="public") == \
        f"{cloud.auth_url}/"
    data = discover.get_version_data(sess, cloud.identity_url)
    assert [v["id"] for v in data] == ["v3.14"]
    assert discover.Discover(sess, cloud.auth_url).url_for("3.0") == f"{cloud.auth_url}/"


def test_sdk_with_the_clouds_yaml_entry(cloud: RunningCloud,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(cloud.clouds_yaml))
    conn = openstack.connect(cloud="pocketstack")
    try:
        assert conn.identity.find_project("admin") is not None
        name = uniq("sdk")
        domain = conn.identity.create_domain(name=name)
        project = conn.identity.create_project(name=name, domain_id=domain.id)
        user = conn.identity.create_user(name=name, domain_id=domain.id, password="pw-sdk",
                                         default_project_id=project.id)
        role = conn.identity.find_role("member")
        conn.identity.assign_project_role_to_user(project, user, role)
        assert conn.identity.validate_user_has_project_role(project, user, role)
        assert [u.id for u in conn.identity.users(domain_id=domain.id)] == [user.id]
        assert conn.identity.get_project(project.id).domain_id == domain.id
        assert {s.type for s in conn.identity.services()} >= {"identity"}
        assert {e.interface for e in conn.identity.endpoints()} >= {"public", "internal",
                                                                     "admin"}

        as_user = openstack.connection.Connection(
            auth_url=cloud.auth_url, username=name, password="pw-sdk",
            user_domain_id=domain.id, project_id=project.id)
        assert as_user.current_project_id == project.id
        assert as_user.identity.get_user(user.id).name == name
        as_user.close()

        conn.identity.unassign_project_role_from_user(project, user, role)
        conn.identity.delete_user(user)
        conn.identity.delete_project(project)
        conn.identity.update_domain(domain, is_enabled=False)
        conn.identity.delete_domain(domain)
        assert conn.identity.find_domain(name) is None
    finally:
        conn.close()


def test_keystoneauth_token_plugin(cloud: RunningCloud) -> None:
    """A token is enough to act, and rescoping it by v3.Token works."""
    password = v3.Password(auth_url=cloud.auth_url, username="admin", password=ADMIN_PASSWORD,
                           user_domain_name="Default", unscoped=True)
    unscoped = ksa_session.Session(auth=password).get_token()
    scoped = ksa_session.Session(auth=v3.Token(auth_url=cloud.auth_url, token=unscoped,
                                               project_name="admin",
                                               project_domain_name="Default"))
    projects = scoped.get(f"{cloud.auth_url}/projects").json()["projects"]
    assert "admin" in {p["name"] for p in projects}
