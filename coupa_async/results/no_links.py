"""Files of ours in the output folder are never opened through a link.

A symbolic link (or, on Windows, any reparse point: a junction too) planted at one of our names
must not make us write, or create, a file somewhere else. POSIX (Linux, macOS) asks the kernel:
``O_NOFOLLOW`` refuses a link at the last component in the same call that opens the file.
Windows has no such flag: the name is checked right before opening, and the file opened is
checked to be the one the name holds right after. Each platform's way is one function, chosen
once below.

Replacing a name (``os.replace``, ``os.unlink``) acts on the link itself, never on its target:
that is safe, and how a link at one of our names is got rid of.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

# Windows: any reparse point (symbolic link, junction, mount point) counts as a link.
_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)
# What open() says about a link at the name with O_NOFOLLOW: ELOOP on Linux and macOS, EMLINK
# on FreeBSD, EFTYPE on NetBSD.
_LINK_ERRNOS = frozenset(
    code for code in (errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", None)) if code
)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL
_NO_WAIT = getattr(os, "O_NONBLOCK", 0)  # POSIX only; no effect on regular files


class LinkRefusedError(OSError):
    """A name we write holds a symbolic link: nothing was opened through it."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.ELOOP, link_sentence(path), str(path))

    def __str__(self) -> str:
        return str(self.strerror)


def link_sentence(path: Path) -> str:
    """The one sentence for a link where coupa_async writes."""
    return (
        f"{path} is a symbolic link; coupa_async does not write through links: remove it or "
        "choose another --out"
    )


def _is_link_posix(path: Path) -> bool:
    return os.path.islink(path)


def _is_link_windows(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    attributes = getattr(info, "st_file_attributes", 0)
    return stat.S_ISLNK(info.st_mode) or bool(attributes & _REPARSE_POINT)


def _open_posix(path: Path, flags: int, mode: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS and os.path.islink(path):
            raise LinkRefusedError(path) from None
        raise


def _open_windows(path: Path, flags: int, mode: int) -> int:
    if _is_link_windows(path):
        raise LinkRefusedError(path)
    fd = os.open(path, flags | _BINARY | getattr(os, "O_NOINHERIT", 0), mode)
    try:
        opened, named = os.fstat(fd), os.lstat(path)
    except OSError:
        os.close(fd)
        raise
    if _is_link_windows(path) or not os.path.samestat(opened, named):
        os.close(fd)  # the name changed under us: whatever we opened is not ours to write
        raise LinkRefusedError(path)
    return fd


# Chosen once: the platform's way to test a name and to open a file without following a link.
if os.name == "nt":
    is_link = _is_link_windows
    _open_no_follow = _open_windows
else:
    is_link = _is_link_posix
    _open_no_follow = _open_posix


def open_fd(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that refuses (LinkRefusedError) a link at ``path`` instead of following it."""
    return _open_no_follow(Path(path), flags, mode)


def open_new(path: Path, mode: int = 0o666) -> BinaryIO:
    """A new file at ``path`` for writing; FileExistsError if anything, a link too, is there."""
    return os.fdopen(open_fd(path, _NEW, mode), "wb")


def open_fresh(path: Path, mode: int = 0o666) -> BinaryIO:
    """An empty file of our own at ``path`` for writing, whatever was there before.

    What held the name (a file, a hard link to a file elsewhere, a symbolic link) is unlinked
    first, never written through nor truncated; FileExistsError if something takes the name
    again in between.
    """
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return open_new(path, mode)


def open_read(path: Path) -> BinaryIO:
    """``path`` opened for reading; LinkRefusedError if it is a link.

    Opening does not wait (a pipe planted at the name would block it); check that what was
    opened is a regular file before reading.
    """
    return os.fdopen(open_fd(path, os.O_RDONLY | _NO_WAIT), "rb")


def refuse_link(path: Path) -> None:
    """Raise LinkRefusedError if ``path`` is a link (a missing path is fine)."""
    if is_link(Path(path)):
        raise LinkRefusedError(Path(path))
