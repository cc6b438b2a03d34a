"""The Glance v2 API over HTTP: discovery, schemas, listing, tags, data ranges, actions,
interoperable import, and who may do what (visibility, members, admin-only operations)."""

from __future__ import annotations

import hashlib
import time

import httpx
from tests.integration.conftest import RunningCloud
from tests.integration.identity.support import Api
from tests.integration.image.support import Glance, Member, make_member, uniq


def test_version_discovery(cloud: RunningCloud) -> None:
    root = httpx.get(f"{cloud.image_url}/")
    assert root.status_code == 300
    versions = root.json()["versions"]
    assert versions[0]["id"] == "v2.9" and versions[0]["status"] == "CURRENT"
    assert {v["id"] for v in versions} >= {"v2.0", "v2.6", "v2.8"}
    assert versions[0]["links"] == [{"rel": "self", "href": f"{cloud.image_url}/v2/"}]
    assert httpx.get(f"{cloud.image_url}/versions").status_code == 200
    assert httpx.get(f"{cloud.image_url}/v1/images").status_code == 300  # unknown version
    assert httpx.get(f"{cloud.image_url}/v2/images").status_code == 401  # needs a token


def test_the_catalog_lists_the_image_service(cloud: RunningCloud) -> None:
    services = cloud.openstack("catalog", "list")
    image = next(s for s in services if s["Type"] == "image")
    assert image["Name"] == "glance"
    assert {(e["interface"], e["url"]) for e in image["Endpoints"]} == {
        (interface, cloud.image_url) for interface in ("public", "internal", "admin")}


def test_unauthenticated_requests(cloud: RunningCloud) -> None:
    response = httpx.get(f"{cloud.image_url}/v2/images", headers={"X-Auth-Token": "bogus"})
    assert response.status_code == 401
    assert response.json()["error"]["title"] == "Unauthorized"
    assert response.headers["www-authenticate"].startswith("Keystone uri=")


def test_schemas(glance: Glance) -> None:
    image = glance.http.get("/v2/schemas/image").json()
    assert image["name"] == "image" and image["additionalProperties"] == {"type": "string"}
    assert "os_hash_value" in image["properties"]
    images = glance.http.get("/v2/schemas/images").json()
    assert images["properties"]["images"]["items"]["name"] == "image"
    member = glance.http.get("/v2/schemas/member").json()
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    assert glance.http.get("/v2/schemas/members").json()["name"] == "members"


def test_image_shape_and_location(glance: Glance) -> None:
    response = glance.http.post("/v2/images", json={"name": "shape", "disk_format": "raw",
                                                    "container_format": "bare", "foo": "bar"})
    assert response.status_code == 201
    assert response.headers["openstack-image-import-methods"] == "glance-direct"
    assert response.headers["openstack-image-store-ids"] == "swift"
    body = response.json()
    assert response.headers["location"].endswith(f"/v2/images/{body['id']}")
    assert set(body) == {"id", "name", "status", "visibility", "protected", "os_hidden",
                         "checksum", "os_hash_algo", "os_hash_value", "owner", "size",
                         "virtual_size", "container_format", "disk_format", "created_at",
                         "updated_at", "tags", "min_ram", "min_disk", "self", "file",
                         "schema", "foo"}
    assert (body["status"], body["visibility"], body["size"]) == ("queued", "shared", None)
    assert body["self"] == f"/v2/images/{body['id']}" and body["schema"] == "/v2/schemas/image"
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]


