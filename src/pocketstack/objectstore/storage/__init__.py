"""Object storage's storage layer: object files, account/container databases, nodes.

The proxy talks to `StorageNode` (contract in `node`); `LocalNode` implements it on this
host's devices. Below it: `diskfile` (object files; `mem_diskfile` is the in-memory twin),
`account_broker` and `container_broker` (SQLite per entity), `listing` (Swift listing
semantics) and `async_pending` (failed container updates). Replication's operations are
part of the contract too (`local_replication`, `remote_replication`; files as is:
`replica_files`). Outcomes are the exceptions of `exceptions`, each with its HTTP status;
data crossing the seam is in `types`.
"""

from typing import TYPE_CHECKING, Any

from pocketstack.objectstore.storage.local_node import LocalNode
from pocketstack.objectstore.storage.node import StorageNode

if TYPE_CHECKING:
    from pocketstack.objectstore.storage.remote_node import RemoteNode

__all__ = ["LocalNode", "RemoteNode", "StorageNode"]


def __getattr__(name: str) -> Any:
    # RemoteNode is imported on first use: it brings httpx (and httpx its CLI: rich,
    # pygments), ~45 ms of `pocketstack up`'s start, which a proxy whose devices are all
    # local never uses.
    if name == "RemoteNode":
        from pocketstack.objectstore.storage.remote_node import RemoteNode

        return RemoteNode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
