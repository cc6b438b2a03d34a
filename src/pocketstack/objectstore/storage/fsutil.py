"""Filesystem plumbing shared by object files, databases and async pendings.

- `Devices` turns a device name into ``<devices_root>/<dev>`` or raises DeviceUnavailable.
- Durable publication: `make_dirs` (returns what it created, so the caller can fsync the
  parents), `fsync_dir`, `write_all`, `publish_file` (temp -> fsync -> rename -> fsync dir).
- `map_os_errors` translates OSError at this boundary (ENOSPC/EDQUOT -> DiskFileNoSpace).
- Directory names: ``objects`` for policy 0 and ``objects-N`` for policy N (as Swift).
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import suppress
from types import TracebackType
from typing import Final

from pocketstack.objectstore.storage.exceptions import (
    DeviceUnavailable,
    DiskFileError,
    DiskFileNoSpace,
)

NO_SPACE_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
TMP_DIR: Final = "tmp"
QUARANTINE_DIR: Final = "quarantined"
OBJECTS_DIR: Final = "objects"
ACCOUNTS_DIR: Final = "accounts"
CONTAINERS_DIR: Final = "containers"
ASYNC_DIR: Final = "async_pending"


def policy_dir(base: str, policy: int) -> str:
    """``objects`` for policy 0, ``objects-3`` for policy 3 (also async_pending-N)."""
    if policy < 0:
        raise ValueError(f"invalid storage policy index: {policy}")
    return base if policy == 0 else f"{base}-{policy}"


def suffix_of(name_hash: str) -> str:
    """The suffix directory of a hash: its last three hex characters (as Swift)."""
    return name_hash[-3:]


def check_partition(partition: int) -> None:
    if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
        raise ValueError(f"invalid partition: {partition!r}")


class Devices:
    """The devices root: resolves ``<root>/<dev>`` and checks that the device is usable."""

    def __init__(self, root: str | os.PathLike[str], *, check_mount: bool = False) -> None:
        self.root = os.fspath(root)
        self.check_mount = check_mount
        self._tmp_dirs: set[str] = set()  # made already: `make_temp_file` makes it again

    def path(self, device: str) -> str:
        """``<root>/<device>``; DeviceUnavailable if absent (or not a mount point)."""
        if not device or device in (".", "..") or "/" in device or "\x00" in device:
            raise DeviceUnavailable(f"invalid device name {device!r}")
        path = os.path.join(self.root, device)
        usable = os.path.ismount(path) if self.check_mount else os.path.isdir(path)
        if not usable:
            raise DeviceUnavailable(f"device {device!r} is not available")
        return path

    def tmp_dir(self, device_path: str) -> str:
        """``<dev>/tmp``, created on first use (same filesystem as the data: rename works);
        a write costs no mkdir after that (`make_temp_file` makes it again if removed)."""
        path = os.path.join(device_path, TMP_DIR)
        if path not in self._tmp_dirs:
            with map_os_errors():
                os.makedirs(path, exist_ok=True)
            self._tmp_dirs.add(path)
        return path


def os_error(exc: OSError, what: str = "") -> DiskFileError | DiskFileNoSpace:
    """The storage exception for an OSError: DiskFileNoSpace if full, else DiskFileError."""
    if exc.errno in NO_SPACE_ERRNOS:
        return DiskFileNoSpace(f"no space left on device {what}".strip())
    return DiskFileError(f"{what}: {exc}" if what else str(exc))


class map_os_errors:  # noqa: N801 (used as a function: ``with map_os_errors(...)``)
    """Re-raise OSError as DiskFileNoSpace (full device) or DiskFileError (anything else).

    A class rather than a ``@contextmanager``: every object read and write enters it, and a
    generator-based one costs a generator and two of its steps each time."""

    __slots__ = ("what",)

    def __init__(self, what: str = "") -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, OSError):
            raise os_error(exc, self.what) from exc


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until every byte is written (short writes happen on signals and pipes)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(path: str) -> None:
    """fsync a directory, so the names created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str, created: list[str] | None = None) -> list[str]:
    """mkdir -p; returns the directories it created, outermost first (for fsync_dir),
    appended to ``created`` as they are made when it is given (so that a caller still
    knows them if a later mkdir fails)."""
    created = [] if created is None else created
    missing: list[str] = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            continue
        created.append(directory)
    return created


