"""Input rows in, report rows out (CSV for now; XLSX and more encodings come later)."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coupa_async.coupa.numbers import InvalidPoNumber, PoNumber, parse_po_number
from coupa_async.errors import InputFileError
from coupa_async.result import PoResult

PO_COLUMN_ALIASES = ("po_number", "po number", "ponumber", "po")
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


@dataclass
class InputRow:
    """One row of the input file."""

    line: int
    raw_po: str
    po: PoNumber | None
    error: str = ""
    supplier: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class InputTable:
    rows: list[InputRow]
    columns: list[str]


def _decode(data: bytes, path: Path) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputFileError(f"{path} is neither UTF-8 nor Windows-1252 text. Save it as UTF-8 CSV.")


def read_input(path: Path) -> InputTable:
    """Read a CSV with a PO_NUMBER column (``,`` or ``;``); invalid rows are kept, marked."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"The input file {path} does not exist.") from None
    except OSError as exc:
        raise InputFileError(f"Cannot read {path}: {exc.strerror}.") from None
    text = _decode(data, path)
    if not text.strip():
        raise InputFileError(f"{path} is empty. It needs a PO_NUMBER column and one PO a row.")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = columns
    po_column = next((c for c in columns if c.strip().lower() in PO_COLUMN_ALIASES), None)
    if po_column is None:
        raise InputFileError(
            f"{path} has no PO_NUMBER column. Columns found: {', '.join(columns) or 'none'}. "
            "Name the column with the PO numbers PO_NUMBER."
        )
    supplier_column = next((c for c in columns if c.strip().upper() == "SUPPLIER"), None)
    rows = []
    for line, record in enumerate(reader, start=2):
        raw = (record.get(po_column) or "").strip()
        extra = {k: v or "" for k, v in record.items() if k not in (po_column, None)}
        supplier = (record.get(supplier_column) or "").strip() if supplier_column else ""
        try:
            rows.append(InputRow(line, raw, parse_po_number(raw), "", supplier or None, extra))
        except InvalidPoNumber as exc:
            rows.append(InputRow(line, raw, None, exc.reason, supplier or None, extra))
    return InputTable(rows, [c for c in columns if c != po_column])


def report_row(row: InputRow, result: PoResult | None) -> dict[str, str]:
    """One report row: the reference's columns, then the input's other columns."""
    values = {column: "" for column in REPORT_COLUMNS}
    values["PO_NUMBER"] = row.raw_po
    if result is None:
        values["STATUS"] = "INVALID" if row.po is None else "PENDING"
        values["ERROR_MESSAGE"] = row.error or ("not processed yet" if row.po else "")
    else:
        values.update(
            STATUS=result.outcome.value,
            SUPPLIER=result.supplier,
            ATTACHMENTS_FOUND=str(result.found),
            ATTACHMENTS_DOWNLOADED=str(result.downloaded),
            AttachmentName="; ".join(saved.name for saved in result.files),
            LAST_PROCESSED=(result.finished_at or result.started_at or "").__str__()[:19],
            ERROR_MESSAGE=result.message,
            DOWNLOAD_FOLDER=str(result.folder or ""),
            COUPA_URL=result.po_url,
        )
    for key, value in row.extra.items():
        if key not in values:
            values[key] = value
    return values


def write_report_csv(
    path: Path, rows: Sequence[InputRow], results: dict[str, PoResult], columns: Iterable[str]
) -> None:
    """Write the report atomically: a temporary file in the same folder, then a rename."""
    header = list(REPORT_COLUMNS) + [c for c in columns if c not in REPORT_COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                result = results.get(row.po.label) if row.po else None
                writer.writerow(report_row(row, result))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
