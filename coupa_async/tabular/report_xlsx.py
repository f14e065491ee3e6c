"""``report.xlsx``: the report as a styled Excel sheet, written row by row with XlsxWriter.

XlsxWriter's ``constant_memory`` mode keeps one row in memory at a time. Every text is written
with ``write_string``, so nothing becomes a formula; text that looks like one also gets Excel's
quote prefix, so it stays text when someone edits the cell.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from xlsxwriter import Workbook
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from coupa_async.tabular.atomic import write_atomically
from coupa_async.tabular.report_table import (
    ATTENTION_STATUSES,
    BAD_STATUSES,
    FOLDER,
    FORMULA_START,
    GOOD_STATUSES,
    PROCESSED,
    STATUS,
    TIME_FORMAT,
    Value,
)

SHEET_TITLE = "Report"
EXCEL_MAX_LINKS = 65_530
EXCEL_MAX_URL = 2_079
XLSX_MAX_CELL_CHARS = 32_767
MAX_COLUMN_WIDTH = 60
# Widths are fitted to at most this many rows, spread over the table.
WIDTH_SAMPLE = 2_000

# What cannot be written to XML: control characters, non-characters, lone surrogates.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Characters quoted in a link: what would end or change it, and what XlsxWriter would quote
# itself (it leaves a link that already holds a %XX alone).
_LINK_QUOTES = str.maketrans({c: f"%{ord(c):02X}" for c in '% #?"<>[]^`{}'})
_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
}
# Columns written with a format or as a link.
_SPECIAL = frozenset({STATUS, PROCESSED, FOLDER})
# Excel's own "Good", "Neutral" and "Bad" colours: (fill, font).
_STATUS_COLOURS = (
    (GOOD_STATUSES, "#C6EFCE", "#006100"),
    (ATTENTION_STATUSES, "#FFEB9C", "#9C5700"),
    (BAD_STATUSES, "#FFC7CE", "#9C0006"),
)


def write_xlsx(path: Path, header: Sequence[str], table: Sequence[Sequence[Value]]) -> Path:
    """Write ``header`` and ``table`` to ``path`` atomically; return the path written.

    Bold header on a fill, frozen below the header, an autofilter, widths fitted to a sample of
    rows, STATUS coloured by outcome, DOWNLOAD_FOLDER a link to the folder (for the first
    EXCEL_MAX_LINKS rows: Excel allows no more on a sheet). The caller checks that the rows fit.
    """

    def write(handle: IO[bytes]) -> None:
        book = Workbook(handle, _OPTIONS)
        sheet = book.add_worksheet(SHEET_TITLE)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(table), len(header) - 1)
        for column, width in enumerate(_widths(header, table)):
            sheet.set_column(column, column, width)
        rows = _RowWriter(book, sheet, _Links(path.parent))
        rows.header(header)
        for number, values in enumerate(table, start=1):
            rows.write(number, values)
        try:
            book.close()
        except FileCreateError as exc:  # XlsxWriter wraps the OSError (a full disk, say)
            cause = exc.args[0] if exc.args else exc
            raise (cause if isinstance(cause, OSError) else OSError(str(cause))) from None

    return write_atomically(path, write)


class _RowWriter:
    """Writes report rows to the sheet, each cell with its format."""

    def __init__(self, book: Workbook, sheet: Worksheet, links: _Links) -> None:
        self._sheet = sheet
        self._links = links
        header = {"bold": True, "font_color": "#FFFFFF", "bg_color": "#305496"}
        self._header = book.add_format(header)
        self._time = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._link = book.add_format({"font_color": "#0563C1", "underline": 1})
        self._quoted = book.add_format({"quote_prefix": True})
        self._status: dict[str, Format] = {}
        for statuses, fill, font in _STATUS_COLOURS:
            style = book.add_format({"bold": True, "font_color": font, "bg_color": fill})
            self._status.update(dict.fromkeys(statuses, style))

    def header(self, names: Sequence[str]) -> None:
        """Write row 1: the column names."""
        for column, name in enumerate(names):
            self._sheet.write_string(0, column, _text(name), self._header)

    def write(self, number: int, values: Sequence[Value]) -> None:
        """Write the report row ``values`` as sheet row ``number`` (0-based)."""
        write_string = self._sheet.write_string
        for column, value in enumerate(values):
            if value is None or value == "":
                continue  # an empty cell costs nothing to write
            if column in _SPECIAL:
                self._special(number, column, value)
            elif isinstance(value, str) and not value.startswith(FORMULA_START):
                write_string(number, column, _text(value))  # most cells: kept in the loop
            else:
                self._plain(number, column, value)

    def _special(self, number: int, column: int, value: str | int | datetime) -> None:
        if column == PROCESSED and isinstance(value, datetime):
            self._sheet.write_datetime(number, column, value, self._time)
        elif column == STATUS and isinstance(value, str) and value in self._status:
            self._sheet.write_string(number, column, value, self._status[value])
        elif not (column == FOLDER and isinstance(value, str) and self._folder(number, value)):
            self._plain(number, column, value)

    def _plain(self, number: int, column: int, value: str | int | datetime) -> None:
        if isinstance(value, str):
            style = self._quoted if value.startswith(FORMULA_START) else None
            self._sheet.write_string(number, column, _text(value), style)
        elif isinstance(value, datetime):
            self._sheet.write_datetime(number, column, value)
        else:
            self._sheet.write_number(number, column, value)

    def _folder(self, number: int, folder: str) -> bool:
        """Write ``folder`` as a link to it; False (nothing written) if it gets none."""
        if not self._links.room:
            return False
        url = self._links.url(folder)
        if url is None:
            return False
        self._sheet.write_url(number, FOLDER, url, self._link, _text(folder))
        self._links.room -= 1
        return True


class _Links:
    """Links to DOWNLOAD_FOLDER folders, relative to the report where they can be.

    Relative links still work when the whole output folder is moved or zipped.
    """

    def __init__(self, report_dir: Path) -> None:
        self._report_dir = str(report_dir.absolute())
        self._prefix = self._report_dir.rstrip(os.sep) + os.sep
        self.room = EXCEL_MAX_LINKS

    def url(self, folder: str) -> str | None:
        """The link for ``folder`` as XlsxWriter takes it, or None if Excel would refuse it."""
        url = ""
        if folder.startswith(self._prefix):  # the usual case, and quicker than relpath
            parts: Sequence[str] = folder[len(self._prefix) :].split(os.sep)
        elif os.path.isabs(folder):
            try:
                parts = Path(os.path.relpath(folder, self._report_dir)).parts
            except ValueError:  # on another drive (Windows)
                parts, url = (), Path(folder).as_uri()
        else:
            parts = Path(folder).parts
        if parts:
            url = "external:" + "/".join(part.translate(_LINK_QUOTES) for part in parts)
        if len(url.encode("utf-16-le")) > 2 * EXCEL_MAX_URL or _UNWRITABLE.search(url):
            return None
        return url


def _widths(header: Sequence[str], table: Sequence[Sequence[Value]]) -> list[float]:
    """Column widths in characters: the longest line in each column of a sample, capped."""
    widths = [len(name) + 4 for name in header]  # room for the filter button
    step = max(1, len(table) // WIDTH_SAMPLE)
    for values in table[::step]:
        for index, value in enumerate(values):
            if not value:
                continue
            if isinstance(value, datetime):
                size = len(TIME_FORMAT) + 2
            elif isinstance(value, str):
                size = max(map(len, value.splitlines())) if "\n" in value else len(value)
            else:
                size = len(str(value))
            if size + 2 > widths[index]:
                widths[index] = size + 2
    return [min(width, MAX_COLUMN_WIDTH) for width in widths]


def _text(text: str) -> str:
    """``text`` as a cell can hold it: XML-safe, at most XLSX_MAX_CELL_CHARS characters."""
    # isprintable() is quick and true for nearly every text; tab and line breaks are allowed.
    if not text.isprintable() and _UNWRITABLE.search(text):
        text = _UNWRITABLE.sub("\ufffd", text)
    if len(text) > XLSX_MAX_CELL_CHARS:
        text = text[: XLSX_MAX_CELL_CHARS - 1] + "…"
    return text