def test_listing_filters_and_next_links(glance: Glance) -> None:
    tag = uniq("tag")
    made = [glance.active(b"x" * size, tags=[tag], os_distro=name)
            for size, name in ((10, "alpha"), (20, "beta"), (30, "gamma"))]
    ids = [i["id"] for i in made]
    assert glance.ids(tag=tag, sort="size:asc") == ids
    assert glance.ids(tag=tag, size_min=15) == [ids[2], ids[1]]
    assert glance.ids(tag=tag, os_distro="beta") == [ids[1]]
    assert glance.ids(tag=tag, id=f"in:{ids[0]},{ids[2]}", sort="size:asc") == [ids[0], ids[2]]
    page = glance.http.get("/v2/images", params={"tag": tag, "limit": 2,
                                                 "sort": "size:asc"}).json()
    assert [i["id"] for i in page["images"]] == ids[:2]
    assert page["first"].startswith("/v2/images?") and page["schema"] == "/v2/schemas/images"
    following = glance.http.get(page["next"]).json()
    assert [i["id"] for i in following["images"]] == ids[2:]
    assert "next" not in following or following["images"] == []


def test_tags(glance: Glance) -> None:
    image = glance.create()
    path = f"/v2/images/{image['id']}/tags"
    assert glance.http.put(f"{path}/one").status_code == 204
    assert glance.http.put(f"{path}/two").status_code == 204
    assert glance.http.put(f"{path}/one").status_code == 204
    assert sorted(glance.show(image["id"])["tags"]) == ["one", "two"]
    assert glance.http.delete(f"{path}/one").status_code == 204
    assert glance.http.delete(f"{path}/one").status_code == 404
    assert glance.show(image["id"])["tags"] == ["two"]


def test_download_headers_and_ranges(glance: Glance) -> None:
    data = bytes(range(256)) * 4
    image = glance.active(data)
    assert glance.http.get(f"/v2/images/{glance.create()['id']}/file").status_code == 204
    whole = glance.http.get(f"/v2/images/{image['id']}/file")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert whole.headers["content-type"] == "application/octet-stream"
    part = glance.http.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=3-10"})
    assert (part.status_code, part.content) == (206, data[3:11])
    assert part.headers["content-range"] == f"bytes 3-10/{len(data)}"
    tail = glance.http.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]


def test_deactivate_and_reactivate(glance: Glance, member: Member,
                                   member_glance: Glance) -> None:
    image = member_glance.active(b"data")
    actions = f"/v2/images/{image['id']}/actions"
    assert member_glance.http.post(f"{actions}/deactivate").status_code == 403  # admins only
    assert glance.http.post(f"{actions}/deactivate").status_code == 204
    assert glance.http.post(f"{actions}/deactivate").status_code == 204  # a no-op
    assert member_glance.show(image["id"])["status"] == "deactivated"
    assert member_glance.http.get(f"/v2/images/{image['id']}/file").status_code == 403
    assert glance.http.get(f"/v2/images/{image['id']}/file").content == b"data"
    assert glance.http.post(f"{actions}/reactivate").status_code == 204
    assert member_glance.http.get(f"/v2/images/{image['id']}/file").content == b"data"


