"""FormPost: browser uploads signed with the TempURL keys (openstacksdk's
``generate_form_signature`` or a signature made by hand), sent as multipart forms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import openstack
import pytest
from tests.integration.conftest import RunningCloud
from tests.integration.objectstore.support import Keystone, Persona, Swift, md5, uniq


@dataclass
class Form:
    """An account with a key, and a container to post forms to."""

    owner: Persona
    key: str
    container: str

    @property
    def swift(self) -> Swift:
        return self.owner.swift()

    def path(self, suffix: str = "", container: str | None = None) -> str:
        return f"/v1/{self.owner.account}/{container or self.container}/{suffix}"

    def url(self, path: str) -> str:
        return f"{self.owner.cloud.objectstore_url}{path}"


@pytest.fixture(scope="module")
def form(keystone: Keystone) -> Iterator[Form]:
    owner = keystone.persona("member")
    key = uniq("key")
    swift = owner.swift()
    swift.ok("POST", "", 204, headers={"X-Account-Meta-Temp-URL-Key": key})
    yield Form(owner, key, swift.container())
    swift.close()


def signature(key: str, path: str, redirect: str, size: int, count: int, expires: int, *,
              digest: str = "sha1", b64: bool = False) -> str:
    body = f"{path}\n{redirect}\n{size}\n{count}\n{expires}".encode()
    mac = hmac.new(key.encode(), body, getattr(hashlib, digest))
    if b64:
        return f"{digest}:{base64.urlsafe_b64encode(mac.digest()).decode().rstrip('=')}"
    return mac.hexdigest()


def fields(key: str, path: str, *, redirect: str = "", size: int = 1 << 20, count: int = 5,
           expires: int | None = None, **extra: str) -> dict[str, str]:
    expires = expires or int(time.time()) + 300
    values = {"max_file_size": str(size), "max_file_count": str(count),
              "expires": str(expires),
              "signature": signature(key, path, redirect, size, count, expires)}
    if redirect:
        values["redirect"] = redirect
    return {**values, **extra}


def post(form: Form, path: str, data: dict[str, str],
         files: list[tuple[str, tuple[str, bytes, str]]]) -> httpx.Response:
    return httpx.post(form.url(path), data=data, files=files, timeout=60)


def test_openstacksdk_signed_form_uploads_several_files(cloud: RunningCloud,
                                                        form: Form) -> None:
    conn = openstack.connect(auth_url=cloud.auth_url, username=form.owner.user["name"],
                             password=form.owner.password, project_id=form.owner.project_id,
                             user_domain_id="default", project_domain_id="default",
                             region_name="RegionOne", load_yaml_config=False,
                             load_envvars=False)
    try:
        expires, sig = conn.object_store.generate_form_signature(
            form.container, "up/", "", 1 << 20, 3, 60)
    finally:
        conn.close()
    data = {"max_file_size": str(1 << 20), "max_file_count": "3", "expires": str(expires),
            "signature": sig}
    blob = os.urandom(300_000)
    response = post(form, form.path("up/"), data, [
        ("file1", ("a.txt", b"first file", "text/plain")),
        ("file2", ("b.bin", blob, "application/octet-stream"))])
    assert response.status_code == 201, response.text
    assert response.text == "201 Created"
    assert response.headers["content-type"] == "text/plain"
    swift = form.swift
    got = swift.get(f"{form.container}/up/a.txt")
    assert got.content == b"first file" and got.headers["content-type"] == "text/plain"
    assert swift.get(f"{form.container}/up/b.bin").content == blob


def test_redirect_gets_status_and_message(form: Form) -> None:
    path = form.path("r-")
    redirect = "https://example.com/done?x=1"
    data = fields(form.key, path, redirect=redirect)
    response = post(form, path, data, [("f", ("one", b"1", "text/plain"))])
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == "https://example.com/done?x=1&status=201&message="
    assert html.escape(location) in response.text
    assert form.swift.get(f"{form.container}/r-one").content == b"1"
    # errors go to the redirect too
    data = fields(form.key, path, redirect="https://example.com/done", count=1)
    response = post(form, path, data, [("f", ("x", b"1", "text/plain")),
                                       ("g", ("y", b"2", "text/plain"))])
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query == {"status": ["400"], "message": ["max file count exceeded"]}
    assert form.swift.get(f"{form.container}/r-x").status_code == 200
    assert form.swift.get(f"{form.container}/r-y").status_code == 404


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_digests_hex_and_base64(form: Form, digest: str) -> None:
    path = form.path(f"{digest}/")
    expires = int(time.time()) + 60
    for b64 in (False, True):
        sig = signature(form.key, path, "", 100, 1, expires, digest=digest, b64=b64)
        data = {"max_file_size": "100", "max_file_count": "1", "expires": str(expires),
                "signature": sig}
        name = f"{b64}.txt"
        response = post(form, path, data, [("f", (name, b"d", "text/plain"))])
        assert response.status_code == 201, (digest, b64, response.text)
        assert form.swift.get(f"{form.container}/{digest}/{name}").content == b"d"


def test_container_key(form: Form) -> None:
    name = form.swift.container(None, **{"X-Container-Meta-Temp-URL-Key": "ckey"})
    path = form.path("", name)
    response = post(form, path, fields("ckey", path), [("f", ("c.txt", b"c", "text/plain"))])
    assert response.status_code == 201
    assert form.swift.get(f"{name}/c.txt").content == b"c"
    # a container's key does not sign for another container
    other = form.path("", form.container)
    response = post(form, other, fields("ckey", other), [("f", ("c.txt", b"c", "a/b"))])
    assert response.status_code == 401


def test_errors_use_swift_texts_and_store_nothing(form: Form) -> None:
    path = form.path("bad-")
    one = [("f", ("file", b"0123456789", "text/plain"))]
    cases = [
        (fields(form.key, path, expires=int(time.time()) - 5), 401, "FormPost: Form Expired"),
        ({**fields(form.key, path), "signature": "0" * 40}, 401,
         "FormPost: Invalid Signature"),
        ({**fields(form.key, path), "signature": "sha1:***"}, 401,
         "FormPost: Invalid Signature"),
        ({**fields(form.key, path), "signature": "md5:" + "A" * 22}, 401,
         "FormPost: Invalid Signature"),
        (fields("wrong", path), 401, "FormPost: Invalid Signature"),
        (fields(form.key, form.path("elsewhere-")), 401, "FormPost: Invalid Signature"),
        (fields(form.key, path, size=9), 400, "FormPost: max_file_size exceeded"),
        ({**fields(form.key, path), "max_file_size": "big"}, 400,
         "FormPost: max_file_size not an integer"),
        ({**fields(form.key, path), "expires": "soon"}, 400,
         "FormPost: expired not an integer"),
        ({**fields(form.key, path), "x_delete_after": "later"}, 400,
         "FormPost: x_delete_after not an integer: Number of seconds required."),
    ]
    for data, status, text in cases:
        response = post(form, path, data, one)
        assert (response.status_code, response.text) == (status, text), data
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Swift realm=")
    assert form.swift.names(form.container, prefix="bad-") == []


def test_count_and_missing_files(form: Form) -> None:
    path = form.path("count-")
    files = [("a", ("1", b"1", "text/plain")), ("b", ("2", b"2", "text/plain"))]
    response = post(form, path, fields(form.key, path, count=1), files)
    assert response.status_code == 400
    assert response.text == "400 Bad Request\r\nFormPost: Max File Count Exceeded"
    assert form.swift.names(form.container, prefix="count-") == ["count-1"]
    boundary = uuid.uuid4().hex
    only_fields = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n'
                          f"\r\n{v}\r\n" for k, v in fields(form.key, path).items())
    response = httpx.post(form.url(path), content=f"{only_fields}--{boundary}--\r\n",
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (response.status_code, response.text) == \
        (400, "400 Bad Request\r\nFormPost: No Files To Process")


def test_large_file_is_streamed_and_capped(form: Form) -> None:
    path = form.path("big-")
    blob = os.urandom(5 * 1024 * 1024 + 7)
    response = post(form, path, fields(form.key, path, size=len(blob)),
                    [("f", ("exact.bin", blob, "application/octet-stream"))])
    assert response.status_code == 201
    assert form.swift.request("HEAD", f"{form.container}/big-exact.bin"
                              ).headers["etag"] == md5(blob)
    response = post(form, path, fields(form.key, path, size=len(blob) - 1),
                    [("f", ("over.bin", blob, "application/octet-stream"))])
    assert (response.status_code, response.text) == (400, "FormPost: max_file_size exceeded")
    assert form.swift.get(f"{form.container}/big-over.bin").status_code == 404


def test_chunked_form_body(form: Form) -> None:
    """A form sent with chunked transfer encoding, in small pieces."""
    path = form.path("chunked-")
    boundary = uuid.uuid4().hex
    data = fields(form.key, path, **{"content-type": "text/csv", "x_delete_after": "3600"})
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                    f"{v}\r\n".encode() for k, v in data.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="f"; '
             f'filename="rows.csv"\r\nContent-Type: text/plain\r\n\r\n').encode()
    body += b"a,b\r\n--not-the-boundary\r\n1,2" + f"\r\n--{boundary}--\r\n".encode()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start:start + 7]

    response = httpx.post(form.url(path), content=pieces(), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 201, response.text
    got = form.swift.get(f"{form.container}/chunked-rows.csv")
    assert got.content == b"a,b\r\n--not-the-boundary\r\n1,2"
    assert got.headers["content-type"] == "text/csv"  # the form's type wins over the part's
    assert "x-delete-at" in got.headers


def test_bad_forms(form: Form) -> None:
    path = form.path("mime-")
    ctype = {"Content-Type": "multipart/form-data; boundary=XYZ"}
    response = httpx.post(form.url(path), content=b"garbage\r\n", headers=ctype)
    assert (response.status_code, response.text) == (400, "FormPost: invalid starting boundary")
    response = httpx.post(form.url(path), content=b"", headers=ctype)
    assert response.status_code == 400
    truncated = b'--XYZ\r\nContent-Disposition: form-data; name="f"; filename="t"\r\n\r\nab'
    response = httpx.post(form.url(path), content=truncated, headers=ctype)
    # no fields before the file: its max_file_count is 0
    assert response.text == "400 Bad Request\r\nFormPost: Max File Count Exceeded"
    # an account path has no keys; a missing container is the PUT's own 404
    account = f"/v1/{form.owner.account}"
    response = post(form, account, fields(form.key, account),
                    [("f", ("x", b"1", "text/plain"))])
    assert response.status_code == 401
    missing = form.path("", uniq())
    response = post(form, missing, fields(form.key, missing),
                    [("f", ("x", b"1", "text/plain"))])
    assert response.status_code == 404 and "Not Found" in response.text
    # a file name with a NUL is refused as Swift refuses such a path (the raw bytes: httpx
    # would percent-encode the NUL)
    boundary = uuid.uuid4().hex
    body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n'
                   f"\r\n{v}\r\n" for k, v in fields(form.key, path).items()).encode()
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="f"; '
             f'filename="a\x00b"\r\n\r\n1\r\n--{boundary}--').encode()
    response = httpx.post(form.url(path), content=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (response.status_code, response.text) == (412, "Invalid UTF8 or contains NULL")
    assert form.swift.names(form.container, prefix="mime-") == []


def test_tokens_and_other_posts_are_untouched(form: Form) -> None:
    """A POST that is not a form goes on to the object and container controllers."""
    swift = form.swift
    swift.put(f"{form.container}/plain", b"p")
    response = swift.request("POST", f"{form.container}/plain",
                             headers={"X-Object-Meta-A": "1",
                                      "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 202
    response = swift.request("POST", form.container, headers={"X-Container-Meta-B": "2"})
    assert response.status_code == 204


def test_info_advertises_formpost(cloud: RunningCloud) -> None:
    info = httpx.get(f"{cloud.objectstore_url}/info").json()
    assert info["formpost"] == {"allowed_digests": ["sha1", "sha256", "sha512"],
                                "deprecated_digests": ["sha1"]}
