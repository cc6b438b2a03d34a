"""Headers in, metadata out: which request headers an entity stores, and how they come back.

Swift stores user metadata (``X-<Type>-Meta-*``), a few system headers per entity type, and
removes a key when a client sends ``X-Remove-<Type>-Meta-*`` or an empty value. Keys are
stored Title-Cased (``X-Container-Meta-Color``) so the same name always lands on one key.
Values are wire strings (the header's bytes read as latin-1), so UTF-8 values come back
byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pocketstack.objectstore.proxy.request import Request

# Container headers stored as metadata besides X-Container-Meta-* (ACLs and features).
CONTAINER_STORED = ("x-container-read", "x-container-write")
# Swift's ``swift_owner_headers``: only the account's owners see them in responses or set
# them in container PUT/POST (others' values are dropped silently, as Swift does).
OWNER_HEADERS = frozenset({
    "x-container-read", "x-container-write", "x-container-sync-key", "x-container-sync-to",
    "x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2",
    "x-container-meta-temp-url-key", "x-container-meta-temp-url-key-2",
    "x-account-access-control"})
OBJECT_STORED = ("content-encoding", "content-disposition", "content-language",
                 "x-delete-at", "x-object-manifest", "x-static-large-object",
                 "cache-control", "expires")


def title(name: str) -> str:
    """A header name as Swift stores and sends it: ASCII ``str.title()`` of the wire name
    (``x-object-meta-a1b`` -> ``X-Object-Meta-A1B``; bytes above ASCII unchanged)."""
    return name.encode("latin-1", "surrogateescape").title().decode("latin-1")


def entity_metadata(req: Request, kind: str, *, stored: Iterable[str] = ()) -> dict[str, str]:
    """The metadata a PUT/POST of ``kind`` (account, container, object) sets or removes;
    removals map to an empty value (the storage layer drops the key)."""
    meta_prefix = f"x-{kind}-meta-"
    sysmeta_prefix = f"x-{kind}-sysmeta-"
    remove_prefix = f"x-remove-{kind}-meta-"
    wanted = set(stored)
    out: dict[str, str] = {}
    for name, value in req.headers.items():
        lower = name.lower()
        if lower.startswith(remove_prefix):
            out[title(meta_prefix + lower[len(remove_prefix):])] = ""
        elif lower.startswith((meta_prefix, sysmeta_prefix)) or lower in wanted:
            # system metadata comes from the proxy's own sub-requests only: the gatekeeper
            # (``gatekeeper.inbound``) removes it from every client request
            out[title(lower)] = value.strip(" \t")  # OWS only: \x85, \xa0 are UTF-8 bytes
    for name in wanted:
        removal = f"x-remove-{name.removeprefix('x-')}"
        if removal in req.headers:
            out[title(name)] = ""
    return out


def user_metadata(metadata: Mapping[str, str], kind: str) -> dict[str, str]:
    """The stored ``X-<Kind>-Meta-*`` entries (what a HEAD returns)."""
    prefix = f"x-{kind}-meta-"
    return {k: v for k, v in metadata.items() if k.lower().startswith(prefix) and v != ""}


def meta_items(metadata: Mapping[str, str], kind: str) -> dict[str, str]:
    """User metadata only, for the limits check (names without the prefix)."""
    prefix = f"x-{kind}-meta-"
    return {k[len(prefix):]: v for k, v in metadata.items() if k.lower().startswith(prefix)}


def without_owner_headers(items: Mapping[str, str]) -> dict[str, str]:
    """``items`` (headers or metadata) without the owners-only ones (``OWNER_HEADERS``)."""
    return {k: v for k, v in items.items() if k.lower() not in OWNER_HEADERS}
