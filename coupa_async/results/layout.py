"""The output folders: safe names, the life of a PO folder, and guards against escaping ``out``.

A PO is worked on in ``<out>/<Supplier>/<label>__WORK`` and, once settled, renamed to exactly one
``<out>/<Supplier>/<label>_<OUTCOME>``. A rerun turns that folder back into the work folder, so
files already saved are reused, and a later outcome replaces the earlier folder.

No folder of ours is used through a link: a link at a supplier or hierarchy folder's name is
refused (LayoutError), one at a PO folder's name is removed (the link only) and replaced.
``out`` itself may be a link: that is the user's choice.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from coupa_async.errors import LayoutError
from coupa_async.results.no_links import is_link, link_sentence

FOLDER_PART_MAX_CHARS = 50
FILE_NAME_MAX_CHARS = 150
# Linux allows 255 bytes per name; the rest is room for the temporary-file prefix and suffix.
FILE_NAME_MAX_BYTES = 240
UNKNOWN = "Unknown"
DEFAULT_FILE_NAME = "attachment"
WORK_SUFFIX = "__WORK"
PARTIAL_SUFFIX = ".part"
TEMP_SUFFIX = ".tmp"  # reports and other files written whole, then renamed
ASIDE_SUFFIX = ".old"  # a final folder moved aside while its replacement is put in place
FINAL_OUTCOMES = (
    "COMPLETED",
    "PARTIAL",
    "FAILED",
    "NO_ATTACHMENTS",
    "PO_NOT_FOUND",
    "PR_NOT_ACCESSIBLE",
)

_FORBIDDEN = frozenset('<>:"/\\|?*&')
_SEPARATORS = re.compile(r"[/\\]")
_UNDERSCORES = re.compile(r"_{2,}")
# An extension is the last "." and 1 to 9 characters after it, none of them a dot or blank.
_EXTENSION = re.compile(r"\.[^.\s]{1,9}\Z")
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{device}{n}" for device in ("COM", "LPT") for n in "123456789¹²³"}
)
_TOKEN_BYTES = 4


def safe_folder_part(text: str | None) -> str:
    """Turn a supplier name or hierarchy value into one safe folder name (``Unknown`` if empty)."""
    if text is None:
        return UNKNOWN
    part = "".join(_folder_char(ch) for ch in unicodedata.normalize("NFC", str(text)))
    part = _fit_folder_part(_UNDERSCORES.sub("_", part))
    part = _avoid_reserved(part)
    if len(part) > FOLDER_PART_MAX_CHARS:
        part = _avoid_reserved(_fit_folder_part(part))
    return part or UNKNOWN


def safe_file_name(name: str | None) -> str:
    """Turn a server-given file name into a safe name for a file inside a PO folder.

    Only the last path component is kept; the result has at most FILE_NAME_MAX_CHARS characters
    and FILE_NAME_MAX_BYTES UTF-8 bytes, keeps its extension, and is ``attachment`` when empty.
    """
    return _clean_file_name(name) or DEFAULT_FILE_NAME


def unique_name(name: str, taken: set[str]) -> str:
    """``name`` made safe, or with `` (2)``, `` (3)``… before the extension if it is taken.

    The comparison ignores case, as Windows and macOS do. ``taken`` is not changed.
    """
    name = safe_file_name(name)
    used = {unicodedata.normalize("NFC", t).casefold() for t in taken}
    if name.casefold() not in used:
        return name
    stem, ext = _split_extension(name)
    n = 2
    while True:
        candidate = _fit_file_name(stem, ext, suffix=f" ({n})")
        if candidate.casefold() not in used:
            return candidate
        n += 1


class OutputLayout:
    """Where each PO's files go under ``out_dir``, and how a PO folder is opened and settled."""

    __slots__ = ("out_dir",)

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir).absolute()

    def po_dir_parts(
        self, supplier: str | None, levels: Sequence[str | None] = ()
    ) -> tuple[str, ...]:
        """The folders between ``out`` and the PO folder: the hierarchy levels, else the supplier.

        Blank levels are left out; when all are blank the supplier is used.
        """
        parts = tuple(safe_folder_part(level) for level in levels if not _is_blank(level))
        return parts or (safe_folder_part(supplier),)

    def work_dir(self, parent_parts: Sequence[str], label: str) -> Path:
        """``<out>/<parts…>/<label>__WORK``, the folder a PO is worked on in."""
        return self._inside(
            self._parent(parent_parts) / f"{_component(label, 'label')}{WORK_SUFFIX}"
        )

    def final_dir(self, parent_parts: Sequence[str], label: str, outcome: str) -> Path:
        """``<out>/<parts…>/<label>_<OUTCOME>``, the folder of a settled PO."""
        name = f"{_component(label, 'label')}_{_outcome(outcome)}"
        return self._inside(self._parent(parent_parts) / name)

    def open_work_dir(self, parent_parts: Sequence[str], label: str) -> Path:
        """The work folder of a PO, ready to use.

        Reuses an existing work folder; else turns a final folder of an earlier run back into the
        work folder, so the files it holds are reused; else creates it.
        """
        work = self.work_dir(parent_parts, label)
        self._refuse_links_above(work)
        _drop_link(work)
        if work.is_dir():
            return work
        work.parent.mkdir(parents=True, exist_ok=True)
        self._inside(work)  # again: the parent may have been created as a symlink meanwhile
        self._refuse_links_above(work)
        for outcome in FINAL_OUTCOMES:
            final = self.final_dir(parent_parts, label, outcome)
            if final.is_symlink() or not final.is_dir():
                continue
            try:
                os.rename(final, work)
            except FileNotFoundError:
                continue  # gone meanwhile
            except OSError:
                if work.is_dir():
                    return work  # created meanwhile
                raise
            return work
        work.mkdir(exist_ok=True)
        return work

    def finalise(self, work_dir: Path, outcome: str) -> Path:
        """Rename the work folder to ``<label>_<OUTCOME>`` beside it and return that path.

        Any final folder of the same PO is moved aside first and deleted only once the new
        folder is in place, so exactly one folder per PO remains.
        """
        work = Path(work_dir)
        if not work.name.endswith(WORK_SUFFIX) or work.name == WORK_SUFFIX:
            raise LayoutError(f"{work} is not a work folder (its name must end in {WORK_SUFFIX})")
        self._inside(work)
        self._refuse_links_above(work)
        if is_link(work) or not work.is_dir():
            raise LayoutError(f"work folder {work} does not exist")
        label = work.name.removesuffix(WORK_SUFFIX)
        final = self._inside(work.parent / f"{label}_{_outcome(outcome)}")
        parked: list[tuple[Path, Path]] = []
        try:
            for other in FINAL_OUTCOMES:
                stale = work.parent / f"{label}_{other}"
                if stale.is_symlink() or stale.exists():
                    aside = stale.with_name(hidden_temp_name(label, ASIDE_SUFFIX))
                    os.rename(stale, aside)
                    parked.append((stale, aside))
            os.replace(work, final)
        except BaseException:
            for stale, aside in reversed(parked):
                with contextlib.suppress(OSError):
                    os.rename(aside, stale)
            raise
        for _, aside in parked:
            _remove(aside)
        self._remove_leftover_old_dirs(work.parent, label)
        return final

    def contains(self, path: Path) -> bool:
        """Whether ``path`` (relative paths are taken from ``out``) resolves to inside ``out``.

        Symlinks are followed; ``out`` itself does not count as inside.
        """
        try:
            root = self.out_dir.resolve()
            target = (self.out_dir / path).resolve()
        except (OSError, RuntimeError):  # symlink loops
            return False
        return target != root and target.is_relative_to(root)

    def temp_path_for(self, final_file: Path) -> Path:
        """A hidden temporary name beside ``final_file`` to download into before renaming."""
        final = self._inside(Path(final_file))
        name = _truncate_utf8(final.name, FILE_NAME_MAX_BYTES)
        return final.with_name(hidden_temp_name(name, PARTIAL_SUFFIX))

    def reopen(self, final_dir: Path, label: str) -> Path | None:
        """Turn a PO's final folder back into its work folder (the PO was not settled after
        all); None when there is no such folder or a work folder is already there."""
        final = self._inside(Path(final_dir))
        work = self._inside(final.parent / f"{_component(label, 'label')}{WORK_SUFFIX}")
        if final.is_symlink() or not final.is_dir() or work.exists():
            return None
        os.rename(final, work)
        return work

    def cleanup_partials(self, folder: Path) -> int:
        """Delete temporary files left in ``folder`` by an interrupted run; return how many."""
        folder = self._inside(Path(folder))
        try:
            entries = list(folder.iterdir())
        except FileNotFoundError:
            return 0
        removed = 0
        for entry in entries:
            if _is_partial(entry.name) and (entry.is_symlink() or not entry.is_dir()):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
        return removed

    def _parent(self, parent_parts: Sequence[str]) -> Path:
        if isinstance(parent_parts, str):
            raise LayoutError("parent_parts must be a sequence of folder names, not one string")
        return self.out_dir.joinpath(*(_component(part, "folder") for part in parent_parts))

    def _inside(self, path: Path) -> Path:
        if not self.contains(path):
            raise LayoutError(f"{path} is outside the output folder {self.out_dir}")
        return path

    def _refuse_links_above(self, path: Path) -> None:
        """LayoutError if a folder between ``out`` and ``path`` (not ``out`` itself, not
        ``path``) is a link."""
        try:
            parents = path.parent.relative_to(self.out_dir).parts
        except ValueError:
            raise LayoutError(f"{path} is outside the output folder {self.out_dir}") from None
        folder = self.out_dir
        for part in parents:
            folder = folder / part
            if is_link(folder):
                raise LayoutError(link_sentence(folder))

    def _remove_leftover_old_dirs(self, parent: Path, label: str) -> None:
        # Folders moved aside by a finalise that was interrupted before it could delete them.
        pattern = re.compile(
            rf"\.{re.escape(label)}\.[0-9a-f]{{{2 * _TOKEN_BYTES}}}{re.escape(ASIDE_SUFFIX)}"
        )
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                if pattern.fullmatch(entry.name):
                    _remove(entry)


def _folder_char(ch: str) -> str:
    if ch in _FORBIDDEN or ch.isspace():
        return "_"
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""  # invisible: zero-width characters, direction marks
    if category in ("Cc", "Cs", "Zl", "Zp"):
        return "_"
    return ch


def _file_char(ch: str) -> str:
    if ch in _FORBIDDEN:
        return "_"
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""
    if category in ("Cc", "Cs", "Zl", "Zp"):
        return "_"
    if ch.isspace():
        return " "
    return ch


def _fit_folder_part(part: str) -> str:
    return part.strip("_. ")[:FOLDER_PART_MAX_CHARS].rstrip("_. ")


def _clean_file_name(name: str | None) -> str:
    if name is None:
        return ""
    last = _SEPARATORS.split(unicodedata.normalize("NFC", str(name)))[-1]
    cleaned = _UNDERSCORES.sub("_", "".join(_file_char(ch) for ch in last))
    # No leading dot: no hidden files, and no clash with our own ".<name>.<token>.part" files.
    cleaned = cleaned.strip(" .")
    if not cleaned.strip("_"):
        return ""
    stem, ext = _split_extension(_avoid_reserved(cleaned))
    return _fit_file_name(stem, ext)


def _split_extension(name: str) -> tuple[str, str]:
    match = _EXTENSION.search(name)
    if match is None or match.start() == 0:
        return name, ""
    return name[: match.start()], match.group()


