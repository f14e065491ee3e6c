"""Where a mail's PDF and attachments folder go beside it, and whether they are done.

Outputs are written under hidden names and renamed into place, so a name that looks done is
done: the PDF as ``.<name>.<token>.tmp``, the folder as ``.<folder>.partial``. An output counts
as done when its modification time is not older than the mail's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from coupa_async.layout import FILE_NAME_MAX_BYTES, TEMP_SUFFIX, hidden_temp_name

# Written into each PDF's metadata: how a later run knows the PDF is its own output.
CREATOR = "coupa_async e-mail converter"
KEYWORDS_PREFIX = "coupa_async-email attachments="
PDF_SUFFIX = ".pdf"
FOLDER_SUFFIX = "_attachments"
ALTERNATE = " (e-mail)"  # when the plain name is taken by a file that is not ours
PARTIAL = ".partial"
STALE = ".stale"
INCOMPLETE = ".incomplete"  # in a folder whose extraction ended in an error: redo next time
_MARKER_TAIL_BYTES = 256 * 1024
_KEYWORDS = re.compile(re.escape(f"/Keywords ({KEYWORDS_PREFIX}").encode() + rb"(\d+)\)")
_CREATOR = f"/Creator ({CREATOR})".encode()


def fit(name: str, suffix: str) -> str:
    """``name + suffix``, ``name`` shortened so it fits the layout's name limit."""
    room = FILE_NAME_MAX_BYTES - len(suffix.encode())
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) > room:
        name = encoded[:room].decode("utf-8", "ignore").rstrip(" .")
    return name + suffix


def pdf_names(mail_name: str) -> list[str]:
    """The names the mail's PDF may have, in order of preference."""
    return [fit(mail_name, PDF_SUFFIX), fit(mail_name, ALTERNATE + PDF_SUFFIX)] + [
        fit(mail_name, f" (e-mail {n}){PDF_SUFFIX}") for n in range(2, 10)
    ]


def folder_names(mail_name: str) -> list[str]:
    """The names the mail's attachments folder may have, in order of preference."""
    return [fit(mail_name, FOLDER_SUFFIX), fit(mail_name, ALTERNATE + FOLDER_SUFFIX)] + [
        fit(mail_name, f" (e-mail {n}){FOLDER_SUFFIX}") for n in range(2, 10)
    ]


def first_usable(names: list[str], usable: Callable[[str], bool]) -> str:
    """The first of ``names`` that is usable, else the last (a later write then fails)."""
    return next((name for name in names if usable(name)), names[-1])


def our_pdf_attachments(path: Path) -> int | None:
    """For a PDF this converter wrote: how many attachments its mail had; else None."""
    try:
        if path.is_symlink() or not path.is_file():
            return None
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _MARKER_TAIL_BYTES))
            tail = handle.read()
    except OSError:
        return None
    match = _KEYWORDS.search(tail)
    if _CREATOR not in tail or match is None:
        return None
    return int(match.group(1))


def is_fresh(path: Path, source_mtime_ns: int) -> bool:
    """Whether ``path`` exists and is not older than the source."""
    try:
        return path.stat().st_mtime_ns >= source_mtime_ns
    except OSError:
        return False


def stamp(path: Path, source_mtime_ns: int) -> None:
    """Date ``path`` now, or as the source if that is in the future, so it counts as done."""
    when = max(time.time_ns(), source_mtime_ns)
    os.utime(path, ns=(when, when))


def write_pdf(folder: Path, name: str, data: bytes, source_mtime_ns: int) -> None:
    """Write ``folder/name`` whole through a hidden temporary file, replacing an older one."""
    temp = folder / hidden_temp_name(name)
    try:
        with temp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        stamp(temp, source_mtime_ns)
        os.replace(temp, folder / name)
    finally:
        temp.unlink(missing_ok=True)


def partial_folder(folder: Path, name: str) -> Path:
    return folder / f".{name}{PARTIAL}"


def install_folder(partial: Path, final: Path) -> None:
    """Rename the finished ``partial`` folder to ``final``, replacing an older ``final``."""
    stale = final.with_name(f".{final.name}{STALE}")
    remove_tree(stale)
    if final.is_symlink() or final.is_file():
        raise FileExistsError(f"{final} is in the way of the attachments folder")
    if final.exists():
        os.rename(final, stale)
    os.rename(partial, final)
    remove_tree(stale)


def remove_leftovers(folder: Path, pdfs: list[str], folders: list[str]) -> None:
    """Delete what an interrupted conversion of this mail left: temporary PDFs and folders."""
    temp = re.compile(
        r"\.(?:" + "|".join(map(re.escape, pdfs)) + r")\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX)
    )
    for name in folders:
        remove_tree(folder / f".{name}{PARTIAL}")
        remove_tree(folder / f".{name}{STALE}")
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and temp.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)


def files_under(root: Path, prefix: str) -> Iterator[str]:
    """The files below ``root`` as ``prefix/…`` posix paths, hidden markers left out."""
    for current, dirs, files in os.walk(root):
        dirs.sort()
        relative = Path(current).relative_to(root)
        for name in sorted(files):
            if name != INCOMPLETE:
                yield (Path(prefix) / relative / name).as_posix()