def make_temp_file(tmp_dir: str, suffix: str = ".tmp") -> tuple[int, str]:
    """A new, private temp file in ``tmp_dir``: (fd, path). Caller closes and renames.

    ``tmp_dir`` is made again if it went away (`Devices.tmp_dir` makes it only once per
    process); only it: a device dir that went away is an error, not a dir to create."""
    try:
        return tempfile.mkstemp(dir=tmp_dir, suffix=suffix)
    except FileNotFoundError:
        with suppress(FileExistsError):
            os.mkdir(tmp_dir)
        return tempfile.mkstemp(dir=tmp_dir, suffix=suffix)


def publish_file(
    tmp_path: str, target_dir: str, name: str, *, fsync: bool, replace: bool = True
) -> bool:
    """Rename an already-fsynced temp file to ``target_dir/name`` and make the name durable.

    Creates ``target_dir`` if needed. A concurrent cleanup (replication's suffix scan)
    removes empty hash and suffix dirs, so one of them may vanish while it is being made or
    before the rename: then this retries (as Swift's ``renamer``). Every directory made on
    the way, in any attempt, has its parent fsync'd once the file is in place. With
    ``replace=False`` an existing target wins: the temp file is removed and False is
    returned.
    """
    created: list[str] = []
    for _attempt in range(5):
        target = os.path.join(target_dir, name)
        try:
            make_dirs(target_dir, created)
            if replace:
                os.rename(tmp_path, target)
            else:
                os.link(tmp_path, target)
                os.unlink(tmp_path)
        except FileNotFoundError:
            if not os.path.exists(tmp_path):
                raise
            continue
        except FileExistsError:
            os.unlink(tmp_path)
            return False
        if fsync:
            fsync_dir(target_dir)
            for directory in dict.fromkeys(created):  # each once, outermost first
                fsync_dir(os.path.dirname(directory))
        return True
    raise DiskFileError(f"could not publish {name} into {target_dir}")


def write_new_file(tmp_dir: str, data: bytes, *, fsync: bool) -> str:
    """Write ``data`` to a new temp file (fsynced if asked) and return its path."""
    fd, tmp_path = make_temp_file(tmp_dir)
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp_path)
        raise
    os.close(fd)
    return tmp_path


def unlink_quietly(path: str) -> None:
    """Remove a file that may already be gone."""
    with suppress(FileNotFoundError):
        os.unlink(path)


def remove_empty_dir(path: str) -> bool:
    """rmdir if empty; False if it is not empty or already gone."""
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            return False
        raise
    return True


def quarantine_file(device_path: str, source: str, kind_dir: str) -> str:
    """Move the file ``source`` into ``<dev>/quarantined/<kind_dir>/<its dir's name>/``.

    Only that file moves, so a newer version written meanwhile is left alone. If a
    quarantined copy of that name exists already, a random suffix is added.
    """
    target_dir = os.path.join(
        device_path, QUARANTINE_DIR, kind_dir, os.path.basename(os.path.dirname(source))
    )
    make_dirs(target_dir)
    target = os.path.join(target_dir, os.path.basename(source))
    if os.path.exists(target):
        target = f"{target}-{os.urandom(8).hex()}"
    os.rename(source, target)
    return target


def quarantine_dir(device_path: str, source: str, kind_dir: str) -> str:
    """Move ``source`` (a hash dir) to ``<dev>/quarantined/<kind_dir>/<basename>``.

    If a quarantined copy of that name exists already, a random suffix is added.
    Returns the new location.
    """
    target_root = os.path.join(device_path, QUARANTINE_DIR, kind_dir)
    make_dirs(target_root)
    target = os.path.join(target_root, os.path.basename(source))
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        target = f"{target}-{os.urandom(8).hex()}"
        os.rename(source, target)
    return target
