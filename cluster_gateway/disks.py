"""The local runtime's disks: each an ext4 image file of its size, loop-mounted on the host
for the one job that holds it, then bound into the job's sandbox.

Why an image and not a directory with a quota: a filesystem of its own caps what its jobs
write at the disk's size exactly, with nothing to set up on the host's filesystem (project
quotas need a filesystem mounted with them, which a data directory seldom is), and the image
is sparse, so an empty disk takes next to nothing. Making one needs ``mkfs.ext4``; mounting
one needs root and a loop device: where either is missing the cluster says so when a disk is
created, and a job never gets a directory pretending to be a disk.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from glia.errors import GliaError, NotFound, Unavailable

_COMMAND_TIMEOUT_S = 120.0


class DiskError(GliaError):
    code = "INTERNAL_SERVER_ERROR"


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(_COMMAND_TIMEOUT_S):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DiskError(f"{argv[0]} took longer than {_COMMAND_TIMEOUT_S:g} s") from None
    if process.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        raise DiskError(f"{Path(argv[0]).name} failed: {said[-1] if said else process.returncode}")
    return out.decode(errors="replace")


class LocalDisks:
    """Disk images under ``root`` (``<id>.img``), mounted under ``root/mounts/<id>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/usr/sbin:/sbin")
        self._locks: dict[str, asyncio.Lock] = {}

    def problem(self) -> str | None:
        """Why this host cannot make or mount disks; None when it can."""
        if self._mkfs is None:
            return "mkfs.ext4 is not installed (Debian: e2fsprogs)"
        if os.geteuid() != 0:
            return "mounting a disk needs root: run the server as root, or use another cluster"
        if shutil.which("mount") is None or not Path("/dev/loop-control").exists():
            return "the host has no loop devices (/dev/loop-control)"
        return None

    def image(self, disk_id: str) -> Path:
        return self.root / f"{disk_id}.img"

    def mount_point(self, disk_id: str) -> Path:
        return self.root / "mounts" / disk_id

    def _lock(self, disk_id: str) -> asyncio.Lock:
        return self._locks.setdefault(disk_id, asyncio.Lock())

    async def create(self, disk_id: str, size_bytes: int) -> None:
        problem = self.problem()
        if problem is not None:
            raise Unavailable(f"this cluster cannot make disks: {problem}")
        assert self._mkfs is not None
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        image = self.image(disk_id)
        fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size_bytes)  # sparse: an empty disk takes next to nothing
        finally:
            os.close(fd)
        try:
            # -m 0: no blocks kept for root (the job is not root); -E root_owner: the mount
            # hands its root directory to the job's uid.
            await _run(self._mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1", str(image))
        except BaseException:
            image.unlink(missing_ok=True)
            raise
        self._used_file(disk_id).write_text("0")

    async def delete(self, disk_id: str) -> None:
        async with self._lock(disk_id):
            point = self.mount_point(disk_id)
            if point.is_mount():
                await _run("umount", str(point))
            if point.exists():
                point.rmdir()
            self.image(disk_id).unlink(missing_ok=True)
            self._used_file(disk_id).unlink(missing_ok=True)

    def _used_file(self, disk_id: str) -> Path:
        return self.root / f"{disk_id}.used"

    async def used_bytes(self, disk_id: str) -> int | None:
        """What its files take: read from the mounted filesystem, else as it was when it
        was last unmounted (the filesystem's own count, without its metadata)."""
        if not self.image(disk_id).exists():
            return None
        point = self.mount_point(disk_id)
        if point.is_mount():
            return _used(point)
        try:
            return int(self._used_file(disk_id).read_text())
        except (FileNotFoundError, ValueError):
            return None

    async def mount(self, disk_id: str, uid: int | None, gid: int | None) -> Path:
        """Mount the disk for a job (its root directory the job's uid's); the mount point."""
        async with self._lock(disk_id):
            image = self.image(disk_id)
            if not image.exists():
                raise NotFound(f"disk {disk_id} is gone from this cluster")
            point = self.mount_point(disk_id)
            point.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not point.is_mount():
                await _run("mount", "-o", "loop,nosuid,nodev", str(image), str(point))
            if uid is not None:
                os.chown(point, uid, gid if gid is not None else uid)
            os.chmod(point, 0o700)
            return point

    async def unmount(self, disk_id: str) -> None:
        async with self._lock(disk_id):
            point = self.mount_point(disk_id)
            if point.is_mount():
                self._used_file(disk_id).write_text(str(_used(point)))
                await _run("umount", str(point))


def _used(point: Path) -> int:
    stats = os.statvfs(point)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize
