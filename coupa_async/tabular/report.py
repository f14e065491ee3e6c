"""The report: one row per input row, in input order, as ``report.csv`` and ``report.xlsx``.

Columns are the reference's (REPORT_COLUMNS), then the input's other columns; an input column
named like a reference column gets the suffix ``_INPUT``. Both files are written to a temporary
file beside the target and renamed over it, so a reader never sees half a report.

Text that a spreadsheet would take for a formula (starting with ``=``, ``+``, ``-``, ``@``, tab
or CR) is neutralised: prefixed with ``'`` in the CSV, stored as plain text in the XLSX. Plain
numbers such as ``-12.5`` are left alone: they cannot be formulas.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter

from coupa_async.layout import hidden_temp_name
from coupa_async.log import get_logger
from coupa_async.result import PoResult
from coupa_async.tabular.rows import InputRow

log = get_logger("report")

REPORT_COLUMNS = (
    "PO_NUMBER",
    "STATUS",
    "SUPPLIER",
    "ATTACHMENTS_FOUND",
    "ATTACHMENTS_DOWNLOADED",
    "AttachmentName",
    "LAST_PROCESSED",
    "ERROR_MESSAGE",
    "DOWNLOAD_FOLDER",
    "COUPA_URL",
)
CLASH_SUFFIX = "_INPUT"
CSV_NAME = "report.csv"
XLSX_NAME = "report.xlsx"
PENDING = "PENDING"
INVALID = "INVALID"
NOT_PROCESSED = "not processed yet"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

GOOD_STATUSES = frozenset({"COMPLETED", "NO_ATTACHMENTS"})
ATTENTION_STATUSES = frozenset({"PARTIAL", "PR_NOT_ACCESSIBLE", PENDING})
BAD_STATUSES = frozenset({"FAILED", "PO_NOT_FOUND", INVALID})

XLSX_MAX_ROWS = 1_048_576
EXCEL_MAX_LINKS = 65_530
XLSX_MAX_CELL_CHARS = 32_767
MAX_COLUMN_WIDTH = 60

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")
# What cannot be written to XML: control characters, and lone surrogates (undecodable names).
_UNWRITABLE = re.compile(ILLEGAL_CHARACTERS_RE.pattern + "|[\ud800-\udfff]")
_STATUS = REPORT_COLUMNS.index("STATUS")
_FOLDER = REPORT_COLUMNS.index("DOWNLOAD_FOLDER")
_PROCESSED = REPORT_COLUMNS.index("LAST_PROCESSED")

# Named styles of the workbook; the status ones use Excel's own "Good", "Neutral", "Bad" colours.
_HEADER_STYLE = "Report header"
_TIME_STYLE = "Report time"
_LINK_STYLE = "Report folder link"
_STATUS_STYLES = {
    "Status done": (GOOD_STATUSES, "C6EFCE", "006100"),
    "Status attention": (ATTENTION_STATUSES, "FFEB9C", "9C5700"),
    "Status failed": (BAD_STATUSES, "FFC7CE", "9C0006"),
}

Value = str | int | datetime | None


def report_header(columns: Iterable[str]) -> list[str]:
    """The report's column names: REPORT_COLUMNS, then ``columns`` renamed where they clash."""
    header = list(REPORT_COLUMNS)
    taken = {name.casefold() for name in header}
    for column in columns:
        name = column
        if name.casefold() in taken:
            name = f"{column}{CLASH_SUFFIX}"
        n = 2
        while name.casefold() in taken:
            name, n = f"{column}{CLASH_SUFFIX}_{n}", n + 1
        taken.add(name.casefold())
        header.append(name)
    return header


def report_row(row: InputRow, result: PoResult | None, columns: Sequence[str]) -> list[Value]:
    """The values of one report row, in the order of ``report_header(columns)``."""
    if result is None:
        status = INVALID if row.po is None else PENDING
        message = row.error if row.po is None else NOT_PROCESSED
        values: list[Value] = [row.raw_po, status, row.supplier or "", None, None, "", None]
        values += [message, "", ""]
    else:
        values = [
            row.raw_po,
            result.outcome.value,
            result.supplier or row.supplier or "",
            result.found,
            result.downloaded,
            "; ".join(saved.name for saved in result.files),
            _local(result.finished_at or result.started_at),
            result.message,
            str(result.folder) if result.folder else "",
            result.po_url,
        ]
    values += [row.extra.get(column, "") for column in columns]
    return values


