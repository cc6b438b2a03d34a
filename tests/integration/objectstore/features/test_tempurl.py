"""TempURL with the real clients: ``swift tempurl`` and openstacksdk's ``generate_temp_url``
make the URLs, curl and httpx use them without a token; bad URLs are 401 and write nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import openstack
import pytest
from openstack.connection import Connection
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Keystone, Persona, Swift, uniq

INVALID = b"401 Unauthorized: Temp URL invalid\n"


@dataclass
class Signed:
    """An account with both account keys set, a container and an object in it."""

    owner: Persona
    key: str
    key2: str
    container: str

    @property
    def swift(self) -> Swift:
        return self.owner.swift()

    def path(self, obj: str, container: str | None = None) -> str:
        return f"/v1/{self.owner.account}/{container or self.container}/{obj}"

    def url(self, path_and_query: str) -> str:
        return f"{self.owner.cloud.objectstore_url}{path_and_query}"


@pytest.fixture(scope="module")
def signed(keystone: Keystone) -> Iterator[Signed]:
    owner = keystone.persona("member")
    key, key2 = uniq("key"), uniq("key2")
    swift = owner.swift()
    swift.ok("POST", "", 204, headers={"X-Account-Meta-Temp-URL-Key": key,
                                       "X-Account-Meta-Temp-URL-Key-2": key2})
    container = swift.container()
    swift.put(f"{container}/obj", b"obj contents", **{
        "X-Object-Meta-Secret": "hidden", "X-Object-Meta-Public-Color": "blue",
        "Content-Type": "text/plain"})
    yield Signed(owner, key, key2, container)
    swift.close()


def sign(key: str, method: str, expires: int | str, path: str, *, digest: str = "sha256",
         ip: str | None = None) -> str:
    body = f"{method}\n{expires}\n{path}"
    if ip:
        body = f"ip={ip}\n{body}"
    return hmac.new(key.encode(), body.encode(), getattr(hashlib, digest)).hexdigest()


def query(key: str, method: str, path: str, *, expires: int | None = None,
          **extra: str) -> dict[str, str]:
    expires = expires or int(time.time()) + 300
    return {"temp_url_sig": sign(key, method, expires, path),
            "temp_url_expires": str(expires), **extra}


def swift_tempurl(cloud: RunningCloud, *args: str) -> str:
    return cloud.cli("swift", "tempurl", *args).stdout.strip()


# -- the swift CLI and curl --------------------------------------------------------------------
def test_swift_cli_url_works_with_curl_without_a_token(cloud: RunningCloud,
                                                       signed: Signed) -> None:
    path = signed.path("obj")
    url = signed.url(swift_tempurl(cloud, "GET", "60", path, signed.key))
    out = subprocess.run(["curl", "-s", "-i", url], capture_output=True, check=True,
                         timeout=30).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"obj contents"
    headers = httpx.Headers([tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]])
    assert headers["content-disposition"] == \
        "attachment; filename=\"obj\"; filename*=UTF-8''obj"
    assert "expires" in headers and headers["x-object-meta-public-color"] == "blue"
    assert "x-object-meta-secret" not in headers  # outgoing_remove_headers
    head_only = httpx.head(url)  # a GET signature also allows HEAD
    assert head_only.status_code == 200 and head_only.headers["content-length"] == "12"


@pytest.mark.parametrize("options", [["--digest", "sha1"], ["--digest", "sha512"],
                                     ["--iso8601"], ["--digest", "sha512", "--iso8601"]])
def test_swift_cli_digests_and_iso8601(cloud: RunningCloud, signed: Signed,
                                       options: list[str]) -> None:
    relative = swift_tempurl(cloud, *options, "GET", "120", signed.path("obj"), signed.key2)
    if "--iso8601" in options:
        assert "Z" in relative.split("temp_url_expires=")[1]
    response = httpx.get(signed.url(relative))
    assert response.status_code == 200 and response.content == b"obj contents"


def test_swift_cli_prefix_based(cloud: RunningCloud, signed: Signed) -> None:
    swift = signed.swift
    swift.put(f"{signed.container}/pics/a.jpg", b"a")
    swift.put(f"{signed.container}/pics/deep/b.jpg", b"b")
    relative = swift_tempurl(cloud, "--prefix-based", "GET", "60",
                             signed.path("pics/"), signed.key)
    query_string = relative.split("?", 1)[1]
    assert "temp_url_prefix=pics%2F" in query_string or "temp_url_prefix=pics/" in \
        query_string
    for obj, data in (("pics/a.jpg", b"a"), ("pics/deep/b.jpg", b"b")):
        response = httpx.get(signed.url(f"{signed.path(obj)}?{query_string}"))
        assert response.status_code == 200 and response.content == data
    outside = httpx.get(signed.url(f"{signed.path('obj')}?{query_string}"))
    assert outside.status_code == 401 and outside.content == INVALID


def test_swift_cli_ip_range(cloud: RunningCloud, signed: Signed) -> None:
    path = signed.path("obj")
    for ip_range, status in (("127.0.0.1", 200), ("127.0.0.0/8", 200), ("10.0.0.0/8", 401)):
        relative = swift_tempurl(cloud, "--ip-range", ip_range, "GET", "60", path, signed.key)
        assert "temp_url_ip_range=" in relative
        assert httpx.get(signed.url(relative)).status_code == status, ip_range
        # the address is the connection's, as Swift's REMOTE_ADDR: a header cannot pick it
        spoofed = httpx.get(signed.url(relative), headers={"X-Forwarded-For": "10.1.2.3"})
        assert spoofed.status_code == status, ip_range
    # the range is signed: changing it breaks the signature
    relative = swift_tempurl(cloud, "--ip-range", "10.0.0.1", "GET", "60", path, signed.key)
    tampered = relative.replace("10.0.0.1", "127.0.0.1")
    assert httpx.get(signed.url(tampered)).status_code == 401


# -- openstacksdk ------------------------------------------------------------------------------
@pytest.fixture
def sdk(cloud: RunningCloud, keystone: Keystone) -> Iterator[tuple[Connection, Persona]]:
    persona = keystone.persona("member")
    conn = openstack.connect(auth_url=cloud.auth_url, username=persona.user["name"],
                             password=persona.password, project_id=persona.project_id,
                             user_domain_id="default", project_domain_id="default",
                             region_name="RegionOne", load_yaml_config=False,
                             load_envvars=False)
    yield conn, persona
    conn.close()


def test_openstacksdk_account_key_get_and_put(sdk: tuple[Connection, Persona]) -> None:
    conn, persona = sdk
    conn.object_store.set_account_temp_url_key("sdk-key")
    assert conn.object_store.get_temp_url_key() == b"sdk-key"
    name = uniq()
    conn.object_store.create_container(name=name)
    conn.object_store.upload_object(container=name, name="doc.txt", data=b"from the sdk")
    base = persona.cloud.objectstore_url
    path = f"/v1/{persona.account}/{name}/doc.txt"
    url = conn.object_store.generate_temp_url(path, 60, "GET")
    assert httpx.get(base + url).content == b"from the sdk"
    iso = conn.object_store.generate_temp_url(path, 60, "GET", iso8601=True)
    assert httpx.get(base + iso).status_code == 200
    put_path = f"/v1/{persona.account}/{name}/uploaded.bin"
    put_url = conn.object_store.generate_temp_url(put_path, 60, "PUT")
    assert httpx.put(base + put_url, content=b"anonymous upload").status_code == 201
    assert conn.object_store.download_object("uploaded.bin", container=name) == \
        b"anonymous upload"
    assert httpx.head(base + put_url).status_code == 200  # PUT signatures allow HEAD
    assert httpx.get(base + put_url).status_code == 401  # but not GET


def test_openstacksdk_container_key(sdk: tuple[Connection, Persona]) -> None:
    conn, persona = sdk
    name, other = uniq(), uniq()
    for container in (name, other):
        conn.object_store.create_container(name=container)
        conn.object_store.upload_object(container=container, name="o", data=b"x")
    conn.object_store.set_container_temp_url_key(name, "container-key")
    assert conn.object_store.get_temp_url_key(name) == b"container-key"
    base = persona.cloud.objectstore_url
    path = f"/v1/{persona.account}/{name}/o"
    url = conn.object_store.generate_temp_url(path, 60, "GET", temp_url_key="container-key")
    assert httpx.get(base + url).content == b"x"
    # the container's key signs nothing in another container
    elsewhere = f"/v1/{persona.account}/{other}/o"
    url = conn.object_store.generate_temp_url(elsewhere, 60, "GET",
                                              temp_url_key="container-key")
    assert httpx.get(base + url).status_code == 401


# -- methods and scope -------------------------------------------------------------------------
def test_methods_are_signed(signed: Signed) -> None:
    path = signed.path("scratch")
    put = query(signed.key, "PUT", path)
    assert httpx.put(signed.url(path), params=put, content=b"1").status_code == 201
    assert httpx.post(signed.url(path), params=put).status_code == 401  # PUT-only
    assert httpx.delete(signed.url(path), params=put).status_code == 401
    post = query(signed.key, "POST", path)
    response = httpx.post(signed.url(path), params=post, headers={"X-Object-Meta-By": "url"})
    assert response.status_code == 202
    assert signed.swift.request("HEAD", f"{signed.container}/scratch"
                                ).headers["x-object-meta-by"] == "url"
    head = query(signed.key, "HEAD", path)
    assert httpx.head(signed.url(path), params=head).status_code == 200
    assert httpx.get(signed.url(path), params=head).status_code == 401  # HEAD-only
    delete = query(signed.key, "DELETE", path)
    assert httpx.delete(signed.url(path), params=delete).status_code == 204
    assert signed.swift.get(f"{signed.container}/scratch").status_code == 404


def test_bad_urls_are_401_and_write_nothing(signed: Signed) -> None:
    path = signed.path("never")
    good = query(signed.key, "PUT", path)
    past = int(time.time()) - 10
    cases: list[dict[str, Any]] = [
        {**good, "temp_url_sig": "0" * 64},                              # wrong signature
        {**good, "temp_url_sig": good["temp_url_sig"][:-1]},             # bad length
        {**good, "temp_url_sig": "sha256:not*base64"},                   # bad base64
        {**good, "temp_url_sig": "md5:" + base64.b64encode(b"x" * 16).decode()},
        {**good, "temp_url_expires": str(int(good["temp_url_expires"]) + 1)},  # tampered
        {**query(signed.key, "PUT", path, expires=past)},                # expired
        {**good, "temp_url_expires": "tomorrow"},
        {"temp_url_sig": good["temp_url_sig"]},                          # no expiry
        {"temp_url_expires": good["temp_url_expires"]},                  # no signature
        {**good, "temp_url_prefix": "ne"},                               # not prefix-signed
        {**good, "temp_url_ip_range": "127.0.0.1"},                      # not ip-signed
        {**query("not-the-key", "PUT", path)},
    ]
    for params in cases:
        response = httpx.put(signed.url(path), params=params, content=b"x")
        assert response.status_code == 401, params
        assert response.content == INVALID
        assert response.headers["www-authenticate"].startswith("Swift realm=")
    # another object, another container, another account: the path is signed
    for other in (signed.path("obj"), signed.path("never", uniq())):
        response = httpx.put(signed.url(other), params=good, content=b"x")
        assert response.status_code == 401
    assert httpx.head(signed.url(path), params={**good, "temp_url_sig": "0" * 64}
                      ).status_code == 401
    assert signed.swift.get(f"{signed.container}/never").status_code == 404


def test_pointer_headers_are_refused(signed: Signed) -> None:
    """A signed PUT/POST cannot make the object point elsewhere (a manifest, a symlink, a
    copy of something the signature does not cover)."""
    path = signed.path("pointer")
    put, post = query(signed.key, "PUT", path), query(signed.key, "POST", path)
    for header, value in (("X-Object-Manifest", f"{uniq()}/seg"),
                          ("X-Symlink-Target", f"{signed.container}/obj"),
                          ("X-Copy-From", f"{signed.container}/obj")):
        response = httpx.put(signed.url(path), params=put, headers={header: value},
                             content=b"")
        assert response.status_code == 400
        assert response.text == f"The header '{header}' is not allowed in this tempurl"
    assert signed.swift.get(f"{signed.container}/pointer").status_code == 404
    assert httpx.put(signed.url(path), params=put, content=b"ok").status_code == 201
    response = httpx.post(signed.url(path), params=post,
                          headers={"X-Object-Manifest": f"{signed.container}/o"})
    assert response.status_code == 400
    assert "x-object-manifest" not in signed.swift.request(
        "HEAD", f"{signed.container}/pointer").headers


def test_filename_and_inline(signed: Signed) -> None:
    path = signed.path("obj")
    base = query(signed.key, "GET", path)
    cases = [({"filename": "My Test File.pdf"},
              "attachment; filename=\"My Test File.pdf\"; "
              "filename*=UTF-8''My%20Test%20File.pdf"),
             ({"inline": ""}, "inline"),
             ({"inline": "", "filename": "r\u00e9sum\u00e9.txt"},
              "inline; filename=\"r%C3%A9sum%C3%A9.txt\"; "
              "filename*=UTF-8''r%C3%A9sum%C3%A9.txt")]
    for extra, expected in cases:
        response = httpx.get(signed.url(path), params={**base, **extra})
        assert response.status_code == 200
        assert response.headers["content-disposition"] == expected


def test_stored_content_disposition_is_kept(signed: Signed) -> None:
    obj = uniq("o")
    signed.swift.put(f"{signed.container}/{obj}", b"d",
                     **{"Content-Disposition": "attachment; filename=stored.bin"})
    path = signed.path(obj)
    response = httpx.get(signed.url(path), params=query(signed.key, "GET", path))
    assert response.headers["content-disposition"] == "attachment; filename=stored.bin"


def test_base64_signatures(signed: Signed) -> None:
    path = signed.path("obj")
    expires = int(time.time()) + 300
    for digest in ("sha1", "sha256", "sha512"):
        raw = hmac.new(signed.key.encode(), f"GET\n{expires}\n{path}".encode(),
                       getattr(hashlib, digest)).digest()
        for encoded in (base64.b64encode(raw).decode(),
                        base64.b64encode(raw).decode().rstrip("="),
                        base64.urlsafe_b64encode(raw).decode()):
            params = {"temp_url_sig": f"{digest}:{encoded}",
                      "temp_url_expires": str(expires)}
            assert httpx.get(signed.url(path), params=params).status_code == 200, digest


def test_utf8_names(signed: Signed) -> None:
    obj = "d\u00f6ss\u00eer/\u65e5\u672c.txt"
    signed.swift.put(f"{signed.container}/{obj}", b"utf8")
    path = signed.path(obj)
    response = httpx.get(signed.url(path), params=query(signed.key, "GET", path))
    assert response.status_code == 200 and response.content == b"utf8"
    assert response.headers["content-disposition"] == \
        "attachment; filename=\"%E6%97%A5%E6%9C%AC.txt\"; " \
        "filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"


def test_container_key_rotation(signed: Signed) -> None:
    """Container keys (both), alongside the account's; removing a key revokes its URLs."""
    swift = signed.swift
    name = swift.container(None, **{"X-Container-Meta-Temp-URL-Key": "ck1",
                                    "X-Container-Meta-Temp-URL-Key-2": "ck2"})
    swift.put(f"{name}/o", b"c")
    path = signed.path("o", name)
    for key in ("ck1", "ck2", signed.key):
        assert httpx.get(signed.url(path), params=query(key, "GET", path)).status_code == 200
    swift.ok("POST", name, 204, headers={"X-Remove-Container-Meta-Temp-URL-Key": "x"})
    assert httpx.get(signed.url(path), params=query("ck1", "GET", path)).status_code == 401
    assert httpx.get(signed.url(path), params=query("ck2", "GET", path)).status_code == 200