def _fit_file_name(stem: str, ext: str, suffix: str = "") -> str:
    """``stem + suffix + ext``, the stem shortened to keep within the name limits."""
    tail = suffix + ext
    room_chars = FILE_NAME_MAX_CHARS - len(tail)
    room_bytes = FILE_NAME_MAX_BYTES - len(tail.encode())
    if len(stem) > room_chars or len(stem.encode()) > room_bytes:
        stem = _truncate_utf8(stem[:room_chars], room_bytes)
        stem = stem.rstrip(" ") if tail else stem.rstrip(" .")
    return f"{stem}{tail}"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def _avoid_reserved(name: str) -> str:
    """Append ``_`` to the stem of a Windows device name (``CON.pdf`` → ``CON_.pdf``)."""
    stem, dot, rest = name.partition(".")
    if stem.rstrip(" ").upper() not in _RESERVED:
        return name
    return f"{stem}_{dot}{rest}"


def _is_blank(text: str | None) -> bool:
    if text is None:
        return True
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in str(text))


def _component(name: str, what: str) -> str:
    """``name`` checked to be a single, plain folder name."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or any(ch in "/\\" or unicodedata.category(ch) in ("Cc", "Cs") for ch in name)
    ):
        raise LayoutError(f"{what} {name!r} is not a usable folder name")
    return name


def _outcome(outcome: str) -> str:
    value = str(getattr(outcome, "value", outcome)).upper()
    if value not in FINAL_OUTCOMES:
        raise LayoutError(
            f"{outcome!r} is not a final outcome; expected one of {', '.join(FINAL_OUTCOMES)}"
        )
    return value


def _is_partial(name: str) -> bool:
    # Only our hidden ".<name>.<token>.part" files: safe_file_name never starts a name with ".".
    return name.startswith(".") and name.endswith(PARTIAL_SUFFIX) and name != PARTIAL_SUFFIX


def hidden_temp_name(name: str, suffix: str = TEMP_SUFFIX) -> str:
    """A hidden, unique name to write ``name`` under before renaming it into place."""
    return f".{name}.{secrets.token_hex(_TOKEN_BYTES)}{suffix}"


_TEMP_FILE = re.compile(rf"\..+\.[0-9a-f]{{{2 * _TOKEN_BYTES}}}{re.escape(TEMP_SUFFIX)}")
_ASIDE_DIR = re.compile(
    rf"\.(?P<label>.+)\.[0-9a-f]{{{2 * _TOKEN_BYTES}}}{re.escape(ASIDE_SUFFIX)}"
)


def moved_aside_label(name: str) -> str | None:
    """The PO label of a final folder moved aside (``.PO1.<token>.old``), else None."""
    match = _ASIDE_DIR.fullmatch(name)
    return match["label"] if match else None


def unfinished_work(name: str, *, is_dir: bool) -> str | None:
    """What a name left behind by unfinished work is, or None for an ordinary name."""
    if is_dir:
        if name.endswith(WORK_SUFFIX) and name != WORK_SUFFIX:
            return "a work folder left by a run that did not finish this PO"
        if _ASIDE_DIR.fullmatch(name):
            return "an earlier folder of the PO, moved aside and never deleted"
        return None
    if _is_partial(name):
        return "a partial download"
    if _TEMP_FILE.fullmatch(name):
        return "a temporary file of an interrupted write"
    return None


def _drop_link(path: Path) -> None:
    """Remove a link at ``path`` (the link only, never what it points to)."""
    if path.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    elif is_link(path):
        os.rmdir(path)  # a Windows junction


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
