"""A cloud of its own: the clouds.yaml it writes, key rotation while it runs, a restart that
keeps every piece of state, and a clean SIGTERM exit."""

from __future__ import annotations

import base64
import stat
import subprocess
import time
from pathlib import Path

import yaml
from cryptography.fernet import Fernet, InvalidToken
from tests.integration.conftest import ADMIN_PASSWORD, BIN, RunningCloud, start_cloud
from tests.integration.identity.support import Api, assert_error, password_auth

from pocketstack.identity.tokens import FernetKeyRepository


def _sealed_by_primary(cloud: RunningCloud, token: str) -> bool:
    repo = FernetKeyRepository(cloud.data_dir / "keys" / "fernet")
    primary = repo.load_keys()[0]
    padded = token + "=" * (-len(token) % 4)
    try:
        Fernet(primary).decrypt(padded.encode())
    except InvalidToken:
        return False
    return True


def _check_clouds_yaml(cloud: RunningCloud) -> None:
    assert stat.S_IMODE(cloud.clouds_yaml.stat().st_mode) == 0o600
    entry = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["pocketstack"]
    assert entry["auth"] == {"auth_url": cloud.auth_url, "username": "admin",
                             "password": ADMIN_PASSWORD, "project_name": "admin",
                             "user_domain_name": "Default", "project_domain_name": "Default"}
    assert entry["region_name"] == "RegionOne"
    assert str(entry["identity_api_version"]) == "3"


def _rotate(cloud: RunningCloud) -> None:
    result = subprocess.run([str(BIN / "pocketstack"), "admin", "rotate-keys", "--data-dir",
                             str(cloud.data_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "rotated" in result.stdout


def test_rotation_restart_and_shutdown(tmp_path: Path) -> None:
    cloud = start_cloud(tmp_path, "own")
    try:
        _check_clouds_yaml(cloud)
        assert cloud.openstack("token", "issue")["project_id"]  # the CLI needs nothing else
        api = Api(cloud, cloud.admin_token())
        project = api.project(tags=["kept"])
        user = api.user(password="pw-kept", email="kept@example.org")
        api.grant("member", user=user["id"], project=project["id"])
        scope = {"project": {"id": project["id"]}}
        before = api.token_for(user_id=user["id"], password="pw-kept", scope=scope)
        revoked = api.token_for(user_id=user["id"], password="pw-kept", scope=scope)
        assert api.delete("/auth/tokens", headers={"X-Subject-Token": revoked}
                          ).status_code == 204
        as_user = api.as_token(before)
        cred = api.ok(as_user.post(f"/users/{user['id']}/application_credentials", json={
            "application_credential": {"name": "kept"}}), 201)["application_credential"]
        blob = '{"access": "kept-access", "secret": "kept-secret"}'
        ec2 = api.create("credentials", "credential", type="ec2", user_id=user["id"],
                         project_id=project["id"], blob=blob)

        # Rotation while running: old tokens validate, new ones use the new primary key.
        assert _sealed_by_primary(cloud, before)
        _rotate(cloud)
        assert not _sealed_by_primary(cloud, before)
        assert api.validate(before).status_code == 200
        deadline = time.monotonic() + 10
        while True:
            fresh = api.token_for(user_id=user["id"], password="pw-kept", scope=scope)
            if _sealed_by_primary(cloud, fresh) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert _sealed_by_primary(cloud, fresh)
        assert api.validate(fresh).status_code == 200

        assert cloud.stop() == 0  # SIGTERM: a clean exit
        assert "Traceback" not in cloud.log()
        cloud.start()
        api = Api(cloud, cloud.admin_token())
        assert api.validate(before).status_code == 200
        assert api.validate(fresh).status_code == 200
        assert_error(api.validate(revoked), 404)
        kept = api.ok(api.get(f"/projects/{project['id']}"))["project"]
        assert kept["tags"] == ["kept"]
        assert api.ok(api.get(f"/users/{user['id']}"))["user"]["email"] == "kept@example.org"
        assert api.ok(api.get(f"/credentials/{ec2['id']}"))["credential"]["blob"] == blob
        assert api.issue(password_auth(user_id=user["id"], password="pw-kept",
                                       scope=scope)).status_code == 201
        by_cred = api.issue({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}})
        assert by_cred.status_code == 201, by_cred.text
        _check_clouds_yaml(cloud)
        assert len(base64.urlsafe_b64decode(
            FernetKeyRepository(cloud.data_dir / "keys" / "fernet").load_keys()[0])) == 32
    finally:
        code = cloud.stop()
    assert code == 0, cloud.log()
    assert "Traceback" not in cloud.log()
