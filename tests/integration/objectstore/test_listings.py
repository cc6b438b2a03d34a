"""Account and container listings: formats, paging, prefixes, delimiters, byte order."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from swiftclient.client import Connection
from tests.integration.objectstore.support import Persona, Swift, eventually, md5, uniq

# UTF-8 byte order differs from UTF-16 order (the emoji's surrogates sort before U+FB01)
# and from case-insensitive order; names are bytes, so NFC and NFD forms are two objects.
NAMES = ["B", "a", "a/b", "a/c/d", "a/c/e", "ab", "z", "\u00e9", "e\u0301", "ﬁ", "😀",
         "日本/x", "a b", "a%2Fb"]


def utf8_sorted(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: n.encode("utf-8"))


def filled(swift: Swift, names: list[str] = NAMES) -> str:
    name = swift.container()
    for obj in names:
        swift.put(f"{name}/{obj}", obj.encode(), **{"Content-Type": "text/x-name"})
    return name


def test_json_listing_is_utf8_byte_ordered(swift: Swift) -> None:
    name = filled(swift)
    listing = swift.listing(name)
    assert [e["name"] for e in listing] == utf8_sorted(NAMES)
    entry = next(e for e in listing if e["name"] == "日本/x")
    assert entry["bytes"] == len("日本/x".encode())
    assert entry["hash"] == md5("日本/x".encode())
    assert entry["content_type"] == "text/x-name"
    assert set(entry) == {"name", "bytes", "hash", "content_type", "last_modified"}
    assert entry["last_modified"].count(":") == 2 and "T" in entry["last_modified"]


def test_plain_and_xml_and_accept(swift: Swift) -> None:
    name = filled(swift, ["x", "y/z", "ü"])
    plain = swift.get(name)
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert plain.content.decode() == "x\ny/z\nü\n"
    xml = swift.request("GET", name, params={"format": "xml"})
    assert xml.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(xml.content)
    assert root.tag == "container" and root.get("name") == name
    assert [o.findtext("name") for o in root.findall("object")] == ["x", "y/z", "ü"]
    assert root.find("object/hash").text == md5(b"x")  # type: ignore[union-attr]
    by_accept = swift.request("GET", name, headers={"Accept": "application/json"})
    assert by_accept.headers["content-type"] == "application/json; charset=utf-8"
    assert [e["name"] for e in by_accept.json()] == ["x", "y/z", "ü"]
    delimited = swift.request("GET", name, params={"format": "xml", "delimiter": "/"})
    subdir = ET.fromstring(delimited.content).find("subdir")
    assert subdir is not None and subdir.get("name") == "y/"
    assert subdir.findtext("name") == "y/"


def test_empty_listings_204_plain_200_json(swift: Swift, owner: Persona) -> None:
    name = swift.container()
    plain = swift.get(name)
    assert plain.status_code == 204 and plain.content == b""
    assert plain.headers["x-container-object-count"] == "0"
    as_json = swift.request("GET", name, params={"format": "json"})
    assert as_json.status_code == 200 and as_json.json() == []
    as_xml = swift.request("GET", name, params={"format": "xml"})
    assert as_xml.status_code == 200
    assert ET.fromstring(as_xml.content).get("name") == name
    own = owner.swift()
    assert own.get("").status_code == 204  # a fresh account: no containers yet
    assert own.request("GET", params={"format": "json"}).json() == []
    assert own.request("HEAD").status_code == 204


def test_marker_end_marker_limit_reverse(swift: Swift) -> None:
    name = filled(swift)
    ordered = utf8_sorted(NAMES)
    assert swift.names(name, limit="3") == ordered[:3]
    assert swift.names(name, marker="a") == ordered[ordered.index("a") + 1:]
    assert swift.names(name, end_marker="ab") == ordered[:ordered.index("ab")]
    assert swift.names(name, marker="a", end_marker="z") == \
        ordered[ordered.index("a") + 1:ordered.index("z")]
    assert swift.names(name, reverse="true") == ordered[::-1]
    assert swift.names(name, reverse="true", limit="2") == ordered[::-1][:2]
    assert swift.names(name, reverse="on", marker="ab") == \
        ordered[:ordered.index("ab")][::-1]
    assert swift.names(name, marker="é") == ordered[ordered.index("é") + 1:]
    # paging: fetch everything two at a time with the last name as marker
    seen: list[str] = []
    while page := swift.names(name, limit="2", marker=seen[-1] if seen else ""):
        seen += page
    assert seen == ordered


def test_prefix_delimiter_path(swift: Swift) -> None:
    name = filled(swift, ["a/1", "a/2", "a/b/3", "a/c/", "b/4", "top", "a-x"])
    assert swift.names(name, prefix="a/") == ["a/1", "a/2", "a/b/3", "a/c/"]
    assert swift.names(name, delimiter="/") == ["a-x", "a/", "b/", "top"]
    assert swift.names(name, prefix="a/", delimiter="/") == ["a/1", "a/2", "a/b/", "a/c/"]
    assert swift.names(name, path="a") == ["a/1", "a/2", "a/c/"]
    assert swift.names(name, delimiter="/", reverse="true") == ["top", "b/", "a/", "a-x"]
    assert swift.names(name, prefix="zz") == []
    plain = swift.request("GET", name, params={"delimiter": "/"}).text
    assert plain == "a-x\na/\nb/\ntop\n"


def test_listing_limits(swift: Swift) -> None:
    name = swift.container()
    assert swift.request("GET", name, params={"limit": "10001"}).status_code == 412
    assert swift.request("GET", name, params={"limit": "10000"}).status_code == 204
    assert swift.request("GET", name, params={"limit": "abc"}).status_code == 204
    bad = swift.request("GET", name, raw=False, params={"format": "json"},
                        headers={"Accept": "text/html"})
    assert bad.status_code == 200  # format= wins over Accept
    assert swift.request("GET", name, headers={"Accept": "image/png"}).status_code == 406


def test_account_listing(owner: Persona) -> None:
    own = owner.swift()
    for container in ("alpha", "beta", "beta-2", "gamma-x", "ünï"):
        own.ok("PUT", container)
    own.put("beta/obj", b"12345")
    assert own.names() == ["alpha", "beta", "beta-2", "gamma-x", "ünï"]
    assert own.names(prefix="beta") == ["beta", "beta-2"]
    assert own.names(delimiter="-") == ["alpha", "beta", "beta-", "gamma-", "ünï"]
    assert own.names(prefix="gamma", delimiter="-") == ["gamma-"]
    assert own.names(marker="beta", limit="2") == ["beta-2", "gamma-x"]
    assert own.names(end_marker="beta-2") == ["alpha", "beta"]
    assert own.names(reverse="true") == ["ünï", "gamma-x", "beta-2", "beta", "alpha"]

    def counted() -> None:
        entry = next(e for e in own.listing() if e["name"] == "beta")
        assert (entry["count"], entry["bytes"]) == (1, 5)
        assert set(entry) >= {"name", "count", "bytes", "last_modified"}

    eventually(counted)
    xml = own.request("GET", params={"format": "xml"})
    root = ET.fromstring(xml.content)
    assert root.tag == "account" and root.get("name") == owner.account
    assert [c.findtext("name") for c in root.findall("container")][:2] == ["alpha", "beta"]
    assert own.get("").text.splitlines()[0] == "alpha"


def test_swiftclient_full_listing(conn: Connection) -> None:
    name = uniq()
    conn.put_container(name)
    names = [f"obj-{i:03d}" for i in range(25)]
    for obj in names:
        conn.put_object(name, obj, b"")
    _, page = conn.get_container(name, limit=10)
    assert [o["name"] for o in page] == names[:10]
    _, everything = conn.get_container(name, full_listing=True, limit=7)
    assert [o["name"] for o in everything] == names


def test_swiftclient_listing_parameters(conn: Connection) -> None:
    name = uniq()
    conn.put_container(name)
    for obj in ("a/1", "a/2", "a/b/3", "b", "c"):
        conn.put_object(name, obj, obj.encode())
    get = conn.get_container
    assert [o.get("name", o.get("subdir")) for o in get(name, delimiter="/")[1]] == \
        ["a/", "b", "c"]
    assert [o["name"] for o in get(name, prefix="a/", marker="a/1")[1]] == ["a/2", "a/b/3"]
    assert [o["name"] for o in get(name, end_marker="b")[1]] == ["a/1", "a/2", "a/b/3"]
    assert [o["name"] for o in get(name, path="a")[1]] == ["a/1", "a/2"]
    assert [o["name"] for o in get(name, headers={"X-Newest": "true"}, limit=2)[1]] == \
        ["a/1", "a/2"]
    _, containers = conn.get_account(prefix=name, limit=1)
    assert [c["name"] for c in containers] == [name]
