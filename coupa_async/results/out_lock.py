"""One run at a time per output folder: an exclusive lock held from the start of a run to its end.

The lock is the operating system's lock on ``<out>/.coupa_async/run.lock``, not the file's
existence: the kernel drops it when the process ends, however it ends, so a file left by a
killed run never blocks the next one. The file holds who has the lock (process, host, start
time), for the sentence a second run prints. Readers (status, report, audit) take no lock.

POSIX (Linux, macOS) locks with ``flock``; Windows with ``msvcrt.locking`` on one byte far past
the holder's text (Windows keeps other processes from reading a locked range). Each platform's
way is a pair of functions, chosen once below.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from coupa_async.errors import ConfigurationError
from coupa_async.log import get_logger
from coupa_async.results.no_links import LinkRefusedError, link_sentence, open_fd, refuse_link

log = get_logger(__name__)

LOCK_DIR = ".coupa_async"  # the journal's folder
LOCK_NAME = "run.lock"
_HOLDER_MAX_BYTES = 4096
# Windows: the locked byte, well past the holder's text.
_WINDOWS_LOCK_OFFSET = 1 << 20
# A file system that cannot lock (some network shares): the run goes on, with a warning.
_CANNOT_LOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds an output folder's lock: as written in the lock file."""

    pid: int
    host: str
    started: float  # Unix seconds

    def describe(self) -> str:
        """``process 12345, started 18:02`` (with the day when not today, the host when not
        this one)."""
        when = datetime.fromtimestamp(self.started)
        shown = when.strftime("%H:%M" if when.date() == datetime.now().date() else "%Y-%m-%d %H:%M")
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"process {self.pid}{where}, started {shown}"


def lock_path(out_dir: Path) -> Path:
    return Path(out_dir) / LOCK_DIR / LOCK_NAME


def _try_lock_posix(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock_posix(fd: int) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def _try_lock_windows(fd: int) -> bool:
    import msvcrt

    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    except PermissionError:  # EACCES: another process holds the byte
        return False
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EDEADLK):
            return False
        raise
    return True


def _unlock_windows(fd: int) -> None:
    import msvcrt

    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]


# Chosen once: the platform's way to take and drop the lock without waiting.
if os.name == "nt":
    _try_lock, _unlock = _try_lock_windows, _unlock_windows
else:
    _try_lock, _unlock = _try_lock_posix, _unlock_posix


class OutputFolderLock:
    """The exclusive lock of one run on ``out_dir``; ``take`` it, ``release`` it (or ``with``).

    A second ``take`` on the same folder fails while the first is held, in this process too.
    """

    def __init__(self, out_dir: Path, fd: int) -> None:
        self.out_dir = Path(out_dir)
        self.path = lock_path(out_dir)
        self._fd: int | None = fd
        # A lock dropped without release (an error before its owner could close it) is let go
        # when it is collected, not when the process ends.
        self._closer = weakref.finalize(self, os.close, fd)

    @classmethod
    def take(cls, out_dir: Path) -> OutputFolderLock:
        """Lock ``out_dir`` for this run, creating the folder and the lock file if need be.

        Raises ConfigurationError (exit 2) when another run holds it, or when a link stands
        where the lock file or its folder should be.
        """
        path = lock_path(out_dir)
        folder = path.parent
        try:
            refuse_link(folder)
            folder.mkdir(parents=True, exist_ok=True)
            refuse_link(folder)
            fd = open_fd(path, os.O_RDWR | os.O_CREAT, 0o644)
        except LinkRefusedError as exc:
            raise ConfigurationError(link_sentence(Path(exc.filename))) from None
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot create {path} ({exc.strerror or exc}). Choose an output folder you "
                "can write."
            ) from None
        try:
            locked = _try_lock(fd)
        except OSError as exc:
            if exc.errno not in _CANNOT_LOCK:
                os.close(fd)
                raise
            log.warning("out_not_locked", path=str(path), reason=str(exc))
            return cls(out_dir, fd)
        if not locked:
            holder = _read_holder(fd)
            os.close(fd)
            who = f" ({holder.describe()})" if holder is not None else ""
            raise ConfigurationError(
                f"Another coupa_async run{who} is using {Path(out_dir)}; wait for it to end or "
                "choose another --out."
            )
        _write_holder(fd)
        return cls(out_dir, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (the file stays, emptied); later calls do nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            _unlock(fd)
        except OSError:
            pass  # closing drops the lock all the same
        finally:
            self._closer()  # closes fd, once

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def read_holder(out_dir: Path) -> LockHolder | None:
    """Who holds ``out_dir``'s lock according to its file (None: nobody wrote one)."""
    try:
        fd = open_fd(lock_path(out_dir), os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> LockHolder | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, _HOLDER_MAX_BYTES))
        return LockHolder(int(data["pid"]), str(data["host"]), float(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # being written, or not ours


def _write_holder(fd: int) -> None:
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, text.encode() + b"\n")
    except OSError as exc:  # a full disk: the lock holds all the same
        log.warning("out_lock_holder_not_written", reason=str(exc))
