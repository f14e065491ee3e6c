"""Excel workbooks as input: which sheet is read, and cell values as the user sees them."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from coupa_async.errors import InputFileError

SHEET_NAME = "PO_Data"
# Spreadsheet numbers are doubles: above 2**53 the digits shown are no longer exact.
_LARGEST_EXACT_FLOAT = 2**53


@dataclass(slots=True)
class Sheet:
    """The sheet chosen for input: its title, warnings about the choice, and its rows."""

    title: str
    warnings: list[str]
    rows: Iterator[tuple[int, tuple[Any, ...]]]


@contextmanager
def open_sheet(data: bytes, path: Path) -> Iterator[Sheet]:
    """Open the workbook in ``data`` read-only and yield its ``PO_Data`` sheet, else the first.

    ``rows`` yields ``(row number, cell values)``, one per sheet row, including empty rows.
    """
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles, data validation and the like it does not keep.
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for damaged or foreign ZIP files
        raise InputFileError(
            f"{path} is not a readable Excel workbook ({type(exc).__name__}: {exc}). "
            'Open it in Excel and save it again as "Excel Workbook (.xlsx)", or as CSV UTF-8.'
        ) from None
    try:
        sheets = list(book.worksheets)
        if not sheets:
            raise InputFileError(f"{path} has no worksheet. Put the PO numbers on a sheet PO_Data.")
        found = _pick(sheets)
        notes = []
        if found is None:
            visible = [s for s in sheets if s.sheet_state == "visible"] or sheets
            found = visible[0]
            names = ", ".join(repr(s.title) for s in sheets)
            notes.append(
                f"{path.name} has no sheet named {SHEET_NAME}; reading the first sheet, "
                f"{found.title!r} (sheets: {names}). Name the sheet {SHEET_NAME} to choose it."
            )
        # Some writers record a wrong size; without it openpyxl reads every row there is.
        found.reset_dimensions()
        rows = enumerate(found.iter_rows(values_only=True), start=1)
        yield Sheet(found.title, notes, rows)
    finally:
        book.close()


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
    return str(value)


def _pick(sheets: list[Any]) -> Any | None:
    exact = next((s for s in sheets if s.title == SHEET_NAME), None)
    if exact is not None:
        return exact
    wanted = SHEET_NAME.casefold()
    return next((s for s in sheets if s.title.strip().casefold() == wanted), None)
