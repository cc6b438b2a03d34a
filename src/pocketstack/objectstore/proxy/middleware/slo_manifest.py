"""Static large object manifests: the client's form, the stored form, and their checks.

What a client PUTs (``?multipart-manifest=put``) is a JSON list of segments, each either
``{"path": "/container/object", "etag": ..., "size_bytes": ..., "range": "a-b"}`` (only
``path`` required) or ``{"data": "<base64>"}``. `parse_input` checks its shape and answers
Swift's 400 with one line per bad segment (``Index 3: invalid range``). What is stored is
the list Swift stores, with what the proxy learned of each segment::

    {"name": "/c/o", "bytes": 1048576, "hash": "<md5>", "content_type": "...",
     "last_modified": "2024-01-01T00:00:00.000000", ["range": "0-99",] ["sub_slo": true]}
    {"data": "<base64>"}

and comes back from ``?multipart-manifest=get`` as is, or with ``&format=raw`` in the
client's form (`raw_manifest`). The large object's ETag is the MD5 of its segments'
ETags (``<etag>:<range>;`` for a ranged one, the MD5 of the bytes for inline data).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pocketstack.objectstore.exceptions import HTTPBadRequest
from pocketstack.objectstore.proxy.ranges import RangeSpec, parse_range_header

SLO_ETAG = "X-Object-Sysmeta-Slo-Etag"
SLO_SIZE = "X-Object-Sysmeta-Slo-Size"
OVERRIDE_ETAG = "X-Object-Sysmeta-Container-Update-Override-Etag"
REPORT_FORMATS = ("text/plain", "application/json", "application/xml", "text/xml")
_B64 = frozenset(string.ascii_letters + string.digits + "+/")


@dataclass
class InputSegment:
    """One segment as the client described it (``index`` in its list)."""

    index: int
    path: str | None = None
    etag: str | None = None
    size_bytes: int | None = None
    range: RangeSpec | None = None
    data: bytes | None = None


@dataclass
class Segment:
    """One segment as stored (see the module docstring); ``length`` is what it adds."""

    name: str | None = None
    size: int = 0
    """The whole segment object's size (``bytes`` in the stored form)."""
    hash: str = ""
    range: tuple[int, int] | None = None
    sub_slo: bool = False
    data: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.range is not None:
            return self.range[1] - self.range[0] + 1
        return self.size

    @property
    def etag_part(self) -> str:
        """This segment's contribution to the large object's ETag."""
        if self.data is not None:
            return hashlib.md5(self.data, usedforsecurity=False).hexdigest()
        if self.range is not None:
            return f"{self.hash}:{self.range[0]}-{self.range[1]};"
        return self.hash

    def stored(self) -> dict[str, Any]:
        if self.data is not None:
            return {"data": base64.b64encode(self.data).decode("ascii")}
        out: dict[str, Any] = {"name": self.name, "bytes": self.size, "hash": self.hash,
                               **self.extra}
        if self.range is not None:
            out["range"] = f"{self.range[0]}-{self.range[1]}"
        if self.sub_slo:
            out["sub_slo"] = True
        return out