# -- who sees and sets the keys ----------------------------------------------------------------
def test_keys_are_for_owners_only(keystone: Keystone, signed: Signed) -> None:
    """Swift's ``swift_owner_headers``: the keys are neither shown to nor set by users that
    only have ACL access."""
    owner = signed.owner
    other = keystone.persona("member")
    acl = json.dumps({"read-write": [other.project_id]})
    signed.swift.ok("POST", "", 204, headers={"X-Account-Access-Control": acl})
    try:
        name = signed.swift.container(None, **{"X-Container-Meta-Temp-URL-Key": "owned",
                                               "X-Container-Meta-Color": "red"})
        as_other = other.swift(owner.account)
        account_head = as_other.ok("HEAD", "", 204).headers
        assert "x-account-meta-temp-url-key" not in account_head
        head = as_other.ok("HEAD", name, 204).headers
        assert head["x-container-meta-color"] == "red"
        assert "x-container-meta-temp-url-key" not in head
        as_other.ok("POST", name, 204, headers={"X-Container-Meta-Temp-URL-Key-2": "mine",
                                                "X-Container-Meta-Temp-URL-Key": "",
                                                "X-Container-Meta-Size": "big"})
        head = signed.swift.ok("HEAD", name, 204).headers
        assert head["x-container-meta-temp-url-key"] == "owned"
        assert "x-container-meta-temp-url-key-2" not in head
        assert head["x-container-meta-size"] == "big"
        assert signed.swift.ok("HEAD", "", 204).headers["x-account-meta-temp-url-key"] == \
            signed.key
    finally:
        signed.swift.ok("POST", "", 204, headers={"X-Account-Access-Control": "{}"})


def test_info_advertises_tempurl(cloud: RunningCloud) -> None:
    info = httpx.get(f"{cloud.objectstore_url}/info").json()
    assert info["tempurl"] == {
        "methods": ["GET", "HEAD", "PUT", "POST", "DELETE"],
        "incoming_remove_headers": ["x-timestamp", "x-open-expired"],
        "incoming_allow_headers": [],
        "outgoing_remove_headers": ["x-object-meta-*"],
        "outgoing_allow_headers": ["x-object-meta-public-*"],
        "allowed_digests": ["sha1", "sha256", "sha512"],
        "deprecated_digests": ["sha1"]}


def test_broken_chunked_upload_stores_nothing(signed: Signed) -> None:
    """A TempURL PUT whose chunked body breaks off (bad framing) is not taken for a
    complete body."""
    path = signed.path("broken")
    target = f"{path}?{urlencode(query(signed.key, 'PUT', path))}"
    port = int(signed.owner.cloud.objectstore_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: x\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\n".encode())
        answer = sock.recv(65536)
    assert not answer.startswith(b"HTTP/1.1 201")
    assert signed.swift.get(f"{signed.container}/broken").status_code == 404
