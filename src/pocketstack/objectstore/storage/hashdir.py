"""Which files of an object's hash directory count: pure rules, shared by every DiskFile.

A hash directory holds files named ``<timestamp>.data`` (a PUT), ``<timestamp>.meta`` (a
POST) and ``<timestamp>.ts`` (a DELETE: a tombstone). `resolve` decides, from names alone:

1. Files are ordered newest first; at equal timestamps ``.ts`` > ``.meta`` > ``.data``.
2. The newest ``.data`` or ``.ts`` wins. Every older ``.data``/``.ts`` is obsolete.
3. The newest ``.meta`` newer than the winner is kept (it applies to a winning ``.data``;
   under a tombstone it is kept but ignored, in case replication later brings a ``.data``
   between the two). Every other ``.meta`` is obsolete: a POST replaces the previous one.
4. With a reclaim time, a winning tombstone older than it is obsolete too (and then so is
   a kept ``.meta`` older than it), so deleted objects eventually vanish from disk.
5. Names that are not ``<timestamp>.<ext>`` (rsync temp files, junk) are ignored: never
   chosen, never removed.

`merge_metadata` applies a ``.meta`` to a ``.data``'s metadata as Swift does: the POST's
metadata replaces the user metadata wholesale, but the data file's system metadata (name,
Content-Length, ETag, X-Static-Large-Object, X-Object-Sysmeta-*) always stays, and its
Content-Type stays unless the POST sets one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from pocketstack.objectstore.storage.exceptions import DiskFileCollision
from pocketstack.objectstore.storage.fileformat import CorruptObjectFile
from pocketstack.objectstore.storage.types import Metadata
from pocketstack.objectstore.timestamp import Timestamp

DATA: Final = ".data"
META: Final = ".meta"
TOMBSTONE: Final = ".ts"
_RANK: Final = {DATA: 0, META: 1, TOMBSTONE: 2}

NAME_KEY: Final = "name"
TIMESTAMP_KEY: Final = "X-Timestamp"
LENGTH_KEY: Final = "Content-Length"
ETAG_KEY: Final = "ETag"
CONTENT_TYPE_KEY: Final = "Content-Type"
DELETE_AT_KEY: Final = "X-Delete-At"
_DATA_SYSTEM_KEYS: Final = frozenset({"name", "content-length", "etag", "x-static-large-object"})
_SYSMETA_PREFIX: Final = "x-object-sysmeta-"


@dataclass(frozen=True)
class ObjectFileName:
    """A parsed ``<timestamp>.<ext>`` file name."""

    timestamp: Timestamp
    ext: str

    @property
    def filename(self) -> str:
        return self.timestamp.internal + self.ext

    @classmethod
    def parse(cls, filename: str) -> ObjectFileName | None:
        """The parsed name, or None if ``filename`` is not an object file's name."""
        stem, dot, ext = filename.rpartition(".")
        if not dot or "." + ext not in _RANK or len(stem) < 16:
            return None
        try:
            timestamp = Timestamp(stem)
        except ValueError:
            return None
        if timestamp.internal != stem:
            return None
        return cls(timestamp, "." + ext)

    def sort_key(self) -> tuple[Timestamp, int]:
        return (self.timestamp, _RANK[self.ext])


@dataclass(frozen=True)
class HashDirState:
    """What a hash directory means: the winning file, the live .meta, and what to delete."""

    data: ObjectFileName | None = None
    tombstone: ObjectFileName | None = None
    meta: ObjectFileName | None = None
    obsolete: tuple[str, ...] = ()


