"""The one place where account/container/object names become hashes.

Both the ring (which partition?) and the storage layer (which directory?) need the same
hash of a path, salted with the cluster's secret prefix and suffix so that users cannot
choose names that pile up on one partition. As in Swift, the salt must never change once
a cluster holds data: every placement and every on-disk directory name depends on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PathHasher:
    """Hashes `/account[/container[/object]]` with the cluster's secret prefix and suffix."""

    prefix: bytes = b""
    suffix: bytes = b""

    def digest(self, account: str, container: str | None = None, obj: str | None = None) -> bytes:
        """Raw 16-byte md5 digest of the salted path (what the ring takes its partition from)."""
        if obj is not None and container is None:
            raise ValueError("an object path needs a container")
        parts = [account]
        if container is not None:
            parts.append(container)
        if obj is not None:
            parts.append(obj)
        path = ("/" + "/".join(parts)).encode("utf-8", "surrogateescape")
        return hashlib.md5(self.prefix + path + self.suffix, usedforsecurity=False).digest()

    def hexdigest(self, account: str, container: str | None = None, obj: str | None = None) -> str:
        """Hex digest of the salted path (what the storage layer names directories with)."""
        return self.digest(account, container, obj).hex()
