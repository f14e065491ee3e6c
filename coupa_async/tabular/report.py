"""The report: one row per input row, in input order, as ``report.csv`` and ``report.xlsx``.

Columns and values are ``report_table``'s. Both files are written to a temporary file beside
the target and renamed over it, so a reader never sees half a report.

Text that a spreadsheet would take for a formula (starting with ``=``, ``+``, ``-``, ``@``, tab
or CR) is neutralised: prefixed with ``'`` in the CSV, stored as plain text in the XLSX. Plain
numbers such as ``-12.5`` are left alone: they cannot be formulas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from coupa_async.log import get_logger
from coupa_async.results.result import PoResult
from coupa_async.tabular.atomic import write_atomically
from coupa_async.tabular.report_table import (
    ATTENTION_STATUSES,
    BAD_STATUSES,
    CLASH_SUFFIX,
    GOOD_STATUSES,
    INVALID,
    NOT_PROCESSED,
    PENDING,
    REPORT_COLUMNS,
    TIME_FORMAT,
    Value,
    csv_values,
    neutralise,
    report_header,
    report_row,
    result_of,
)
from coupa_async.tabular.report_xlsx import EXCEL_MAX_LINKS, write_xlsx
from coupa_async.tabular.rows import InputRow

__all__ = [
    "ATTENTION_STATUSES",
    "BAD_STATUSES",
    "CLASH_SUFFIX",
    "CSV_NAME",
    "EXCEL_MAX_LINKS",
    "GOOD_STATUSES",
    "INVALID",
    "NOT_PROCESSED",
    "PENDING",
    "REPORT_COLUMNS",
    "TIME_FORMAT",
    "XLSX_MAX_ROWS",
    "XLSX_NAME",
    "neutralise",
    "report_header",
    "report_row",
    "write_csv",
    "write_report_csv",
    "write_report_xlsx",
    "write_reports",
    "xlsx_fits",
]

log = get_logger(__name__)

CSV_NAME = "report.csv"
XLSX_NAME = "report.xlsx"
XLSX_MAX_ROWS = 1_048_576  # an Excel sheet's rows, the header included
# UTF-8 with a BOM so that Excel reads it right; Windows line ends.
CSV_ENCODING = "utf-8-sig"
CSV_LINE_END = "\r\n"


def xlsx_fits(rows: int) -> bool:
    """Whether ``rows`` report rows and the header fit on one Excel sheet.

    When they do not, the XLSX report is left out (with a warning) rather than split: the CSV
    report has every row, and one sheet is what filters and sorting work on.
    """
    return rows + 1 <= XLSX_MAX_ROWS


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
    return write_csv(Path(path), header, table)


def write_report_xlsx(
    path: Path,
    rows: Sequence[InputRow],
    results: Mapping[str, PoResult],
    columns: Iterable[str],
) -> Path:
    """Write the report as an Excel workbook; return the path written (see write_report_csv).

    Raises ValueError when the rows do not fit on one sheet (see ``xlsx_fits``).
    """
    if not xlsx_fits(len(rows)):
        raise ValueError(f"{len(rows)} rows do not fit on one Excel sheet")
    header, table = _report_table(rows, results, list(columns))
    return write_xlsx(Path(path), header, table)


def write_reports(
    out_dir: Path,
    rows: Sequence[InputRow],
    results: Mapping[str, PoResult],
    columns: Iterable[str],
) -> list[Path]:
    """Write ``<out>/report.csv`` and ``<out>/report.xlsx`` atomically; return the paths written.

    The XLSX is left out (with a logged warning) when the rows do not fit on one Excel sheet.
    ``report.csv`` replaces any live report (``LiveCsvReport``) of the run.
    """
    out_dir = Path(out_dir)
    header, table = _report_table(rows, results, list(columns))
    written = [write_csv(out_dir / CSV_NAME, header, table)]
    if xlsx_fits(len(table)):
        written.append(write_xlsx(out_dir / XLSX_NAME, header, table))
    else:
        log.warning("report_xlsx_skipped", rows=len(table), reason="too many rows for Excel")
    return written


def _report_table(
    rows: Sequence[InputRow], results: Mapping[str, PoResult], columns: list[str]
) -> tuple[list[str], list[list[Value]]]:
    table = [report_row(row, result_of(row, results), columns) for row in rows]
    return report_header(columns), table


def write_csv(path: Path, header: Sequence[str], table: Iterable[Sequence[Value]]) -> Path:
    """Write ``header`` and ``table`` as the CSV report is written (BOM, CRLF, formulas
    neutralised), atomically; return the path written (see write_report_csv)."""

    def write(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding=CSV_ENCODING, errors="replace", newline="")
        writer = csv.writer(text, lineterminator=CSV_LINE_END)
        writer.writerow(header)
        writer.writerows(csv_values(values) for values in table)
        text.flush()
        text.detach()

    return write_atomically(path, write)