def resolve(filenames: Iterable[str], *, reclaim_before: Timestamp | None = None) -> HashDirState:
    """Apply the rules of the module docstring to a directory listing."""
    files = sorted(
        (parsed for name in filenames if (parsed := ObjectFileName.parse(name)) is not None),
        key=ObjectFileName.sort_key,
        reverse=True,
    )
    winner: ObjectFileName | None = None
    meta: ObjectFileName | None = None
    obsolete: list[str] = []
    for file in files:
        if file.ext == META:
            if winner is None and meta is None:
                meta = file
            else:
                obsolete.append(file.filename)
        elif winner is None:
            winner = file
        else:
            obsolete.append(file.filename)
    if reclaim_before is not None:
        if winner is not None and winner.ext == TOMBSTONE and winner.timestamp < reclaim_before:
            obsolete.append(winner.filename)
            winner = None
        if winner is None and meta is not None and meta.timestamp < reclaim_before:
            obsolete.append(meta.filename)
            meta = None
    if winner is not None and winner.ext == TOMBSTONE:
        return HashDirState(tombstone=winner, meta=meta, obsolete=tuple(obsolete))
    return HashDirState(data=winner, meta=meta, obsolete=tuple(obsolete))


def files_to_push(local: Iterable[str], remote: Iterable[str]) -> list[str]:
    """The files of one replica (``local``, its live files of an object) that another
    replica holding ``remote`` lacks and would keep: what replication sends. The winner
    (``.data`` or ``.ts``) comes first, so a ``.meta`` never arrives before its data.

    >>> files_to_push(["0000000002.00000.ts"], ["0000000001.00000.data"])
    ['0000000002.00000.ts']
    >>> files_to_push(["0000000001.00000.data"], ["0000000002.00000.ts"])
    []
    """
    have = set(remote)
    wanted = []
    parsed = [f for name in local if (f := ObjectFileName.parse(name)) is not None]
    for file in sorted(parsed, key=lambda f: (f.ext == META, f.sort_key())):
        if file.filename in have:
            continue
        if file.filename not in resolve([*have, file.filename]).obsolete:
            have.add(file.filename)
            wanted.append(file.filename)
    return wanted


def _is_data_system_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _DATA_SYSTEM_KEYS or lowered.startswith(_SYSMETA_PREFIX)


def merge_metadata(data_metadata: Mapping[str, str], meta_metadata: Mapping[str, str]) -> Metadata:
    """A .data's metadata with a newer .meta applied (see the module docstring)."""
    merged = dict(meta_metadata)
    has_content_type = any(k.lower() == "content-type" for k in meta_metadata)
    for key, value in data_metadata.items():
        if _is_data_system_key(key) or key.lower() == "content-type" and not has_content_type:
            merged[key] = value
    return merged


def delete_at(metadata: Mapping[str, str]) -> int | None:
    """X-Delete-At as an int, or None when absent or unparseable."""
    value = metadata.get(DELETE_AT_KEY)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def check_data_file(
    name: str, file: ObjectFileName, body_length: int, metadata: Mapping[str, str]
) -> None:
    """Validate a .data file's metadata against its name and size.

    DiskFileCollision if it belongs to another object; CorruptObjectFile if inconsistent.
    """
    if metadata.get(NAME_KEY) != name:
        raise DiskFileCollision(f"hash dir holds {metadata.get(NAME_KEY)!r}, not {name!r}")
    check_timestamp(file, metadata)
    if metadata.get(LENGTH_KEY) != str(body_length):
        raise CorruptObjectFile(
            f"Content-Length {metadata.get(LENGTH_KEY)!r} != body length {body_length}"
        )
    if not metadata.get(ETAG_KEY):
        raise CorruptObjectFile("no ETag")


def check_timestamp(file: ObjectFileName, metadata: Mapping[str, str]) -> None:
    """The file name's timestamp must be the X-Timestamp inside it."""
    if metadata.get(TIMESTAMP_KEY) != file.timestamp.internal:
        raise CorruptObjectFile(
            f"X-Timestamp {metadata.get(TIMESTAMP_KEY)!r} != file name {file.filename}"
        )


def suffix_hash(hash_dirs: Iterable[tuple[str, Iterable[str]]]) -> str:
    """md5 of a suffix's contents: every ``<hash>/<file>`` name, in sorted order.

    Two replicas of a suffix hash equal exactly when they hold the same files, which is
    what a replicator compares before syncing.
    """
    digest = hashlib.md5(usedforsecurity=False)
    for name_hash, filenames in sorted(hash_dirs):
        for filename in sorted(filenames):
            digest.update(f"{name_hash}/{filename}\n".encode())
    return digest.hexdigest()
