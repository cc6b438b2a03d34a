"""Where object versioning keeps versions: names in the reserved namespace, pure functions.

Names of the reserved namespace start with NUL, which no client can send (a NUL in a path
is 412), so clients can neither see nor touch them except through the versioning API::

    versions container   \\x00versions\\x00<container>
    version object       \\x00<object>\\x00<inverted version id>

A version id is the internal form of the timestamp of the write that made the version
(without offset: ``1700000000.12345``). It is stored *inverted* (``~t``, Swift's
``Timestamp.__invert__``), so that a container listing shows the versions of one object
newest first, and the ``\\x00`` separator keeps every object's versions together and in the
order of the object names.
"""

from __future__ import annotations

from urllib.parse import quote

from pocketstack.objectstore.timestamp import MAX_OFFSET, Timestamp

RESERVED = "\x00"
MAX_RAW_TIME = 10**15 - 1  # Swift's: the largest time in ticks of 10 microseconds
DELETE_MARKER = "application/x-deleted;swift_versions_deleted=1"
CLIENT_ENABLED = "x-versions-enabled"
ENABLED = "X-Container-Sysmeta-Versions-Enabled"
VERSIONS_CONTAINER = "X-Container-Sysmeta-Versions-Container"
LEGACY_LOCATION = "X-Container-Sysmeta-Versions-Location"
VERSIONS_SYMLINK = "X-Object-Sysmeta-Versions-Symlink"
NULL = "null"


def invert(stamp: Timestamp) -> Timestamp:
    """``~stamp`` as Swift computes it: later times give smaller values."""
    if not stamp.offset:
        return Timestamp.from_raw(MAX_RAW_TIME - stamp.raw)
    return Timestamp.from_raw(MAX_RAW_TIME - stamp.raw - 1,
                              offset=MAX_OFFSET + 1 - stamp.offset)


def reserved_name(*parts: str) -> str:
    """``\\x00`` + the parts joined by ``\\x00`` (ValueError if a part holds one)."""
    if any(RESERVED in part for part in parts):
        raise ValueError("a reserved name's parts cannot hold NUL")
    return RESERVED + RESERVED.join(parts)


def versions_container(container: str) -> str:
    return reserved_name("versions", container)


def object_prefix(obj: str) -> str:
    """The prefix every version of ``obj`` shares (a listing ``prefix`` or ``marker``)."""
    return reserved_name(obj, "")


def version_object(obj: str, version_id: str) -> str:
    return reserved_name(obj, invert(Timestamp(version_id)).internal)


def parse_version_object(name: str) -> tuple[str, str | None]:
    """(object name, version id) of a version object; (name, None) for anything else."""
    parts = name.split(RESERVED)
    if len(parts) != 3 or parts[0]:
        return name, None
    try:
        return parts[1], invert(Timestamp(parts[2])).internal
    except ValueError:
        return name, None


def version_id_of(stamp: Timestamp | str) -> str:
    """The version id of a write at ``stamp`` (its offset dropped)."""
    return Timestamp.from_raw(Timestamp(stamp).raw).internal


def valid_version_id(value: str, *, allow_null: bool = True) -> bool:
    if value == NULL:
        return allow_null
    try:
        Timestamp(value)
    except ValueError:
        return False
    return True


def quoted(path: str) -> str:
    """A path as a header shows it (percent-encoded UTF-8, ``/`` kept)."""
    return quote(path.encode("utf-8"), safe="/")
