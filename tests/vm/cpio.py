"""A writer for the "newc" cpio format the Linux kernel unpacks as an initramfs.

Only what an initramfs needs: directories, regular files, symlinks and device
nodes, all owned by root, with the archive's entries in the order they are added.
"""

from __future__ import annotations

import stat
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


def _pad4(length: int) -> bytes:
    return bytes(-length % 4)


class CpioWriter:
    """Appends entries to ``out``; :meth:`finish` writes the trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._inode = 1

    def directory(self, path: str, mode: int = 0o755) -> None:
        self._entry(path, stat.S_IFDIR | mode, b"", nlink=2)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(path, stat.S_IFREG | mode, data)

    def symlink(self, path: str, target: str) -> None:
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(path, stat.S_IFCHR | mode, b"", rdev=(major, minor))

    def finish(self) -> None:
        self._entry(TRAILER, 0, b"", nlink=1)
        # Pad the archive to a 512-byte boundary, as cpio(1) does.
        self._out.write(bytes(-self._out.tell() % 512))

    def _entry(
        self, path: str, mode: int, data: bytes, *, nlink: int = 1, rdev: tuple[int, int] = (0, 0)
    ) -> None:
        name = path.lstrip("/").encode() + b"\0"
        fields = (
            self._inode, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name), 0,
        )  # fmt: skip
        self._inode += 1
        header = MAGIC + b"".join(b"%08x" % value for value in fields)
        self._out.write(header + name + _pad4(len(header) + len(name)))
        self._out.write(data + _pad4(len(data)))
