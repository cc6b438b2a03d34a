"""Bulk operations (Swift's ``bulk`` middleware): ``?extract-archive`` and ``?bulk-delete``
with python-swiftclient, the ``swift`` CLI and raw HTTP; hostile and broken archives."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import socket
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
import pytest
from swiftclient.client import Connection
from tests.integration.conftest import RunningCloud, start_cloud
from tests.integration.objectstore.support import (
    Keystone,
    Persona,
    Swift,
    admin_connection,
    raw_request,
    run_cli,
    stray_files,
    uniq,
)

LIMITS = {"POCKETSTACK_OBJECTSTORE__BULK_MAX_CONTAINERS_PER_EXTRACTION": "2",
          "POCKETSTACK_OBJECTSTORE__BULK_MAX_FAILED_EXTRACTIONS": "2",
          "POCKETSTACK_OBJECTSTORE__BULK_MAX_DELETES_PER_REQUEST": "5",
          "POCKETSTACK_OBJECTSTORE__BULK_MAX_FAILED_DELETES": "2"}


# -- archives ------------------------------------------------------------------------------------
def tar_bytes(files: dict[str, bytes], *, compression: str = "", fmt: int = tarfile.PAX_FORMAT,
              extra: list[tarfile.TarInfo] | None = None,
              pax: dict[str, dict[str, str]] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = (pax or {}).get(name, {})
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    raw = buf.getvalue()
    if compression == "gz":
        return gzip.compress(raw)
    if compression == "bz2":
        return bz2.compress(raw)
    return raw


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def extract(swift: Swift, path: str, archive: bytes, kind: str = "tar",
            accept: str = "application/json", **headers: str) -> Any:
    response = swift.request("PUT", path, params={"extract-archive": kind}, content=archive,
                             headers={"Accept": accept, **headers})
    assert response.status_code == 200, response.text
    return response.json() if accept == "application/json" else response.text


def bulk_delete(swift: Swift, names: list[str], accept: str = "application/json",
                **headers: str) -> Any:
    body = "".join(quote(name) + "\n" for name in names).encode()
    response = swift.request("POST", "", params={"bulk-delete": ""}, content=body,
                             headers={"Accept": accept, "Content-Type": "text/plain",
                                      **headers})
    assert response.status_code == 200, response.text
    return response.json() if accept == "application/json" else response.text


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    """A cloud with tiny bulk limits."""
    cloud = start_cloud(tmp_path_factory.mktemp("bulk-limits"), **LIMITS)
    yield cloud
    assert cloud.stop() == 0


@pytest.fixture(scope="module")
def limited_swift(limited: RunningCloud) -> Iterator[Swift]:
    conn = admin_connection(limited)
    url, token = conn.get_auth()
    conn.close()
    client = Swift(limited.objectstore_url, url.rsplit("/", 1)[1], token)
    yield client
    client.close()


# -- extract-archive -------------------------------------------------------------------------------
def test_info_advertises_bulk_with_its_limits(swift: Swift) -> None:
    info = swift.http.get("/info").json()
    assert info["bulk_upload"] == {"max_containers_per_extraction": 10000,
                                   "max_failed_extractions": 1000}
    assert info["bulk_delete"] == {"max_deletes_per_request": 10000,
                                   "max_failed_deletes": 1000}


def test_swiftclient_extracts_a_tar_into_a_container(conn: Connection, swift: Swift) -> None:
    container = swift.container()
    files = {"a.txt": b"alpha", "dir/b.bin": os.urandom(300_000), "dir/sub/c": b"",
             "ünï/cødé.txt": "ü".encode()}
    response: dict[str, Any] = {}
    conn.put_object(container, "", tar_bytes(files), query_string="extract-archive=tar",
                    headers={"Accept": "application/json"}, response_dict=response)
    assert response["status"] == 200
    assert sorted(swift.names(container)) == sorted(files)
    for name, data in files.items():
        assert swift.get(f"{container}/{name}").content == data
    assert swift.request("HEAD", f"{container}/a.txt").headers["content-type"] == "text/plain"


def test_extract_reports_created_files_as_json(swift: Swift) -> None:
    container = swift.container()
    result = extract(swift, container, tar_bytes({"x/1": b"1", "x/2": b"22"}))
    assert result == {"Response Status": "201 Created", "Response Body": "",
                      "Number Files Created": 2, "Errors": []}


@pytest.mark.parametrize("compression", ["gz", "bz2"])
def test_account_level_extract_creates_containers(swift: Swift, compression: str) -> None:
    c1, c2 = uniq(), uniq()
    files = {f"{c1}/one": b"1", f"{c1}/deep/two": b"2", f"{c2}/three": b"3",
             "top-level-file": b"ignored"}
    result = extract(swift, "", tar_bytes(files, compression=compression),
                     kind=f"tar.{compression}")
    assert result["Number Files Created"] == 3 and result["Errors"] == []
    assert sorted(swift.names(c1)) == ["deep/two", "one"]
    assert swift.names(c2) == ["three"]
    assert "top-level-file" not in swift.names()


def test_extract_under_a_prefix_with_metadata_and_xattrs(swift: Swift) -> None:
    container = swift.container()
    pax = {"f.py": {"SCHILY.xattr.user.mime_type": "application/x-test",
                    "SCHILY.xattr.user.meta.lunch": "burger",
                    "LIBARCHIVE.xattr.user.meta.dinner": "ziti ✓",
                    "SCHILY.xattr.user.stuff": "ignored",
                    "SCHILY.xattr.user.meta.bad name": "skipped"}}
    extract(swift, f"{container}/pre/fix/", tar_bytes({"f.py": b"print()"}, pax=pax),
            **{"X-Object-Meta-Batch": "42", "X-Delete-After": "3600"})
    assert swift.names(container) == ["pre/fix/f.py"]
    head = swift.request("HEAD", f"{container}/pre/fix/f.py").headers
    assert head["content-type"] == "application/x-test"
    assert head["x-object-meta-lunch"] == "burger"
    assert head["x-object-meta-dinner"] == "ziti ✓"
    assert head["x-object-meta-batch"] == "42" and "x-delete-at" in head
    assert not any(k.startswith("x-object-meta-stuff") or "bad" in k for k in head)


@pytest.mark.parametrize(("accept", "root"), [("application/xml", "extract"),
                                              ("text/xml", "extract")])
def test_extract_result_as_xml(swift: Swift, accept: str, root: str) -> None:
    container = swift.container()
    text = extract(swift, container, tar_bytes({"a": b"1"}), accept=accept)
    tree = ElementTree.fromstring(text.strip())
    assert tree.tag == root
    assert tree.findtext("number_files_created") == "1"
    assert tree.findtext("response_status") == "201 Created"


def test_extract_result_as_plain_text_by_default(swift: Swift) -> None:
    container = swift.container()
    response = swift.request("PUT", container, params={"extract-archive": "tar"},
                             content=tar_bytes({"a": b"1"}))
    assert response.status_code == 200
    assert response.text == ("Number Files Created: 1\nResponse Body: \n"
                             "Response Status: 201 Created\nErrors:\n")


def test_hostile_member_names_stay_inside_the_target(cloud: RunningCloud, swift: Swift) -> None:
    """Leading ``/`` and ``./`` are dropped; ``..`` is an opaque part of the object name
    (Swift never resolves names); links, directories and devices are skipped; nothing
    is written outside the object store."""
    container = swift.container()
    marker = f"escape-{uuid.uuid4().hex}"
    files = {f"../../../../tmp/{marker}": b"dots", f"/etc/{marker}": b"abs",
             f"./ok/{marker}": b"dot-slash", "fine": b"fine"}
    extra = [special(f"sym-{marker}", tarfile.SYMTYPE, "/etc/passwd"),
             special(f"hard-{marker}", tarfile.LNKTYPE, "fine"),
             special("dir", tarfile.DIRTYPE), special("dev", tarfile.CHRTYPE),
             special("fifo", tarfile.FIFOTYPE), special("blk", tarfile.BLKTYPE)]
    result = extract(swift, container, tar_bytes(files, extra=extra))
    assert result["Number Files Created"] == 4 and result["Errors"] == []
    assert sorted(swift.names(container)) == sorted(
        [f"../../../../tmp/{marker}", f"etc/{marker}", f"ok/{marker}", "fine"])
    status, _, body = raw_request(cloud.objectstore_url, "GET",
                                  swift.url(f"{container}/../../../../tmp/{marker}"),
                                  {"X-Auth-Token": swift.token or ""})
    assert (status, body) == (200, b"dots")
    assert not list(cloud.data_dir.parent.rglob(f"*{marker}*"))
    assert not Path("/tmp", marker).exists() and not Path("/etc", marker).exists()
    assert stray_files(cloud.data_dir) == []


def test_sparse_and_bad_utf8_members_are_reported(swift: Swift) -> None:
    container = swift.container()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="latin-1") as tar:
        for name in ("bad-\xff", "good"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        sparse = tarfile.TarInfo("sparse")
        sparse.type, sparse.size = tarfile.GNUTYPE_SPARSE, 0
        tar.addfile(sparse)
    result = extract(swift, container, buf.getvalue())
    assert result["Number Files Created"] == 1
    assert result["Response Status"] == "400 Bad Request"
    assert sorted(result["Errors"]) == [[f"{container}/bad-%FF", "412 Precondition Failed"],
                                        [f"{container}/sparse", "400 Bad Request"]]
    assert swift.names(container) == ["good"]


@pytest.mark.parametrize(("archive", "kind", "message"), [
    (b"", "tar", "Invalid Tar File: empty file"),
    (b"garbage" * 100, "tar", "Invalid Tar File: invalid header"),
    (b"garbage" * 100, "tar.gz", "Invalid Tar File: not a gzip file"),
    (b"BZh9" + b"garbage" * 100, "tar.bz2", "Invalid Tar File: invalid compressed data"),
])
def test_broken_archives_are_400_in_the_body(swift: Swift, archive: bytes, kind: str,
                                             message: str) -> None:
    container = swift.container()
    result = extract(swift, container, archive, kind=kind)
    assert result["Response Status"] == "400 Bad Request"
    assert result["Response Body"] == message
    assert result["Number Files Created"] == 0


def test_no_valid_files(swift: Swift) -> None:
    archive = tar_bytes({"only-top-level": b"1"}, extra=[special("d", tarfile.DIRTYPE)])
    result = extract(swift, "", archive)
    assert result["Response Status"] == "400 Bad Request"
    assert result["Response Body"] == "Invalid Tar File: No Valid Files"


def test_truncated_archive_keeps_what_came_before(swift: Swift) -> None:
    container = swift.container()
    archive = tar_bytes({"first": b"1" * 600, "second": os.urandom(100_000)})
    result = extract(swift, container, archive[:40_000])
    assert result["Response Status"] == "400 Bad Request"
    assert result["Response Body"] == "Invalid Tar File: unexpected end of data"
    assert result["Number Files Created"] == 1
    assert swift.names(container) == ["first"]


def test_unsupported_format_and_wrong_method(swift: Swift) -> None:
    container = swift.container()
    response = swift.request("PUT", container, params={"extract-archive": "zip"},
                             content=b"x")
    assert response.status_code == 400 and b"Unsupported archive format" in response.content
    response = swift.request("POST", container, params={"extract-archive": "tar"})
    assert response.status_code == 204  # not a PUT: a container POST like any other


def test_unacceptable_accept_header(swift: Swift) -> None:
    container = swift.container()
    response = swift.request("PUT", container, params={"extract-archive": "tar"},
                             content=tar_bytes({"a": b"1"}), headers={"Accept": "image/png"})
    assert response.status_code == 200
    assert "Response Status: 406 Not Acceptable" in response.text
    assert swift.names(container) == []


def test_anonymous_and_foreign_extracts_create_nothing(cloud: RunningCloud, swift: Swift,
                                                       owner: Persona) -> None:
    container = swift.container()
    anonymous = Swift(cloud.objectstore_url, swift.account, None)
    result = extract(anonymous, container, tar_bytes({"a": b"1"}))
    assert result["Response Status"] == "401 Unauthorized"
    stranger = owner.swift(swift.account)
    result = extract(stranger, container, tar_bytes({"a": b"1", "b": b"2"}))
    assert result["Response Status"] == "400 Bad Request"
    # the container's HEAD failed first (its full path), then each object
    assert result["Errors"] == [[swift.url(container), "403 Forbidden"],
                                [f"{container}/a", "403 Forbidden"],
                                [f"{container}/b", "403 Forbidden"]]
    other = uniq()
    result = extract(stranger, "", tar_bytes({f"{other}/a": b"1"}))
    assert result["Errors"] == [[swift.url(other), "403 Forbidden"],
                                [f"{other}/a", "403 Forbidden"]]
    assert swift.names(container) == []
    anonymous.close()


def test_extract_respects_container_quota(swift: Swift) -> None:
    container = swift.container(**{"X-Container-Meta-Quota-Count": "2"})
    result = extract(swift, container, tar_bytes({"a": b"1", "b": b"2", "c": b"3"}))
    assert result["Number Files Created"] == 2
    assert result["Errors"] == [[f"{container}/c", "413 Request Entity Too Large"]]


def test_expect_100_continue_and_chunked_upload(cloud: RunningCloud, swift: Swift) -> None:
    container = swift.container()
    archive = tar_bytes({"a": b"1" * 70_000, "b": b"2"}, compression="gz")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(archive), 1000):
            yield archive[start:start + 1000]

    response = httpx.put(f"{cloud.objectstore_url}{swift.url(container)}",
                         params={"extract-archive": "tar.gz"}, content=chunks(),
                         headers={"X-Auth-Token": swift.token or "",
                                  "Accept": "application/json"}, timeout=30)
    assert response.json()["Number Files Created"] == 2


def test_expect_100_continue_is_answered_before_the_result(cloud: RunningCloud,
                                                           swift: Swift) -> None:
    """The result's 200 comes once the body was sent: the client waiting for ``100
    Continue`` gets it first."""
    container = swift.container()
    archive = tar_bytes({"a": b"1"})
    head = (f"PUT {swift.url(container)}?extract-archive=tar HTTP/1.1\r\n"
            f"Host: localhost\r\nX-Auth-Token: {swift.token}\r\n"
            f"Accept: application/json\r\nExpect: 100-continue\r\n"
            f"Content-Length: {len(archive)}\r\nConnection: close\r\n\r\n").encode()
    port = int(cloud.objectstore_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(archive)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b'"Number Files Created": 1' in answer


def test_extraction_limits(limited_swift: Swift) -> None:
    names = [uniq() for _ in range(3)]
    result = extract(limited_swift, "", tar_bytes({f"{n}/o": b"x" for n in names}))
    assert result["Response Status"] == "400 Bad Request"
    assert result["Response Body"] == "More than 2 containers to create from tar."
    assert result["Number Files Created"] == 2
    container = limited_swift.container()
    bad = {f"bad-{i}-\udcff": b"x" for i in range(4)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in [*bad, "after"]:
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    result = extract(limited_swift, container, buf.getvalue())
    assert len(result["Errors"]) == 2 and result["Number Files Created"] == 0


# -- bulk-delete -----------------------------------------------------------------------------------
def test_swift_cli_deletes_a_container_with_bulk_delete(cloud: RunningCloud,
                                                        swift: Swift) -> None:
    container = swift.container()
    for i in range(25):
        swift.put(f"{container}/obj-{i:02d}", b"x")
    assert cloud.log_path is not None
    start = cloud.log_path.stat().st_size
    run_cli(cloud, "swift", "delete", container)
    assert swift.request("HEAD", container).status_code == 404
    with cloud.log_path.open("rb") as log:
        log.seek(start)
        assert b"bulk-delete" in log.read()


def test_bulk_delete_objects_then_containers(swift: Swift) -> None:
    container = swift.container()
    names = ["a", "sub/b", "ünï cødé%", "x"]
    for name in names:
        swift.put(f"{container}/{name}", b"1")
    paths = [f"/{container}"] + [f"/{container}/{n}" for n in names] + [f"{container}/gone"]
    result = bulk_delete(swift, paths)
    assert result == {"Response Status": "200 OK", "Response Body": "", "Number Deleted": 5,
                      "Number Not Found": 1, "Errors": []}
    assert swift.request("HEAD", container).status_code == 404


def test_bulk_delete_reports_non_empty_containers_and_bad_names(swift: Swift) -> None:
    container = swift.container()
    swift.put(f"{container}/keep", b"1")
    body = f"/{container}\n/{container}/%FF\n\n".encode()
    response = swift.request("DELETE", "", params={"bulk-delete": "1"}, content=body,
                             headers={"Accept": "application/json"})
    result = response.json()
    assert result["Response Status"] == "400 Bad Request"
    assert sorted(result["Errors"]) == [[f"/{container}", "409 Conflict"],
                                        [f"/{container}/%FF", "412 Precondition Failed"]]


def test_bulk_delete_as_xml_on_an_object_path(swift: Swift) -> None:
    """Swift's functional test: DELETE on the object's own path with ``?bulk-delete``."""
    container = swift.container()
    swift.put(f"{container}/obj", b"1")
    response = swift.request("DELETE", f"{container}/obj", params={"bulk-delete": ""},
                             content=f"{container}/obj".encode(),
                             headers={"Accept": "application/xml",
                                      "Content-Type": "text/plain"})
    tree = ElementTree.fromstring(response.content.strip())
    assert tree.tag == "delete"
    assert tree.findtext("response_status") == "200 OK"
    assert tree.findtext("number_deleted") == "1"


def test_bulk_delete_refusals(cloud: RunningCloud, swift: Swift, owner: Persona) -> None:
    result = bulk_delete(swift, ["/nothing-here/at-all"])
    assert (result["Number Not Found"], result["Response Status"]) == (1, "200 OK")
    result = bulk_delete(swift, [])
    assert result["Response Status"] == "400 Bad Request"
    assert result["Response Body"] == "Invalid bulk delete."
    response = swift.request("POST", "", params={"bulk-delete": ""}, content=b"/c/o",
                             headers={"Content-Type": "application/json"})
    assert "Response Status: 406 Not Acceptable" in response.text
    status, _, body = raw_request(cloud.objectstore_url, "DELETE",
                                  f"{swift.url()}?bulk-delete",
                                  {"X-Auth-Token": swift.token or ""})
    assert status == 200 and b"Response Status: 411 Length Required" in body
    container = swift.container()
    swift.put(f"{container}/o", b"1")
    result = bulk_delete(owner.swift(swift.account), [f"/{container}/o"])
    assert result["Errors"] == [[f"/{container}/o", "403 Forbidden"]]
    anonymous = Swift(cloud.objectstore_url, swift.account, None)
    result = bulk_delete(anonymous, [f"/{container}/o"])
    assert result["Errors"] == [[f"/{container}/o", "401 Unauthorized"]]
    anonymous.close()
    assert swift.names(container) == ["o"]


def test_bulk_delete_limits(limited_swift: Swift) -> None:
    result = bulk_delete(limited_swift, [f"/c/{i}" for i in range(6)])
    assert result["Response Status"] == "413 Request Entity Too Large"
    assert result["Response Body"] == "Maximum Bulk Deletes: 5 per request"
    containers = [limited_swift.container() for _ in range(3)]
    for name in containers:
        limited_swift.put(f"{name}/o", b"1")
    result = bulk_delete(limited_swift, containers)
    assert result["Response Status"] == "400 Bad Request"
    assert result["Response Body"] == "Max delete failures exceeded"
    long_line = "/c/" + "x" * 5000
    result = bulk_delete(limited_swift, [long_line])
    assert result["Response Body"] == "Invalid File Name"


def test_service_user_bulk_delete_with_keystone_persona(keystone: Keystone) -> None:
    persona = keystone.persona("member")
    client = persona.swift()
    container = client.container()
    client.put(f"{container}/o", b"1")
    result = bulk_delete(client, [f"/{container}/o", f"/{container}"])
    assert result["Number Deleted"] == 2
    client.close()
