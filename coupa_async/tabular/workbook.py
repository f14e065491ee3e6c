"""Spreadsheets as input (.xlsx, .xlsm, .xlsb, .xls, .ods): which sheet is read, and cell values
as the user sees them. python-calamine does the reading, of a workbook whose size unpacked is
bounded first (a zip bomb is refused before it can fill the memory).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook, PasswordError, SheetTypeEnum, SheetVisibleEnum

from coupa_async.errors import InputFileError

SHEET_NAME = "PO_Data"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# Spreadsheet numbers are doubles: above 2**53 the digits shown are no longer exact.
_LARGEST_EXACT_FLOAT = 2**53
# An encrypted .xlsx/.xlsm/.xlsb is an OLE file holding this stream instead of the ZIP.
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_RESAVE = (
    'Open it in Excel (or LibreOffice) and save it again as "Excel Workbook (.xlsx)", or as '
    "CSV UTF-8."
)

MAX_UNPACKED_BYTES = 200 * 1024 * 1024
"""Most bytes a workbook's parts may unpack to together, and the largest .xls (not packed).

Reading a sheet takes about four times its XML in memory (100,000 rows of ten columns: 55 MB of
XML, 200 MB); 200 MB of XML is some 350,000 such rows, far more than a list of POs to download.
"""

MAX_PACKING_RATIO = 100
"""Most times a large part (over ``RATIO_FROM_BYTES`` unpacked) may be bigger unpacked than
packed. Sheets of real workbooks pack 10 to 20 times; a zip bomb about 1,000 times."""

RATIO_FROM_BYTES = 10 * 1024 * 1024
"""Parts smaller than this unpacked are not held to ``MAX_PACKING_RATIO``: they cannot hurt."""

_SMALLER = (
    "Save the sheet with the PO numbers alone as CSV UTF-8 (or as a small .xlsx) and give "
    "that file."
)

_SUFFIX_KINDS = {
    ".xlsx": "XLSX",
    ".xlsm": "XLSX",
    ".xlsb": "XLSB",
    ".xls": "XLS",
    ".ods": "ODS",
}

Row = tuple[int, list[Any]]


@dataclass(slots=True)
class Sheet:
    """The sheet chosen for input: its title, warnings about the choice, and its rows."""

    title: str
    warnings: list[str]
    rows: Iterator[Row]
    kind: str = "XLSX"


def is_workbook(data: bytes) -> bool:
    """Whether ``data`` starts like a workbook: a ZIP (.xlsx, .xlsb, .ods) or OLE file (.xls)."""
    return data.startswith((ZIP_MAGIC, OLE_MAGIC))


def workbook_kind(data: bytes, suffix: str = "") -> str | None:
    """``XLSX``, ``XLSB``, ``XLS`` or ``ODS`` from the content, or None if it is none of them.

    ``.xlsm`` and ``.xltx`` are XLSX inside. A damaged ZIP is taken for what ``suffix`` says.
    """
    if data.startswith(OLE_MAGIC):
        return "XLS"
    if not data.startswith(ZIP_MAGIC):
        return None
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return {".xlsb": "XLSB", ".ods": "ODS"}.get(suffix.lower(), "XLSX")
    if "xl/workbook.bin" in names:
        return "XLSB"
    if "content.xml" in names or "mimetype" in names:
        return "ODS"
    return "XLSX"


@contextmanager
def open_sheet(data: bytes, path: Path) -> Iterator[Sheet]:
    """Open the workbook in ``data`` and yield its ``PO_Data`` sheet, else the first visible one.

    ``rows`` yields ``(row number, cell values)`` for every sheet row from row 1, empty rows
    included; the first value is column A's. A merged cell that spans rows gives its value to
    each of them (a supplier merged down a group of POs names every PO); one that spans columns
    counts as its first column (a merged header names one column).
    """
    kind = workbook_kind(data, path.suffix) or "XLSX"
    check_unpacked_size(data, path)
    if _encrypted(data, kind):
        raise _password(path)
    with _input_errors(path, kind):
        if _SUFFIX_KINDS.get(path.suffix.lower()) == kind:
            # calamine then uses that format's reader, which tells a password from damage.
            book = CalamineWorkbook.from_path(path)
        else:  # misnamed: calamine tries each format on the content
            book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    with book:
        with _input_errors(path, kind):
            found, notes = _choose(book, path)
            sheet = book.get_sheet_by_name(found)
            merges = _Merges(sheet.merged_cell_ranges or [])
            start = sheet.start
            rows = sheet.iter_rows() if start is not None else iter(())
        left = start[1] if start is not None else 0
        yield Sheet(found, notes, _numbered(rows, left, merges), kind)


def check_unpacked_size(data: bytes, path: Path) -> None:
    """Raise InputFileError if the workbook in ``data`` would unpack to more than
    ``MAX_UNPACKED_BYTES`` or a large part of it packs more than ``MAX_PACKING_RATIO`` times.

    The sizes the ZIP directory declares are checked: python-calamine stops reading a part
    that unpacks to more than its declared size (a damaged file to it), so they bound what it
    reads (tests/test_input_bounds.py holds it to that). An .xls is not packed: its own size is
    bounded. A ZIP too damaged to list is left to calamine.
    """
    if data.startswith(OLE_MAGIC):
        if len(data) > MAX_UNPACKED_BYTES:
            raise _too_big(
                f"{path} is {_mb(len(data))}, more than the {_mb(MAX_UNPACKED_BYTES)} an .xls "
                "file may be here"
            )
        return
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    declared = sum(part.file_size for part in parts)
    if declared > MAX_UNPACKED_BYTES:
        raise _too_big(
            f"{path} would unpack to {_mb(declared)}, more than the {_mb(MAX_UNPACKED_BYTES)} "
            "a workbook may unpack to here"
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > RATIO_FROM_BYTES and ratio > MAX_PACKING_RATIO:
            raise _packed_like_a_bomb(path, part, ratio)


def _packed_like_a_bomb(path: Path, part: zipfile.ZipInfo, ratio: float) -> InputFileError:
    return InputFileError(
        f"{path} holds a part ({part.filename}) that unpacks to {_mb(part.file_size)}, "
        f"{ratio:,.0f} times its packed size, past the bound of {MAX_PACKING_RATIO} times "
        f"(real workbooks pack 10 to 20 times: this looks like a zip bomb); it was not "
        f"opened. {_SMALLER}"
    )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def _too_big(what: str) -> InputFileError:
    """The error for a workbook refused for ``what`` (its size and the bound)."""
    return InputFileError(f"{what}; it was not opened. {_SMALLER}")


def cell_text(value: object) -> str:
    """A cell value as text, the way a spreadsheet shows it (``15262984.0`` → ``15262984``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < _LARGEST_EXACT_FLOAT:
        return str(int(value))
    if isinstance(value, datetime):
        if value.time() == time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):  # a duration such as 30:15:00 ([h]:mm:ss)
        seconds = round(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"
    return str(value)


def _choose(book: CalamineWorkbook, path: Path) -> tuple[str, list[str]]:
    """The name of the sheet to read and the warnings about the choice."""
    sheets = [s for s in book.sheets_metadata if s.typ == SheetTypeEnum.WorkSheet]
    if not sheets:
        raise InputFileError(f"{path} has no worksheet. Put the PO numbers on a sheet PO_Data.")
    names = [s.name for s in sheets]
    wanted = SHEET_NAME.casefold()
    exact = next((n for n in names if n == SHEET_NAME), None)
    found = exact or next((n for n in names if n.strip().casefold() == wanted), None)
    if found is not None:
        return found, []
    hidden = {s.name for s in sheets if s.visible != SheetVisibleEnum.Visible}
    visible = [n for n in names if n not in hidden] or names
    listed = ", ".join(f"{n!r} (hidden)" if n in hidden else repr(n) for n in names)
    note = (
        f"{path.name} has no sheet named {SHEET_NAME}; reading the first sheet, {visible[0]!r} "
        f"(sheets: {listed}). Name the sheet {SHEET_NAME} to choose it."
    )
    return visible[0], [note]


def _numbered(rows: Iterator[list[Any]], left: int, merges: _Merges) -> Iterator[Row]:
    """Rows numbered from 1, padded to start at column A, merged cells filled down."""
    # python-calamine yields rows from row 1 but columns only from the first one used.
    pad = [""] * left
    for index, cells in enumerate(rows):
        if pad:
            cells = [*pad, *cells]
        if merges:
            merges.fill(index, cells)
        yield index + 1, cells


class _Merges:
    """Merged ranges that span rows: each gives its top-left value to the rows below its top."""

    def __init__(self, ranges: list[Any]) -> None:
        self._starts: dict[int, list[int]] = {}  # row → columns where such a range starts
        self._below: dict[int, list[tuple[int, int]]] = {}  # row → (top row, column) above it
        self._values: dict[tuple[int, int], Any] = {}
        for (top, column), (bottom, _) in ranges:
            if bottom > top:
                self._starts.setdefault(top, []).append(column)
                for row in range(top + 1, bottom + 1):
                    self._below.setdefault(row, []).append((top, column))

    def __bool__(self) -> bool:
        return bool(self._starts)

    def fill(self, index: int, cells: list[Any]) -> None:
        """Fill row ``index`` (0-based, from row 1) in place."""
        for column in self._starts.get(index, ()):
            self._values[index, column] = cells[column] if column < len(cells) else ""
        for top, column in self._below.get(index, ()):
            if column < len(cells) and cells[column] == "":
                cells[column] = self._values.get((top, column), "")


@contextmanager
def _input_errors(path: Path, kind: str) -> Iterator[None]:
    """Turn what python-calamine raises on a protected or damaged file into InputFileError."""
    try:
        yield
    except InputFileError:
        raise
    except PasswordError:
        raise _password(path) from None
    except Exception as exc:  # CalamineError and its kinds, OSError, ValueError…
        raise _unreadable(path, kind, exc) from None
    except BaseException as exc:
        # Bytes calamine cannot make sense of can make it panic: pyo3's PanicException.
        if type(exc).__name__ != "PanicException":
            raise
        raise _unreadable(path, kind, exc) from None


def _encrypted(data: bytes, kind: str) -> bool:
    """Whether the workbook is encrypted where python-calamine would not say so itself."""
    if kind == "XLS":  # an encrypted .xlsx/.xlsb, which calamine takes for a damaged .xls
        return _ENCRYPTED_STREAM in data
    if kind == "ODS":  # calamine tells only when the file is named .ods
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return b"encryption-data" in archive.read("META-INF/manifest.xml")
        except (zipfile.BadZipFile, KeyError, OSError, ValueError):
            return False
    return False


def _password(path: Path) -> InputFileError:
    return InputFileError(
        f"{path} is protected by a password (encrypted), so it cannot be read. Open it, remove "
        "the password and save it (Excel: File → Info → Protect Workbook → Encrypt with "
        'Password, clear it; LibreOffice: File → Save As without "Save with password"), or '
        "save it as CSV UTF-8."
    )


def _unreadable(path: Path, kind: str, exc: BaseException) -> InputFileError:
    what = {
        "XLSB": "Excel binary workbook (.xlsb)",
        "XLS": "Excel workbook (.xls)",
        "ODS": "OpenDocument spreadsheet (.ods)",
    }.get(kind, "Excel workbook")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    maybe = "damaged, protected by a password," if kind == "XLS" else "damaged"
    return InputFileError(
        f"{path} is not a readable {what}: it may be {maybe} or not a spreadsheet at all "
        f"({detail}). {_RESAVE}"
    )
