"""The service catalog: ``catalog list``, and service / endpoint / region CRUD."""

from __future__ import annotations

from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api, assert_error, make_persona, osc, uniq


def test_catalog_list(cloud: RunningCloud) -> None:
    catalog = cloud.openstack("catalog", "list")
    identity = next(c for c in catalog if c["Type"] == "identity")
    assert identity["Name"] == "keystone"
    assert {e["interface"] for e in identity["Endpoints"]} == {"public", "internal", "admin"}
    assert all(e["url"] == f"{cloud.auth_url}/" and e["region"] == "RegionOne"
               for e in identity["Endpoints"])


def test_regions(cloud: RunningCloud, api: Api) -> None:
    parent, child = uniq("Region"), uniq("Region")
    assert cloud.openstack("region", "create", "--description", "top", parent)["region"] == \
        parent
    made = cloud.openstack("region", "create", "--parent-region", parent, child)
    assert made["parent_region"] == parent
    osc(cloud, "region", "set", "--description", "below", child)
    shown = api.ok(api.get(f"/regions/{child}"))["region"]
    assert shown == {**shown, "description": "below", "parent_region_id": parent}
    children = api.ok(api.get("/regions", params={"parent_region_id": parent}))["regions"]
    assert [r["id"] for r in children] == [child]
    assert_error(api.patch(f"/regions/{parent}",
                           json={"region": {"parent_region_id": child}}), 400)  # a cycle
    assert_error(api.post("/regions", json={"region": {"id": child}}), 409)
    assert_error(api.post("/regions", json={"region": {"parent_region_id": uniq()}}), 404)
    put = api.put(f"/regions/{uniq('Put')}", json={"region": {"description": "by PUT"}})
    assert put.status_code == 201
    osc(cloud, "region", "delete", child)
    assert_error(api.get(f"/regions/{child}"), 404)
    assert api.delete(f"/regions/{parent}").status_code == 204


def test_services_and_endpoints(cloud: RunningCloud, api: Api) -> None:
    name, kind, region = uniq("svc"), uniq("type"), uniq("Region")
    api.ok(api.post("/regions", json={"region": {"id": region}}), 201)
    service = cloud.openstack("service", "create", "--name", name, "--description", "demo",
                              kind)
    assert service["type"] == kind and service["enabled"] is True
    url = "http://127.0.0.1:9999/v1/AUTH_%(project_id)s"
    endpoint = cloud.openstack("endpoint", "create", "--region", region, name, "public", url)
    assert endpoint["service_id"] == service["id"] and endpoint["region_id"] == region
    internal = api.ok(api.post("/endpoints", json={"endpoint": {
        "service_id": service["id"], "interface": "internal", "url": "http://10.0.0.1:9999/",
        "region_id": region}}), 201)["endpoint"]

    listed = cloud.openstack("endpoint", "list", "--service", name, "--interface", "public")
    assert [e["ID"] for e in listed] == [endpoint["id"]]
    by_region = api.ok(api.get("/endpoints", params={"region_id": region}))["endpoints"]
    assert {e["id"] for e in by_region} == {endpoint["id"], internal["id"]}

    token = api.ok(api.validate(api.token or ""))["token"]
    entry = next(s for s in token["catalog"] if s["id"] == service["id"])
    public = next(e for e in entry["endpoints"] if e["interface"] == "public")
    assert public["url"] == url.replace("%(project_id)s", token["project"]["id"])

    osc(cloud, "endpoint", "set", "--disable", "--url", "http://127.0.0.1:9998/",
        endpoint["id"])
    shown = api.ok(api.get(f"/endpoints/{endpoint['id']}"))["endpoint"]
    assert shown["enabled"] is False and shown["url"] == "http://127.0.0.1:9998/"
    osc(cloud, "service", "set", "--disable", "--description", "off", service["id"])
    assert api.ok(api.get(f"/services/{service['id']}"))["service"]["enabled"] is False
    catalog = api.ok(api.get("/auth/catalog"))["catalog"]
    assert service["id"] not in {s["id"] for s in catalog}
    assert api.ok(api.get("/services", params={"type": kind}))["services"][0]["name"] == name

    assert_error(api.delete(f"/regions/{region}"), 403)  # endpoints still use it
    osc(cloud, "endpoint", "delete", endpoint["id"])
    assert_error(api.get(f"/endpoints/{endpoint['id']}"), 404)
    osc(cloud, "service", "delete", service["id"])
    assert_error(api.get(f"/endpoints/{internal['id']}"), 404)  # went with its service
    assert api.delete(f"/regions/{region}").status_code == 204


def test_endpoint_validation(api: Api) -> None:
    service = api.ok(api.post("/services", json={"service": {"type": uniq()}}), 201)
    sid = service["service"]["id"]
    for bad in ({"service_id": sid, "interface": "sideways", "url": "http://x/"},
                {"service_id": sid, "interface": "public", "url": "not a url"},
                {"service_id": sid, "interface": "public", "url": "http://x/%(nope)s"},
                {"service_id": uniq(), "interface": "public", "url": "http://x/"},
                {"service_id": sid, "interface": "public", "url": "http://x/",
                 "region_id": uniq()},
                {"interface": "public", "url": "http://x/"}):
        assert_error(api.post("/endpoints", json={"endpoint": bad}), 400)
    assert api.delete(f"/services/{sid}").status_code == 204


def test_catalog_admin_only_writes(api: Api) -> None:
    member = make_persona(api, "member")
    mine = api.as_token(member.token)
    assert mine.get("/regions").status_code == 200
    for method, path, body in (("POST", "/services", {"service": {"type": "x"}}),
                               ("GET", "/services", None), ("GET", "/endpoints", None),
                               ("POST", "/regions", {"region": {}}),
                               ("POST", "/endpoints", {"endpoint": {}})):
        assert_error(mine.request(method, path, json=body), 403)
