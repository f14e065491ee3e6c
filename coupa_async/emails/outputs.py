"""Where a mail's PDF and attachments folder go beside it, and whether they are done.

Outputs are written under hidden names and renamed into place, so a name that looks done is
done: the PDF as ``.<name>.<token>.tmp``, the folder as ``.<folder>.partial``. An output counts
as done when its modification time is not older than the mail's.

A name is ours only if no one else uses it: the server's files (``reserved``) always keep their
names, whatever they hold, and so does anything that is not our own output; ours take the next
alternate (`` (e-mail)``, `` (e-mail 2)``…). Nothing is opened through a link.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import BinaryIO

from coupa_async.emails.options import is_email
from coupa_async.results.layout import FILE_NAME_MAX_BYTES, TEMP_SUFFIX, hidden_temp_name
from coupa_async.results.no_links import is_link, open_new, open_read

# Written into each PDF's metadata: how a later run knows the PDF is its own output.
CREATOR = "coupa_async e-mail converter"
KEYWORDS_PREFIX = "coupa_async-email attachments="
PDF_SUFFIX = ".pdf"
FOLDER_SUFFIX = "_attachments"
ALTERNATE = " (e-mail)"  # when the plain name is taken by a file that is not ours
LAST_ALTERNATE = 99  # then " (e-mail 2)" … " (e-mail 99)"; past it the output is not written
PARTIAL = ".partial"
STALE = ".stale"
INCOMPLETE = ".incomplete"  # in a folder whose extraction ended in an error: redo next time
_MARKER_TAIL_BYTES = 256 * 1024
_KEYWORDS = re.compile(re.escape(f"/Keywords ({KEYWORDS_PREFIX}").encode() + rb"(\d+)\)")
_CREATOR = f"/Creator ({CREATOR})".encode()
# Date a link itself, never what it points to, where the platform can.
_UTIME_FOLLOWS = os.utime not in os.supports_follow_symlinks


def fit(name: str, suffix: str) -> str:
    """``name + suffix``, ``name`` shortened so it fits the layout's name limit."""
    room = FILE_NAME_MAX_BYTES - len(suffix.encode())
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) > room:
        name = encoded[:room].decode("utf-8", "ignore").rstrip(" .")
    return name + suffix


def pdf_names(mail_name: str) -> list[str]:
    """The names the mail's PDF may have, in order of preference."""
    return _names(mail_name, PDF_SUFFIX)


def folder_names(mail_name: str) -> list[str]:
    """The names the mail's attachments folder may have, in order of preference."""
    return _names(mail_name, FOLDER_SUFFIX)


def _names(mail_name: str, suffix: str) -> list[str]:
    return [fit(mail_name, suffix), fit(mail_name, ALTERNATE + suffix)] + [
        fit(mail_name, f" (e-mail {n}){suffix}") for n in range(2, LAST_ALTERNATE + 1)
    ]


def first_usable(names: list[str], usable: Callable[[str], bool]) -> str | None:
    """The first of ``names`` that is usable; None when none is (never one that is not)."""
    return next((name for name in names if usable(name)), None)


def choose_names(
    folder: Path, mail_name: str, reserved: Collection[str] = ()
) -> tuple[str | None, str | None]:
    """The names of the mail's PDF and attachments folder in ``folder`` (None: all taken).

    Each is the first candidate that is not ``reserved`` (the server's files: theirs, whatever
    they hold; compared ignoring case, as Windows and macOS do) and is free or already ours: a
    PDF we wrote, a folder. Any other file keeps its name too.
    """
    taken = {name.casefold() for name in reserved}
    pdf = first_usable(
        pdf_names(mail_name),
        lambda name: name.casefold() not in taken and _free_or_our_pdf(folder / name),
    )
    sub = first_usable(
        folder_names(mail_name),
        lambda name: name.casefold() not in taken and _free_or_folder(folder / name),
    )
    return pdf, sub


def our_outputs(mail: Path, reserved: Collection[str] = ()) -> tuple[Path | None, Path | None]:
    """The PDF and attachments folder of the saved ``mail`` now on disk, None where there is none.

    ``reserved``: the names of the server's files beside it (see ``choose_names``).
    """
    pdf, sub = choose_names(mail.parent, mail.name, reserved)
    pdf_path = mail.parent / pdf if pdf else None
    sub_path = mail.parent / sub if sub else None
    return (
        pdf_path if pdf_path is not None and our_pdf_attachments(pdf_path) is not None else None,
        sub_path if sub_path is not None and sub_path.is_dir() and not is_link(sub_path) else None,
    )


def is_our_output(folder: Path, name: str) -> bool:
    """Whether ``folder/name`` is a PDF or attachments folder made for an e-mail beside it."""
    path = folder / name
    if is_link(path):
        return False
    if path.is_dir():
        names, suffix = folder_names, FOLDER_SUFFIX
    elif our_pdf_attachments(path) is not None:
        names, suffix = pdf_names, PDF_SUFFIX
    else:
        return False
    if not name.endswith(suffix):
        return False
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if is_email(entry.name) and entry.is_file() and name in names(entry.name):
                return True
    return False


def make_way(folder: Path, name: str) -> bool:
    """Free ``folder/name`` for a file of the server: an e-mail's PDF or attachments folder of
    ours there is removed (converting the e-mail writes it again under another name).

    True when the name is free now; False when something else holds it (leave it alone).
    """
    path = folder / name
    if not os.path.lexists(path):
        return True
    if not is_our_output(folder, name):
        return False
    remove_tree(path)
    return True


def our_pdf_attachments(path: Path) -> int | None:
    """For a PDF this converter wrote: how many attachments its mail had; else None."""
    try:
        with open_read(path) as handle:
            if not _is_regular(handle):
                return None
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
    os.utime(path, ns=(when, when), follow_symlinks=_UTIME_FOLLOWS)


def write_pdf(folder: Path, name: str, data: bytes, source_mtime_ns: int) -> None:
    """Write ``folder/name`` whole through a hidden temporary file, replacing an older one."""
    temp = folder / hidden_temp_name(name)
    try:
        with open_new(temp) as handle:
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
    if is_link(final) or final.is_file():
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
    """Delete ``path``: a file, a link (never what it points to), or a folder of ours."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif is_link(path):
        os.rmdir(path)  # a Windows junction: removes the link only
    elif path.exists():
        shutil.rmtree(path)


def _free_or_our_pdf(path: Path) -> bool:
    return not os.path.lexists(path) or our_pdf_attachments(path) is not None


def _free_or_folder(path: Path) -> bool:
    return not os.path.lexists(path) or (path.is_dir() and not is_link(path))


def _is_regular(handle: BinaryIO) -> bool:
    return stat.S_ISREG(os.fstat(handle.fileno()).st_mode)


def files_under(root: Path, prefix: str) -> Iterator[str]:
    """The files below ``root`` as ``prefix/…`` posix paths, hidden markers left out."""
    for current, dirs, files in os.walk(root):
        dirs.sort()
        relative = Path(current).relative_to(root)
        for name in sorted(files):
            if name != INCOMPLETE:
                yield (Path(prefix) / relative / name).as_posix()
