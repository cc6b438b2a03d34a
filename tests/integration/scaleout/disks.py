"""A small filesystem mounted at a device directory, to fill it for real (ENOSPC).

`SmallFilesystem.mount` tries, in order: an ext4 image on a loop device (what a real disk
looks like: ``mount -o loop``), then a tmpfs with ``size=``; both need root. `fill` writes
a filler file until the filesystem says ENOSPC, `free` removes it. `unmount` is safe to
call twice and falls back to a lazy unmount, so a test never leaves a mount behind.
Without root (or ``mount``) `available` says why, and the test that needs it skips.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

FILLER = "filler.bin"


def available() -> str | None:
    """None when small filesystems can be mounted here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "mounting a small filesystem needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


class SmallFilesystem:
    def __init__(self, mount_point: Path, image: Path, size_mb: int) -> None:
        self.mount_point = mount_point
        self.image = image
        self.size_mb = size_mb
        self.kind: str | None = None

    def mount(self) -> str:
        """Mount it (ext4 on a loop device, else tmpfs); the kind mounted."""
        self.mount_point.mkdir(parents=True, exist_ok=True)
        if self._mount_loop() or self._mount_tmpfs():
            return self.kind or ""
        raise RuntimeError(f"cannot mount a small filesystem at {self.mount_point}")

    def _mount_loop(self) -> bool:
        if shutil.which("mkfs.ext4") is None:
            return False
        with self.image.open("wb") as image:
            image.truncate(self.size_mb * 1024 * 1024)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(self.image)],
                              capture_output=True)
        if made.returncode != 0:
            return False
        mounted = subprocess.run(["mount", "-o", "loop", str(self.image),
                                  str(self.mount_point)], capture_output=True)
        if mounted.returncode != 0:
            return False
        self.kind = "ext4 on a loop device"
        return True

    def _mount_tmpfs(self) -> bool:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m",
                                  "tmpfs", str(self.mount_point)], capture_output=True)
        if mounted.returncode != 0:
            return False
        self.kind = "tmpfs"
        return True

    def fill(self) -> int:
        """Write until ENOSPC; the bytes written."""
        written = 0
        block = b"\0" * (1024 * 1024)
        with (self.mount_point / FILLER).open("ab", buffering=0) as out:
            while True:
                try:
                    written += out.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            while True:  # the last partial block
                try:
                    written += out.write(b"\0" * 4096)
                except OSError:
                    break
        return written

    def free(self) -> None:
        (self.mount_point / FILLER).unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.kind is None:
            return
        done = subprocess.run(["umount", str(self.mount_point)], capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(self.mount_point)], capture_output=True)
        self.kind = None
        self.image.unlink(missing_ok=True)