def slo_etag(segments: Sequence[Segment]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for segment in segments:
        digest.update(segment.etag_part.encode("utf-8"))
    return digest.hexdigest()


# -- the client's manifest ---------------------------------------------------------------------
def b64decode_strict(value: object) -> bytes:
    """Base64 that is only Base64 (the stdlib skips junk): ValueError otherwise."""
    if not isinstance(value, str) or any(c not in _B64 for c in value.strip("=")):
        raise ValueError("not base64")
    try:
        return base64.b64decode(value)
    except binascii.Error as exc:
        raise ValueError("bad base64 padding") from exc


def parse_input(body: bytes, manifest_path: str, account_path: str) -> list[InputSegment]:
    """The client's manifest, checked (Swift's ``parse_and_validate_input``): 400 with its
    body for bad JSON or a bad segment. ``account_path``: ``/v1/<account>``."""
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise HTTPBadRequest("Manifest must be valid JSON.\n") from exc
    if not isinstance(parsed, list):
        raise HTTPBadRequest("Manifest must be a list.\n")
    errors: list[str] = []
    segments: list[InputSegment] = []
    for index, item in enumerate(parsed):
        problem = _check_item(index, item, len(parsed), manifest_path, account_path, segments)
        if problem is not None:
            errors.append(f"Index {index}: {problem}")
    if parsed and all(isinstance(i, dict) and "data" in i for i in parsed):
        errors.append("Inline data segments require at least one object-backed segment.")
    if errors:
        raise HTTPBadRequest("".join(e + "\n" for e in errors), content_type="text/plain")
    return segments


def _check_item(index: int, item: object, count: int, manifest_path: str,
                account_path: str, out: list[InputSegment]) -> str | None:
    if not isinstance(item, dict):
        return "not a JSON object"
    if "path" not in item and "data" not in item:
        return "expected keys to include one of 'data' or 'path'"
    kind = "data" if "data" in item else "path"
    allowed = {"data"} if kind == "data" else {"path", "etag", "size_bytes", "range"}
    extraneous = sorted(k for k in item if k not in allowed)
    if extraneous:
        return "extraneous keys " + ", ".join(json.dumps(k) for k in extraneous)
    if kind == "data":
        try:
            data = b64decode_strict(item["data"])
        except ValueError:
            return "data must be valid base64"
        if not data:
            return "too small; each segment must be at least 1 byte."
        out.append(InputSegment(index, data=data))
        return None
    return _check_path_item(index, item, count, manifest_path, account_path, out)


def _check_path_item(index: int, item: dict[str, Any], count: int, manifest_path: str,
                     account_path: str, out: list[InputSegment]) -> str | None:
    path, etag = item["path"], item.get("etag")
    if not isinstance(path, str):
        return '"path" must be a string'
    if etag is not None and not isinstance(etag, str):
        return '"etag" must be a string or null (if provided)'
    if "/" not in path.strip("/"):
        return ("path does not refer to an object. Path must be of the form "
                "/container/object.")
    size = item.get("size_bytes")
    if size is not None:
        try:
            size = int(size)
        except (TypeError, ValueError):
            return "invalid size_bytes"
        if size < 1 and index != count - 1:
            return "too small; each segment must be at least 1 byte."
    if f"{account_path}/{path.lstrip('/')}" == manifest_path:
        return "manifest must not include itself as a segment"
    spec: RangeSpec | None = None
    if item.get("range"):
        specs = parse_range_header(f"bytes={item['range']}") \
            if isinstance(item["range"], str) else None
        if not specs:
            return "invalid range"
        if len(specs) > 1:
            return "multiple ranges (only one allowed)"
        spec = specs[0]
        if size is not None and resolve_range(spec, size) is None:
            return "unsatisfiable range"
    out.append(InputSegment(index, path=path, etag=etag, size_bytes=size, range=spec))
    return None


def resolve_range(spec: RangeSpec, length: int) -> tuple[int, int] | None:
    """One range spec over ``length`` bytes, inclusive; None when unsatisfiable."""
    first, last = spec
    if length <= 0:
        return None
    if first is None:
        if not last:
            return None
        return max(length - last, 0), length - 1
    if first >= length:
        return None
    return first, length - 1 if last is None else min(last, length - 1)


# -- the stored manifest -----------------------------------------------------------------------
def load_segments(body: bytes) -> list[Segment]:
    """A stored manifest (ValueError when it is not one)."""
    items = json.loads(body)
    if not isinstance(items, list):
        raise ValueError("a manifest is a list")
    return [_segment(item) for item in items]


def _segment(item: object) -> Segment:
    if not isinstance(item, dict):
        raise ValueError("a manifest segment is an object")
    if "data" in item:
        return Segment(data=base64.b64decode(item["data"]))
    extra = {k: v for k, v in item.items()
             if k not in ("name", "bytes", "hash", "range", "sub_slo")}
    span = None
    if item.get("range"):
        first, _, last = str(item["range"]).partition("-")
        span = (int(first), int(last))
    size = int(item.get("bytes") or 0)
    if item.get("sub_slo"):
        size = _swift_bytes(str(item.get("content_type", ""))) or size
    return Segment(name=str(item["name"]), size=size, hash=str(item.get("hash", "")),
                   range=span, sub_slo=bool(item.get("sub_slo")), extra=extra)


def _swift_bytes(content_type: str) -> int | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key == "swift_bytes" and value.isdigit():
            return int(value)
    return None


def raw_manifest(body: bytes) -> bytes:
    """A stored manifest in the client's form (``format=raw``: ``path``, ``etag``,
    ``size_bytes``, ``range``; inline data as is), sorted keys, as Swift renders it."""
    items = json.loads(body)
    out = []
    for item in items:
        if "data" in item:
            out.append(item)
            continue
        raw = {k: v for k, v in item.items()
               if k not in ("content_type", "last_modified", "sub_slo", "name", "bytes",
                            "hash")}
        raw.update(path=item.get("name"), size_bytes=item.get("bytes"),
                   etag=item.get("hash"))
        out.append(raw)
    return json.dumps(out, sort_keys=True).encode("utf-8")


# -- reports (bulk-style bodies) ---------------------------------------------------------------
def report_body(media: str, fields: dict[str, Any], errors: Sequence[Sequence[str]],
                root: str) -> bytes:
    """Swift's ``get_heartbeat_response_body``: the outcome of a manifest PUT or DELETE as
    JSON, XML or ``Key: value`` lines, then the per-item errors."""
    if media == "application/json":
        return json.dumps({**fields, "Errors": [list(e) for e in errors]}).encode("ascii")
    if media.endswith("/xml"):
        # imported here: xml.sax.saxutils brings urllib.request, 3 ms of every start, for
        # the rare client that asks for XML
        from xml.sax.saxutils import escape

        out = [f"<{root}>\n"]
        for key in sorted(fields):
            tag = key.replace(" ", "_").lower()
            out.append(f"<{tag}>{escape(str(fields[key]))}</{tag}>\n")
        out.append("<errors>\n")
        out += [f"<object><name>{escape(n)}</name><status>{escape(s)}</status></object>\n"
                for n, s in errors]
        out.append(f"</errors>\n</{root}>\n")
        return "".join(out).encode("utf-8")
    lines = [f"{key}: {fields[key]}\n" for key in sorted(fields)]
    lines.append("Errors:\n")
    lines += [f"{name}, {status}\n" for name, status in errors]
    return "".join(lines).encode("utf-8")
