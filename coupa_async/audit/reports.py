"""The report of a run (report.csv, and report.xlsx when there is one) against the journal.

Read back the way the project reads spreadsheets (``tabular.workbook``); per PO row, STATUS,
ATTACHMENTS_DOWNLOADED and DOWNLOAD_FOLDER must be what the journal has.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from coupa_async.audit.findings import Check, Disagreement, shown, state_said
from coupa_async.coupa.numbers import InvalidPoNumber, parse_po_number
from coupa_async.errors import InputFileError
from coupa_async.results.journal import PENDING, PoRecord
from coupa_async.tabular.report import CSV_NAME, XLSX_NAME, neutralise
from coupa_async.tabular.workbook import cell_text, open_sheet

ReportRow = tuple[int, dict[str, str]]  # (row number in the file, values by column)


def check_reports(out: Path, records: dict[str, PoRecord]) -> tuple[list[Disagreement], list[Path]]:
    """report.csv (which must exist) and report.xlsx (when present) against the journal."""
    findings: list[Disagreement] = []
    read: list[Path] = []
    for path, reader, required in (
        (out / CSV_NAME, _csv_rows, True),
        (out / XLSX_NAME, _xlsx_rows, False),
    ):
        if not path.is_file():
            if required:
                said = f"a report of the run ({len(records)} PO(s) in the journal)"
                findings.append(Disagreement("", Check.REPORT, said, "no report.csv", path))
            continue
        try:
            rows = reader(path)
        except (OSError, UnicodeDecodeError, csv.Error, InputFileError) as exc:
            findings.append(
                Disagreement("", Check.REPORT, "a readable report", f"unreadable: {exc}", path)
            )
            continue
        read.append(path)
        findings += compare_report(rows, records, path, out)
    return findings, read


def compare_report(
    rows: Iterable[ReportRow], records: dict[str, PoRecord], path: Path, out: Path
) -> list[Disagreement]:
    """Per PO row: STATUS, ATTACHMENTS_DOWNLOADED and DOWNLOAD_FOLDER as the journal has them."""
    findings = []
    for number, row in rows:
        try:
            label = parse_po_number(row.get("PO_NUMBER", "")).label
        except InvalidPoNumber:
            continue  # an INVALID input row: never sent to the site, not in the journal
        record = records.get(label)
        said, found = _row_against(row, record, out)
        if said is not None:
            found = f"{path.name} row {number}: {found}"
            findings.append(Disagreement(label, Check.REPORT, said, found, path))
    return findings


def _row_against(row: dict[str, str], record: PoRecord | None, out: Path) -> tuple[str | None, str]:
    """(what the journal says, what the row says), or (None, "") when they agree."""
    status = row.get("STATUS", "")
    downloaded = row.get("ATTACHMENTS_DOWNLOADED", "")
    folder = row.get("DOWNLOAD_FOLDER", "")
    found = f"{status or 'no status'}, {downloaded or 0} downloaded, {folder or 'no folder'}"
    if record is None or record.state == PENDING:
        return (None, "") if status == PENDING else (state_said(record), found)
    same = (
        status == record.state
        and downloaded == str(len(record.files))
        and same_folder(folder, record.folder, out)
    )
    if same:
        return None, ""
    said = (
        f"{record.state}, {len(record.files)} downloaded, "
        f"{shown(record.folder, out) if record.folder else 'no folder'}"
    )
    if folder and record.folder is not None and same_folder(folder, record.folder, out):
        found = f"{status or 'no status'}, {downloaded or 0} downloaded, the same folder"
    return said, found


def same_folder(reported: str, folder: Path | None, out: Path) -> bool:
    """Whether the report's DOWNLOAD_FOLDER names the journal's folder.

    Compared from ``out`` down, so an output folder moved or reached by another path agrees.
    """
    if not reported or folder is None:
        return not reported and folder is None
    if os.path.abspath(reported) == os.path.abspath(folder):
        return True
    try:
        below = folder.relative_to(out).parts
    except ValueError:
        return False
    return bool(below) and Path(reported).parts[-len(below) :] == below


def _csv_rows(path: Path) -> list[ReportRow]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [
            (number, {key: _plain(value or "") for key, value in row.items() if key})
            for number, row in enumerate(csv.DictReader(handle), start=2)
        ]


def _plain(text: str) -> str:
    """A CSV value without the ``'`` the report puts before text a spreadsheet would run."""
    if text.startswith("'") and neutralise(text[1:]) == text:
        return text[1:]
    return text


def _xlsx_rows(path: Path) -> list[ReportRow]:
    with open_sheet(path.read_bytes(), path) as sheet:
        header: list[str] = []
        rows = []
        for number, values in sheet.rows:
            texts = [cell_text(value) for value in values]
            if not header:
                header = texts
                continue
            rows.append((number, dict(zip(header, texts, strict=False))))
    return rows
