"""Every outcome of the storage layer that is not a plain return value.

Each class carries the HTTP ``status`` (and ``title``) a storage node answers with, so the
proxy (or the storage-node server rendering them for a RemoteNode) maps them once, by MRO.
Foreign errors (OSError, sqlite3) are translated where they happen, ``raise ... from exc``::

    StorageError                     500  base class
    ├── BadRequest                   400  e.g. a body longer than its Content-Length
    ├── Forbidden                    403
    │   └── DiskFileCollision        403  the hash dir holds another name (md5 collision)
    ├── NotFound                     404  (``timestamp``: the tombstone's, when known)
    │   ├── DiskFileNotExist         404
    │   │   ├── DiskFileDeleted      404  a tombstone is newest
    │   │   │   └── DiskFileExpired  404  X-Delete-At has passed
    │   │   └── DiskFileQuarantined  404  the file was corrupt and has been moved aside
    │   ├── AccountNotFound          404  (``status_deleted``: X-Account-Status: Deleted)
    │   └── ContainerNotFound        404
    ├── Conflict                     409  an equal-or-newer timestamp exists; a non-empty
    │                                     container; a storage policy mismatch
    ├── RangeNotSatisfiable          416  (``content_length``)
    ├── EtagMismatch                 422  the body's md5 differs from the announced ETag
    ├── ClientDisconnect             499  the body ended before its Content-Length
    ├── DiskFileNotOpen              500  reader() before open()
    ├── DiskFileError                500  an unexpected OS error on a device
    ├── DatabaseError                500  (DatabaseQuarantined: corrupt DB moved aside)
    ├── LockTimeout                  503  a database stayed locked too long
    ├── NodeUnavailable              503  a remote storage node did not answer (refused,
    │                                     timed out, cut off mid-answer)
    └── InsufficientStorage          507
        ├── DeviceUnavailable        507  device directory missing or not mounted
        └── DiskFileNoSpace          507  ENOSPC / EDQUOT
"""

from __future__ import annotations

from typing import ClassVar

from pocketstack.objectstore.timestamp import Timestamp


class StorageError(Exception):
    """Base of every storage outcome; ``status`` is the HTTP status a node answers with."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, message: str = "", *, timestamp: Timestamp | None = None) -> None:
        super().__init__(message or self.title)
        self.timestamp = timestamp


class BadRequest(StorageError):
    status = 400
    title = "Bad Request"


class Forbidden(StorageError):
    status = 403
    title = "Forbidden"


class DiskFileCollision(Forbidden):
    """The object's hash directory holds an object with a different name."""


class NotFound(StorageError):
    status = 404
    title = "Not Found"


class DiskFileNotExist(NotFound):
    """No .data (nor .ts) file: the object was never written here."""


class DiskFileDeleted(DiskFileNotExist):
    """A tombstone is the newest file; ``timestamp`` is the tombstone's."""


class DiskFileExpired(DiskFileDeleted):
    """The object's X-Delete-At has passed; ``timestamp`` is the object's data timestamp."""

    def __init__(
        self, message: str = "", *, timestamp: Timestamp | None = None, delete_at: int = 0
    ) -> None:
        super().__init__(message, timestamp=timestamp)
        self.delete_at = delete_at


class DiskFileQuarantined(DiskFileNotExist):
    """The object's files were corrupt and have been moved to the quarantine area."""


class AccountNotFound(NotFound):
    """No account database, or a deleted one (``status_deleted``: deleted by a DELETE)."""

    def __init__(
        self, message: str = "", *, timestamp: Timestamp | None = None, status_deleted: bool = False
    ) -> None:
        super().__init__(message, timestamp=timestamp)
        self.status_deleted = status_deleted


class ContainerNotFound(NotFound):
    """No container database, or a deleted one."""


class Conflict(StorageError):
    """An equal or newer write exists (``timestamp``), or the entity's state forbids it."""

    status = 409
    title = "Conflict"


class RangeNotSatisfiable(StorageError):
    """No requested byte range overlaps the object (``content_length`` for Content-Range)."""

    status = 416
    title = "Requested Range Not Satisfiable"

    def __init__(self, message: str = "", *, content_length: int) -> None:
        super().__init__(message)
        self.content_length = content_length


class EtagMismatch(StorageError):
    status = 422
    title = "Unprocessable Entity"


class ClientDisconnect(StorageError):
    status = 499
    title = "Client Disconnect"


class DiskFileNotOpen(StorageError):
    """A DiskFile was read before ``open()`` succeeded."""


class DiskFileError(StorageError):
    """An unexpected OS error while touching a device."""


class DatabaseError(StorageError):
    """An unexpected SQLite error."""


class DatabaseQuarantined(DatabaseError):
    """The database was corrupt and has been moved to the quarantine area."""


class LockTimeout(StorageError):
    status = 503
    title = "Service Unavailable"


class NodeUnavailable(StorageError):
    """A remote storage node could not be reached, or stopped answering mid-response.

    Raised by RemoteNode for connection failures and timeouts (``raise ... from`` the
    transport's error), so the proxy counts the replica as failed and tries a handoff.
    """

    status = 503
    title = "Service Unavailable"


class InsufficientStorage(StorageError):
    status = 507
    title = "Insufficient Storage"


class DeviceUnavailable(InsufficientStorage):
    """The device directory is missing, or not a mount point when mounts are checked."""


class DiskFileNoSpace(InsufficientStorage):
    """The device is full (ENOSPC) or over quota (EDQUOT)."""
