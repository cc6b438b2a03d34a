"""The storage-node wire format: names, documents, errors and frames round-trip exactly."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator

import pytest

from pocketstack.objectstore.storage import exceptions, wire
from pocketstack.objectstore.storage.types import (
    AccountInfo,
    AccountListing,
    AsyncPending,
    ContainerInfo,
    ContainerListing,
    ContainerRecord,
    ContainerUpdate,
    DatabaseRef,
    DatabaseState,
    DatabaseStatus,
    ListedObject,
    ObjectFile,
    ObjectInfo,
    ObjectRecord,
    ObjectStamp,
    PolicyStats,
    StampedValue,
    Subdir,
)
from pocketstack.objectstore.timestamp import Timestamp

pytestmark = pytest.mark.anyio
T1 = Timestamp("1700000000.12345")
T2 = Timestamp("1700000001.00000_000000000000002a")
HOSTILE = ["..", ".", "a/b", "../../etc/passwd", "%2F", "a?b#c", "é/😀", " sp ace ", "a//b/",
           "\udcff"]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_names_are_one_opaque_segment(name: str) -> None:
    path = wire.build_path("objects", "sda", 3, name)
    assert path.count("/") == 4 and "." not in path
    assert wire.split_path(path.encode("ascii")) == ["objects", "sda", "3", name]


def test_query_round_trip() -> None:
    params = {"prefix": "é&=+ /", "marker": "", "delimiter": "/"}
    assert wire.decode_query(wire.encode_query(params).encode()) == params


def test_object_info_round_trip() -> None:
    info = ObjectInfo("a", "c", "o/é", 2, T1, T2, 5, "e" * 32, "text/plain",
                      {"X-Object-Meta-Ü": "☃", "X-Delete-At": "100"})  # fmt: skip
    document = wire.encode(info)
    assert document.isascii() and json.loads(document)["timestamp"] == T1.internal
    assert wire.decode(ObjectInfo, document) == info


def test_listings_round_trip() -> None:
    cinfo = ContainerInfo("a", "c", T1, T1, Timestamp(0), T1, 3, 9, 1, T1, Timestamp(0), 3, 9,
                          "db-id", False, {"X-Container-Read": ".r:*"})  # fmt: skip
    listing = ContainerListing(
        cinfo, (ListedObject("o", T2.internal, 3, "t", "e"), Subdir("dir/"))
    )
    assert wire.decode_listing(ContainerListing, wire.encode_listing(listing)) == listing
    for bad in (["o", T2.internal, "3", "t", "e"], ["o", T2.internal, 3, "t"], {"name": "o"},
                ["o", "yesterday", 3, "t", "e"], ["o", "1.5", 3, "t", "e"]):
        document = json.dumps({"info": wire.to_doc(cinfo), "entries": [bad]}).encode()
        with pytest.raises(wire.WireFormatError):
            wire.decode_listing(ContainerListing, document)
    ainfo = AccountInfo("a", T1, T1, Timestamp(0), T1, False, 2, 3, 9, "id", False, {},
                        {0: PolicyStats(1, 2, 3), 7: PolicyStats(1, 1, 6)})  # fmt: skip
    accounts = AccountListing(ainfo, (ContainerRecord("c", T1, Timestamp(0), 3, 9),))
    assert wire.decode_listing(AccountListing, wire.encode_listing(accounts)) == accounts


def test_nested_and_request_documents() -> None:
    update = ContainerUpdate("a", "c", "o", T2, 5, "t", "e", True, 3)
    pending = AsyncPending("async_pending/abc/x", "sda", 3, update)
    assert wire.decode(AsyncPending, wire.encode(pending)) == pending
    row = wire.ObjectRowUpdate(T1, 1, "t", "e")
    assert wire.decode(wire.ObjectRowUpdate, wire.encode(row)) == row


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"[1]",
        b'{"v": 2}',
        b'{"v": 1, "account": "a"}',
        b'{"v": 1, "container_count": "1"}',
    ],
)
def test_bad_documents_are_refused(document: bytes) -> None:
    with pytest.raises(wire.WireFormatError):
        wire.decode(AccountInfo, document)


def test_unknown_keys_are_ignored_and_defaults_filled() -> None:
    doc = json.loads(wire.encode(wire.ObjectRowUpdate(T1, 1, "t", "e")))
    del doc["deleted"]
    doc["added_in_a_later_release"] = True
    assert wire.from_doc(wire.ObjectRowUpdate, doc) == wire.ObjectRowUpdate(T1, 1, "t", "e")


def _every_error_class() -> list[type[exceptions.StorageError]]:
    return [c for c in vars(exceptions).values()
            if inspect.isclass(c) and issubclass(c, exceptions.StorageError)]  # fmt: skip


def sample_error(cls: type[Exception]) -> Exception:
    """An instance of ``cls`` with every field it can carry set."""
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, object] = {"timestamp": T2} if "timestamp" in params else {}
    for name, value in (("content_length", 1234), ("status_deleted", True), ("delete_at", 99)):
        if name in params:
            kwargs[name] = value
    return cls(f"{cls.__name__}: é ☃ \n details", **kwargs)


def error_fields(error: BaseException) -> tuple[object, ...]:
    fields = ("timestamp", "content_length", "status_deleted", "delete_at")
    return (type(error), str(error), *(getattr(error, f, None) for f in fields))


@pytest.mark.parametrize("cls", [*_every_error_class(), ValueError], ids=lambda c: c.__name__)
def test_every_error_round_trips(cls: type[Exception]) -> None:
    error = sample_error(cls)
    document = wire.encode_error(error)
    decoded = wire.decode_error(wire.error_status(error), document.decode("ascii"))
    assert error_fields(decoded) == error_fields(error)


def test_unknown_error_class_maps_to_its_known_base() -> None:
    doc = {"v": 1, "error": ["BrandNewError", "NotFound", "StorageError"], "message": "m"}
    error = wire.decode_error(404, json.dumps(doc))
    assert type(error) is exceptions.NotFound and str(error) == "m"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(404, exceptions.NotFound), (502, exceptions.NodeUnavailable),
     (503, exceptions.NodeUnavailable), (507, exceptions.InsufficientStorage),
     (500, exceptions.StorageError), (418, exceptions.StorageError)],
)  # fmt: skip
def test_errors_without_a_document_go_by_status(
    status: int, expected: type[exceptions.StorageError]
) -> None:
    assert type(wire.decode_error(status, None)) is expected
    assert type(wire.decode_error(status, "garbage")) is expected


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("cut", [1, 3, 5, 7, 4096])
async def test_frames_survive_any_cut(cut: int) -> None:
    payloads = [b"x" * 10, b"", b"y" * 5000, b"z"]
    stream = b"".join(wire.frame(wire.FRAME_DATA, p) for p in payloads)
    stream += wire.frame(wire.FRAME_END)
    reader = wire.FrameReader(_pieces(stream, cut))
    got = [await reader.read() for _ in range(len(payloads) + 1)]
    assert got == [(wire.FRAME_DATA, p) for p in payloads] + [(wire.FRAME_END, b"")]


async def test_truncated_and_bad_frames() -> None:
    reader = wire.FrameReader(_pieces(wire.frame(wire.FRAME_DATA, b"abcdef")[:-2], 3))
    with pytest.raises(wire.TruncatedStream):
        await reader.read()
    with pytest.raises(wire.WireFormatError):
        await wire.FrameReader(_pieces(b"Q\x00\x00\x00\x01x", 10)).read()


def test_replication_documents_round_trip() -> None:
    status = DatabaseStatus(T1, T2, T1, T2, {"X-Container-Meta-K": StampedValue("é", T2)}, 2)
    for value in [
        ObjectStamp("a" * 32, (T1.internal + ".data", T2.internal + ".meta")),
        ObjectFile("b" * 32, T1.internal + ".data", 3, {"ETag": "e", "name": "/a/c/ü"}),
        DatabaseRef("a"),
        DatabaseRef("a", "c/ü"),
        DatabaseState("id", 12, status, 7, "f" * 32),
    ]:
        assert wire.decode(type(value), wire.encode(value)) == value


def test_rows_and_merges_round_trip() -> None:
    rows = [(3, ObjectRecord("o", T1, 1, "t", "e")), (9, ObjectRecord("p", T2, 0, "t", "e", True))]
    assert wire.decode_rows("containers", wire.encode_rows(rows)) == rows
    accounts = [(1, ContainerRecord("c", T1, T2, 3, 4, False, 1))]
    assert wire.decode_rows("accounts", wire.encode_rows(accounts)) == accounts
    status = DatabaseStatus(T1, T1, T1, T1)
    merge = wire.DatabaseMerge("id", 9, status)
    assert wire.decode_merge("containers", wire.encode_merge(merge, [r for _, r in rows])) == (
        merge,
        [r for _, r in rows],
    )
    with pytest.raises(wire.WireFormatError):
        wire.decode_rows("objects", wire.encode_rows(rows))
    with pytest.raises(wire.WireFormatError):
        wire.decode(ObjectStamp, b'{"v":1,"name_hash":"x","files":"not a list"}')