def write_report_csv(
    path: Path,
    rows: Sequence[InputRow],
    results: Mapping[str, PoResult],
    columns: Iterable[str],
) -> Path:
    """Write the report as UTF-8 CSV with a BOM (Excel reads it right); return the path written.

    The path differs from ``path`` only when ``path`` is locked (open in Excel on Windows).
    """
    header, table = _report_table(rows, results, list(columns))
    return _write_csv(Path(path), header, table)


def write_report_xlsx(
    path: Path,
    rows: Sequence[InputRow],
    results: Mapping[str, PoResult],
    columns: Iterable[str],
) -> Path:
    """Write the report as an Excel workbook; return the path written (see write_report_csv).

    Bold header on a fill, frozen below the header, an autofilter, widths fitted to the content,
    STATUS coloured by outcome, DOWNLOAD_FOLDER a link to the folder (for the first
    EXCEL_MAX_LINKS rows: Excel allows no more on a sheet).
    """
    if len(rows) + 1 > XLSX_MAX_ROWS:
        raise ValueError(f"{len(rows)} rows do not fit on one Excel sheet")
    header, table = _report_table(rows, results, list(columns))
    return _write_xlsx(Path(path), header, table)


def write_reports(
    out_dir: Path,
    rows: Sequence[InputRow],
    results: Mapping[str, PoResult],
    columns: Iterable[str],
) -> list[Path]:
    """Write ``<out>/report.csv`` and ``<out>/report.xlsx`` atomically; return the paths written.

    The XLSX is left out (with a logged warning) when the rows do not fit on one Excel sheet.
    """
    out_dir = Path(out_dir)
    header, table = _report_table(rows, results, list(columns))
    written = [_write_csv(out_dir / CSV_NAME, header, table)]
    if len(table) + 1 > XLSX_MAX_ROWS:
        log.warning("report_xlsx_skipped", rows=len(table), reason="too many rows for Excel")
    else:
        written.append(_write_xlsx(out_dir / XLSX_NAME, header, table))
    return written


def neutralise(text: str) -> str:
    """``text`` prefixed with ``'`` if a spreadsheet would take it for a formula."""
    if text.startswith(_FORMULA_START) and _NUMBER.fullmatch(text) is None:
        return f"'{text}"
    return text


def _report_table(
    rows: Sequence[InputRow], results: Mapping[str, PoResult], columns: list[str]
) -> tuple[list[str], list[list[Value]]]:
    table = []
    for row in rows:
        result = results.get(row.po.label) if row.po is not None else None
        table.append(report_row(row, result, columns))
    return report_header(columns), table


