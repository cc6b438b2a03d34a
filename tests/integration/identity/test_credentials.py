"""Credentials (EC2 keys, encrypted at rest) and application credentials: CRUD through the
CLI, authentication with them (CLI, keystoneauth by id and by name + user), expiry,
restrictions, access rules."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3
from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import (
    Api,
    Persona,
    assert_error,
    cli_env,
    make_persona,
    osc,
    uniq,
)


def _credential_rows(cloud: RunningCloud) -> list[tuple[str, bytes]]:
    engine = sqlalchemy.create_engine(cloud.database_url)
    try:
        with engine.connect() as db:
            rows = db.execute(sqlalchemy.text("SELECT id, encrypted_blob FROM credential"))
            return [(row[0], bytes(row[1])) for row in rows]
    finally:
        engine.dispose()


def test_ec2_credential_lifecycle_encrypted_at_rest(cloud: RunningCloud, api: Api) -> None:
    project = api.project()
    user = api.user()
    access, secret = uniq("AK"), uniq("SECRET")
    blob = json.dumps({"access": access, "secret": secret})
    created = cloud.openstack("credential", "create", "--type", "ec2", "--project",
                              project["id"], user["id"], blob)
    assert created["id"] == hashlib.sha256(access.encode()).hexdigest()
    assert json.loads(created["blob"]) == {"access": access, "secret": secret}
    listed = cloud.openstack("credential", "list", "--user", user["id"], "--type", "ec2")
    assert [c["ID"] for c in listed] == [created["id"]]

    rows = dict(_credential_rows(cloud))
    stored = bytes(rows[created["id"]])
    assert secret.encode() not in stored and access.encode() not in stored

    new_blob = json.dumps({"access": access, "secret": "rotated-" + secret})
    osc(cloud, "credential", "set", "--type", "ec2", "--data", new_blob, "--user", user["id"],
        "--project", project["id"], created["id"])
    shown = cloud.openstack("credential", "show", created["id"])
    assert json.loads(shown["blob"])["secret"] == "rotated-" + secret
    assert_error(api.post("/credentials", json={"credential": {
        "type": "ec2", "user_id": user["id"], "project_id": project["id"], "blob": blob}}),
        409)
    assert_error(api.post("/credentials", json={"credential": {
        "type": "ec2", "user_id": user["id"], "blob": blob}}), 400)  # ec2 needs a project
    osc(cloud, "credential", "delete", created["id"])
    assert_error(api.get(f"/credentials/{created['id']}"), 404)


def test_credentials_belong_to_their_owner(api: Api) -> None:
    alice, bob = make_persona(api, "member"), make_persona(api, "member")
    as_alice = api.as_token(alice.token)
    mine = api.ok(as_alice.post("/credentials", json={"credential": {
        "type": "totp", "user_id": alice.id, "blob": "alice-seed"}}), 201)["credential"]
    theirs = api.ok(api.post("/credentials", json={"credential": {
        "type": "totp", "user_id": bob.id, "blob": "bob-seed"}}), 201)["credential"]
    assert [c["id"] for c in api.ok(as_alice.get("/credentials"))["credentials"]] == \
        [mine["id"]]
    assert_error(as_alice.get(f"/credentials/{theirs['id']}"), 403)
    assert_error(as_alice.post("/credentials", json={"credential": {
        "type": "totp", "user_id": bob.id, "blob": "x"}}), 403)
    assert_error(as_alice.patch(f"/credentials/{mine['id']}", json={"credential": {
        "user_id": bob.id}}), 403)
    assert_error(as_alice.delete(f"/credentials/{theirs['id']}"), 403)
    assert as_alice.delete(f"/credentials/{mine['id']}").status_code == 204


def _ksa_session(cloud: RunningCloud, **kwargs: Any) -> ksa_session.Session:
    return ksa_session.Session(auth=v3.ApplicationCredential(auth_url=cloud.auth_url,
                                                             **kwargs))


def _app_cred_env(cloud: RunningCloud, cred: dict[str, Any]) -> dict[str, str]:
    return cli_env(cloud, OS_AUTH_TYPE="v3applicationcredential",
                   OS_APPLICATION_CREDENTIAL_ID=cred["ID"],
                   OS_APPLICATION_CREDENTIAL_SECRET=cred["Secret"])


def test_application_credential_lifecycle_and_auth(cloud: RunningCloud, api: Api) -> None:
    owner = make_persona(api, "admin")  # admin on its own project only
    env = owner.cli_env(cloud)
    name = uniq("ac")
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    cred = cloud.openstack("application", "credential", "create", "--role", "member",
                           "--expiration", expires, "--description", "ci", name, env=env)
    assert cred["Secret"] and [r["name"] for r in cred["Roles"]] == ["member"]
    assert cred["Project ID"] == owner.project["id"]  # type: ignore[index]
    assert cred["Unrestricted"] is False and cred["Expires At"].startswith(expires)

    shown = cloud.openstack("application", "credential", "show", name, env=env)
    assert "Secret" not in shown and shown["ID"] == cred["ID"]
    listed = cloud.openstack("application", "credential", "list", env=env)
    assert [c["Name"] for c in listed] == [name]

    issued = cloud.openstack("token", "issue", env=_app_cred_env(cloud, cred))
    assert issued["project_id"] == owner.project["id"]  # type: ignore[index]
    body = api.ok(api.validate(issued["id"]))["token"]
    assert body["methods"] == ["application_credential"]
    assert body["application_credential"] == {"id": cred["ID"], "name": name,
                                              "restricted": True}
    assert [r["name"] for r in body["roles"]] == ["member", "reader"]  # no admin

    by_id = _ksa_session(cloud, application_credential_id=cred["ID"],
                         application_credential_secret=cred["Secret"])
    by_name = _ksa_session(cloud, application_credential_name=name,
                           application_credential_secret=cred["Secret"],
                           user_id=owner.id)
    by_user_name = _ksa_session(cloud, application_credential_name=name,
                                application_credential_secret=cred["Secret"],
                                username=owner.user["name"], user_domain_id="default")
    for sess in (by_id, by_name, by_user_name):
        assert sess.get_project_id() == owner.project["id"]  # type: ignore[index]
    wrong = _ksa_session(cloud, application_credential_id=cred["ID"],
                         application_credential_secret="not-" + cred["Secret"])
    with pytest.raises(ksa_exceptions.Unauthorized):
        wrong.get_token()

    # A restricted application credential can't make or delete application credentials.
    refused = cloud.cli("openstack", "application", "credential", "create", uniq("ac"),
                        env=_app_cred_env(cloud, cred), check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    osc(cloud, "application", "credential", "delete", name, env=env)
    with pytest.raises(ksa_exceptions.Unauthorized):
        _ksa_session(cloud, application_credential_id=cred["ID"],
                     application_credential_secret=cred["Secret"]).get_token()
    assert_error(api.validate(issued["id"]), 404)


def _create(api: Api, who: Persona, **fields: Any) -> dict[str, Any]:
    response = api.as_token(who.token).post(
        f"/users/{who.id}/application_credentials",
        json={"application_credential": {"name": uniq("ac"), **fields}})
    return dict(api.ok(response, 201)["application_credential"])


def test_unrestricted_and_access_rules(cloud: RunningCloud, api: Api) -> None:
    owner = make_persona(api, "member")
    rules = [{"service": "compute", "method": "GET", "path": "/v2.1/servers"}]
    cred = cloud.openstack("application", "credential", "create", "--unrestricted",
                           "--access-rules", json.dumps(rules), uniq("ac"),
                           env=owner.cli_env(cloud))
    assert cred["Unrestricted"] is True
    assert [{k: r[k] for k in ("service", "method", "path")} for r in cred["Access Rules"]] \
        == rules
    token = _ksa_session(cloud, application_credential_id=cred["ID"],
                         application_credential_secret=cred["Secret"]).get_token()
    assert token is not None
    body = api.ok(api.validate(token))["token"]["application_credential"]
    assert body["restricted"] is False and body["access_rules"][0]["path"] == "/v2.1/servers"
    # unrestricted: may create another one
    as_cred = api.as_token(token)
    made = as_cred.post(f"/users/{owner.id}/application_credentials",
                        json={"application_credential": {"name": uniq("ac")}})
    assert made.status_code == 201, made.text

    mine = api.as_token(owner.token)
    access_rules = api.ok(mine.get(f"/users/{owner.id}/access_rules"))["access_rules"]
    assert [r["path"] for r in access_rules] == ["/v2.1/servers"]
    rule_path = f"/users/{owner.id}/access_rules/{access_rules[0]['id']}"
    assert_error(mine.delete(rule_path), 403)  # still used
    assert mine.delete(f"/users/{owner.id}/application_credentials/{cred['ID']}"
                       ).status_code == 204
    assert mine.delete(rule_path).status_code == 204


def test_application_credential_expiry(api: Api) -> None:
    owner = make_persona(api, "member")
    soon = datetime.now(UTC) + timedelta(seconds=3)
    cred = _create(api, owner, expires_at=soon.isoformat())
    auth = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred["id"],
                                                             "secret": cred["secret"]}}}}
    response = api.issue(auth)
    assert response.status_code == 201, response.text
    token = response.headers["X-Subject-Token"]
    assert response.json()["token"]["expires_at"] <= soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()))
    deadline = time.monotonic() + 10
    while api.issue(auth).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert_error(api.issue(auth), 401)
    assert_error(api.validate(token), 404)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert_error(api.as_token(owner.token).post(
        f"/users/{owner.id}/application_credentials",
        json={"application_credential": {"name": uniq(), "expires_at": past}}), 400)


def test_application_credentials_are_private(api: Api) -> None:
    alice, bob = make_persona(api, "member"), make_persona(api, "member")
    cred = _create(api, alice)
    as_bob = api.as_token(bob.token)
    base = f"/users/{alice.id}/application_credentials"
    for method, path in (("GET", base), ("GET", f"{base}/{cred['id']}"),
                         ("DELETE", f"{base}/{cred['id']}"),
                         ("POST", base)):
        body = {"application_credential": {"name": uniq()}} if method == "POST" else None
        assert_error(as_bob.request(method, path, json=body), 403)
    # Bob's own path does not reach Alice's credential either.
    assert_error(as_bob.get(f"/users/{bob.id}/application_credentials/{cred['id']}"), 404)
    assert_error(api.as_token(alice.token).post(base, json={"application_credential": {
        "name": uniq(), "roles": [{"name": "admin"}]}}), 403)  # a role alice lacks
    shown = api.ok(api.as_token(alice.token).get(f"{base}/{cred['id']}"))
    assert "secret" not in shown["application_credential"]