def test_glance_direct_import(glance: Glance) -> None:
    info = glance.http.get("/v2/info/import").json()
    assert info["import-methods"]["value"] == ["glance-direct"]
    assert glance.http.get("/v2/info/stores").json() == {"stores": [
        {"id": "swift", "description": "Object storage (Swift) of this cloud",
         "default": "true"}]}
    (detail,) = glance.http.get("/v2/info/stores/detail").json()["stores"]  # admin only
    assert detail["type"] == "swift"
    assert detail["properties"]["container"] == "glance"
    assert detail["properties"]["large_object_size"] == 200 * 1024 ** 2  # then SLO segments
    assert detail["properties"]["large_object_chunk_size"] == 200 * 1024 ** 2
    image = glance.create(disk_format="raw", container_format="bare")
    path = f"/v2/images/{image['id']}"
    body = {"method": {"name": "glance-direct"}}
    assert glance.http.post(f"{path}/import", json=body).status_code == 409  # not staged
    web = {"method": {"name": "web-download", "uri": "http://example.com/x"}}
    assert glance.http.post(f"{path}/import", json=web).status_code == 400
    staged = glance.http.put(f"{path}/stage", content=b"staged data",
                             headers={"Content-Type": "application/octet-stream"})
    assert staged.status_code == 204
    assert glance.show(image["id"])["status"] == "uploading"
    assert glance.http.post(f"{path}/import", json=body).status_code == 202
    deadline = time.monotonic() + 30
    while glance.show(image["id"])["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert glance.http.get(f"{path}/file").content == b"staged data"


def test_visibility_and_policy(glance: Glance, member_glance: Glance, member: Member) -> None:
    owned = {v: member_glance.active(b"v", visibility=v)["id"]
             for v in ("private", "shared", "community")}
    denied = member_glance.http.post("/v2/images", json={"visibility": "public"})
    assert denied.status_code == 403 and "publicize_image" in denied.text
    public = glance.active(b"p", visibility="public")["id"]
    assert public in member_glance.ids()
    assert owned["community"] in member_glance.ids()  # the owner lists its own
    assert owned["private"] in glance.ids(limit=1000)  # an admin sees everything
    assert glance.show(owned["private"])["owner"] == member.project["id"]


def test_members_and_their_answers(cloud: RunningCloud, glance: Glance, api: Api) -> None:
    owner, guest, stranger = make_member(api), make_member(api), make_member(api)
    as_owner, as_guest, as_stranger = (Glance(cloud, p.token) for p in (owner, guest, stranger))
    try:
        image = as_owner.active(b"shared", visibility="shared")
        members = f"/v2/images/{image['id']}/members"
        guest_id = guest.project["id"]
        assert as_stranger.http.get(f"/v2/images/{image['id']}").status_code == 404
        assert as_stranger.http.post(members, json={"member": guest_id}).status_code == 404
        added = as_owner.http.post(members, json={"member": guest_id})
        assert added.status_code == 200 and added.json()["status"] == "pending"
        assert added.json()["schema"] == "/v2/schemas/member"
        assert as_guest.show(image["id"])["id"] == image["id"]  # readable while pending
        assert image["id"] not in as_guest.ids()
        assert image["id"] in as_guest.ids(member_status="pending")
        mine = f"{members}/{guest_id}"
        assert as_owner.http.put(mine, json={"status": "accepted"}).status_code == 403
        assert as_guest.http.post(members, json={"member": "p-x"}).status_code == 403
        assert as_guest.http.put(mine, json={"status": "accepted"}).json()["status"] == \
            "accepted"
        assert image["id"] in as_guest.ids()
        assert as_guest.http.get(f"/v2/images/{image['id']}/file").content == b"shared"
        listing = as_guest.http.get(members).json()
        assert [m["member_id"] for m in listing["members"]] == [guest_id]
        assert listing["schema"] == "/v2/schemas/members"
        assert as_guest.patch(image["id"], {"op": "replace", "path": "/name",
                                            "value": "mine"}).status_code == 403
        assert as_guest.http.delete(f"/v2/images/{image['id']}").status_code == 403
        assert as_owner.http.delete(mine).status_code == 204
        assert as_guest.http.get(f"/v2/images/{image['id']}").status_code == 404
    finally:
        for client in (as_owner, as_guest, as_stranger):
            client.close()


def test_readers_see_but_do_not_change(cloud: RunningCloud, api: Api) -> None:
    writer = make_member(api)
    reader_user = api.user(password="reader-pw")
    api.grant("reader", user=reader_user["id"], project=writer.project["id"])
    reader_token = api.token_for(user_id=reader_user["id"], password="reader-pw",
                                 scope={"project": {"id": writer.project["id"]}})
    as_writer, as_reader = Glance(cloud, writer.token), Glance(cloud, reader_token)
    try:
        image = as_writer.active(b"data")
        assert as_reader.show(image["id"])["id"] == image["id"]
        assert image["id"] in as_reader.ids()
        assert as_reader.http.post("/v2/images", json={}).status_code == 403
        assert as_reader.http.delete(f"/v2/images/{image['id']}").status_code == 403
        assert as_reader.http.get(f"/v2/images/{image['id']}/file").status_code == 403
    finally:
        as_writer.close()
        as_reader.close()