def _local(moment: datetime | None) -> datetime | None:
    """``moment`` as naive local time to the second; naive times are taken as local already."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _write_csv(path: Path, header: list[str], table: list[list[Value]]) -> Path:
    def write(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([_csv_text(value) for value in values] for values in table)
        text.flush()
        text.detach()

    return _write_atomically(path, write)


def _csv_text(value: Value) -> str:
    if isinstance(value, str):
        return neutralise(value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    return str(value)


def _write_xlsx(path: Path, header: list[str], table: list[list[Value]]) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Report")
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(table) + 1}"
    for index, width in enumerate(_widths(header, table), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    styles = _add_styles(book)
    header_cells = []
    for name in header:
        cell = _text_cell(sheet, name)
        cell.style = _HEADER_STYLE
        header_cells.append(cell)
    sheet.append(header_cells)
    link = _Linker(path.parent)
    for values in table:
        cells = [_xlsx_value(sheet, value) for value in values]
        status = values[_STATUS]
        if status in styles:
            cell = _text_cell(sheet, str(status))
            cell.style = styles[status]
            cells[_STATUS] = cell
        if values[_PROCESSED] is not None:
            cell = WriteOnlyCell(sheet, value=values[_PROCESSED])
            cell.style = _TIME_STYLE
            cells[_PROCESSED] = cell
        if values[_FOLDER] and link.room:
            cells[_FOLDER] = link.cell(sheet, str(values[_FOLDER]))
        sheet.append(cells)
    return _write_atomically(path, book.save)


def _add_styles(book: Workbook) -> dict[str, str]:
    """Register the report's named styles in ``book``; return the style name of each STATUS."""
    header = NamedStyle(_HEADER_STYLE, font=Font(bold=True, color="FFFFFF"))
    header.fill = PatternFill("solid", fgColor="305496")
    book.add_named_style(header)
    book.add_named_style(NamedStyle(_TIME_STYLE, number_format="yyyy-mm-dd hh:mm:ss"))
    book.add_named_style(NamedStyle(_LINK_STYLE, font=Font(color="0563C1", underline="single")))
    names = {}
    for name, (statuses, fill, font) in _STATUS_STYLES.items():
        style = NamedStyle(name, font=Font(color=font, bold=True))
        style.fill = PatternFill("solid", fgColor=fill)
        book.add_named_style(style)
        names.update(dict.fromkeys(statuses, name))
    return names


def _widths(header: Sequence[str], table: Sequence[Sequence[Value]]) -> list[float]:
    """Column widths in characters: the longest line in each column, capped."""
    widths = [len(name) + 4 for name in header]  # room for the filter button
    for values in table:
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


def _xlsx_value(sheet: Any, value: Value) -> Any:
    if isinstance(value, str):
        if not value:
            return None  # an empty cell costs nothing to write
        if value.startswith(_FORMULA_START):
            return _text_cell(sheet, value)
        return _xlsx_text(value)
    return value


def _text_cell(sheet: Any, value: str) -> Cell:
    """A cell that holds ``value`` as text, even if it looks like a formula."""
    cell = WriteOnlyCell(sheet, value=_xlsx_text(value))
    if value.startswith(_FORMULA_START):
        cell.data_type = "s"  # openpyxl would otherwise store "=..." as a formula
        cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
    return cell


def _xlsx_text(text: str) -> str:
    if _UNWRITABLE.search(text):
        text = _UNWRITABLE.sub("\ufffd", text)
    if len(text) > XLSX_MAX_CELL_CHARS:
        text = text[: XLSX_MAX_CELL_CHARS - 1] + "…"
    return text


class _Linker:
    """DOWNLOAD_FOLDER cells linked to their folder: relative to the report when inside it."""

    def __init__(self, report_dir: Path) -> None:
        self._prefix = str(report_dir.absolute()).rstrip(os.sep) + os.sep
        self.room = EXCEL_MAX_LINKS

    def cell(self, sheet: Any, folder: str) -> Cell:
        cell = _text_cell(sheet, folder)
        if folder.startswith(self._prefix):
            relative = folder[len(self._prefix) :].split(os.sep)
            cell.hyperlink = "/".join(_quote_link(part) for part in relative)
        elif os.path.isabs(folder):
            cell.hyperlink = Path(folder).as_uri()
        else:
            cell.hyperlink = "/".join(_quote_link(part) for part in Path(folder).parts)
        cell.style = _LINK_STYLE
        self.room -= 1
        return cell


def _quote_link(part: str) -> str:
    # Only what would end or change a relative link; other characters stay readable.
    return part.replace("%", "%25").replace("#", "%23").replace("?", "%3F").replace(" ", "%20")


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` through ``write`` into a new hidden file beside it, then rename it over.

    Returns the path written: if ``path`` is locked by another program (open in Excel on
    Windows), the new file gets a time-stamped name beside it instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(hidden_temp_name(path.name))
    try:
        with temp.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(temp, path)
        except PermissionError:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            other = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
            os.replace(temp, other)
            log.warning("report_locked", path=str(path), written=str(other))
            return other
        return path
    finally:
        temp.unlink(missing_ok=True)
