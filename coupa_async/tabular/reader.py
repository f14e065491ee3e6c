"""Read an input file (CSV or a spreadsheet) into rows of PO numbers, never changing the file.

Rules, per the reference and issue 5:

- The PO column is ``PO_NUMBER`` (``PO Number``, ``po_number``… in any case). Each value goes
  through ``parse_po_number``; an invalid one makes an invalid row (``po`` None, ``error`` the
  reason), an empty one with other values in the row too ("empty PO number"). Rows whose cells
  are all empty are skipped. Duplicates are kept: every row gets the PO's result.
- ``SUPPLIER`` gives ``InputRow.supplier``. Columns right of a column named ``<|>`` give
  ``InputRow.levels``. Every column but the PO column and ``<|>`` is carried to the report.
- ``PRIORITY`` (optional) is an integer or LOW/NORMAL/HIGH/URGENT (see
  ``coupa_async.running.priority``). A bad value does not make the row invalid, because it
  only orders the work: the row runs at NORMAL and the table gets one warning naming the first
  such line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xlsxwriter.utility import xl_col_to_name

from coupa_async.coupa.numbers import InvalidPoNumber, PoNumber, parse_po_number
from coupa_async.errors import InputFileError
from coupa_async.running.priority import DEFAULT_PRIORITY, parse_priority
from coupa_async.tabular import csvtext, workbook
from coupa_async.tabular.header import (
    LEVEL_SEPARATOR,
    PO_COLUMN,
    PO_KEYS,
    PRIORITY_KEYS,
    SUPPLIER_KEYS,
    clean_header,
    find_column,
    header_key,
)
from coupa_async.tabular.rows import InputRow, InputTable

EMPTY_PO = "empty PO number"

_PDF = b"%PDF-"
_WORKBOOK_SUFFIXES = {
    ".xlsx": "an Excel workbook",
    ".xlsm": "an Excel workbook",
    ".xltx": "an Excel workbook",
    ".xltm": "an Excel workbook",
    ".xlsb": "an Excel binary workbook",
    ".xls": "an Excel workbook",
    ".ods": "an OpenDocument spreadsheet",
}
_OTHER_FORMATS = {
    ".numbers": "a Numbers spreadsheet",
    ".pdf": "a PDF",
    ".doc": "a Word document",
    ".docx": "a Word document",
    ".msg": "an Outlook message",
    ".zip": "a ZIP archive",
    ".json": "a JSON file",
    ".xml": "an XML file",
    ".html": "a web page",
    ".htm": "a web page",
}
_PLAIN_PO = re.compile(r"[ \t]*(?:([Pp][OoMm])[ \t]*)?([0-9]{1,20})[ \t]*")
_SAVE_AS = 'Open it in Excel and use "Save As" → "Excel Workbook (.xlsx)" or "CSV UTF-8".'

_Cells = Sequence[Any]


def read_input(path: Path) -> InputTable:
    """Read the CSV file or spreadsheet at ``path``; raise InputFileError saying what is wrong.

    Spreadsheets: .xlsx, .xlsm, .xlsb, .xls and .ods, recognised by their content.
    """
    path = Path(path)
    data = _read_bytes(path)
    if _is_workbook(data, path):
        with workbook.open_sheet(data, path) as sheet:
            where = f"sheet {sheet.title!r} of {path}"
            table = _read_rows(sheet.rows, where, xlsx=True)
        table.warnings[:0] = sheet.warnings
        table.read_as = f"{sheet.kind}, sheet {sheet.title!r}"
        return table
    decoded = csvtext.decode(data, path)
    if not decoded.text.strip():
        raise _empty(str(path))
    delimiter, text = csvtext.sniff_delimiter(decoded.text)
    notes = list(decoded.warnings)  # mixed encodings, then quotes never closed
    records = csvtext.records(text, delimiter, path, notes)
    table = _read_rows(records, str(path), xlsx=False, delimiter=delimiter)
    table.warnings[:0] = notes
    shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
    table.read_as = f"CSV, {decoded.encoding}, {shown}-delimited"
    return table


def _read_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise InputFileError(f"{path} is a folder. Give the CSV or Excel file with the PO numbers.")
    try:
        with path.open("rb") as handle:  # read-only: the input is never changed
            data = handle.read()
    except FileNotFoundError:
        where = "" if path.is_absolute() else f" (looked in {Path.cwd()})"
        raise InputFileError(
            f"The input file {path} does not exist{where}. Check the name and the folder."
        ) from None
    except OSError as exc:
        raise InputFileError(
            f"Cannot read {path}: {exc.strerror or exc}. Check that you may read it."
        ) from None
    if not data:
        raise _empty(str(path))
    return data


def _is_workbook(data: bytes, path: Path) -> bool:
    """Whether to read ``path`` as a spreadsheet (by content first); refuse other formats."""
    suffix = path.suffix.lower()
    if data.startswith(_PDF):
        suffix = ".pdf"
    if suffix in _OTHER_FORMATS:
        raise InputFileError(
            f"{path} is {_OTHER_FORMATS[suffix]}, not a CSV or .xlsx file. {_SAVE_AS}"
        )
    if workbook.is_workbook(data):
        return True
    if suffix in _WORKBOOK_SUFFIXES:
        markup = data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
        holds = " It holds a web page or XML, which some systems name .xls." if markup else ""
        raise InputFileError(
            f"{path} is named {suffix} but is not {_WORKBOOK_SUFFIXES[suffix]}.{holds} {_SAVE_AS}"
        )
    return False


def _empty(where: str) -> InputFileError:
    return InputFileError(
        f"{where} is empty. It needs a header row with a {PO_COLUMN} column and one PO number a "
        "row below it."
    )


class _Columns:
    """Where each kind of value is in the rows, decided from the header row."""

    def __init__(self, cells: _Cells, where: str, warnings: list[str]) -> None:
        names, self.invented = _unique_names([clean_header(workbook.cell_text(c)) for c in cells])
        self.names = names
        po = find_column(names, PO_KEYS)
        if po is None:
            found = ", ".join(repr(n) for n in names if n not in self.invented) or "none"
            raise InputFileError(
                f"{where} has no {PO_COLUMN} column. Columns found: {found}. "
                f"Name the column that holds the PO numbers {PO_COLUMN}."
            )
        others = [n for i, n in enumerate(names) if i != po and header_key(n) in PO_KEYS]
        if others:
            warnings.append(
                f"Several columns of {where} could hold PO numbers; using {names[po]!r}, "
                f"carrying {', '.join(map(repr, others))} to the report."
            )
        self.po = po
        self.supplier = find_column(names, SUPPLIER_KEYS)
        self.priority = find_column(names, PRIORITY_KEYS)
        separators = [i for i, n in enumerate(names) if n == LEVEL_SEPARATOR]
        first_level = separators[0] + 1 if separators else len(names)
        self.carried = [(n, i) for i, n in enumerate(names) if i != po and i not in separators]
        self.levels = [i for _, i in self.carried if i >= first_level]


def _unique_names(names: list[str]) -> tuple[list[str], set[str]]:
    """Name empty headers ``COLUMN_<letter>``; tell repeated names apart with ``_2``, ``_3``.

    Returns the names and the set of names invented for empty headers.
    """
    seen: set[str] = set()
    result = []
    invented = set()
    for index, given in enumerate(names, start=1):
        name = given or f"COLUMN_{xl_col_to_name(index - 1)}"
        candidate, n = name, 2
        while candidate.casefold() in seen and candidate != LEVEL_SEPARATOR:
            candidate, n = f"{name}_{n}", n + 1
        seen.add(candidate.casefold())
        result.append(candidate)
        if not given:
            invented.add(candidate)
    return result, invented


def _read_rows(
    records: Iterable[tuple[int, _Cells]], where: str, *, xlsx: bool, delimiter: str | None = None
) -> InputTable:
    """The table of ``records``; a CSV file's ``delimiter`` lets rows inside a cell be found."""
    warnings: list[str] = []
    columns: _Columns | None = None
    rows: list[InputRow] = []
    parsed: dict[object, tuple[PoNumber | None, str]] = {}
    bad_priority: list[tuple[int, str]] = []
    overlong: list[int] = []
    inside: list[tuple[int, str]] = []  # (line, PO) of rows that a quoted cell swallowed
    for line, raw_cells in records:
        cells = [workbook.cell_text(c) for c in raw_cells] if xlsx else raw_cells
        joined = "".join(cells)
        if not joined.strip():
            continue
        if columns is None:
            columns = _Columns(raw_cells, where, warnings)
            width = len(columns.names)
            continue  # the header row
        if len(cells) < width:
            cells = [*cells, *([""] * (width - len(cells)))]
            if xlsx:
                raw_cells = [*raw_cells, *([None] * (width - len(raw_cells)))]
        elif len(cells) > width and "".join(cells[width:]).strip():
            overlong.append(line)
        if delimiter is not None and ("\n" in joined or "\r" in joined):
            swallowed = _row_inside(cells, columns.po, min(width, 2), delimiter)
            if swallowed is not None:
                inside.append((line, swallowed))
        raw_po = cells[columns.po].strip()
        if not raw_po:
            po, error = None, EMPTY_PO
        else:
            key = raw_cells[columns.po] if xlsx else raw_po
            if key not in parsed:
                parsed[key] = _parse(key)
            po, error = parsed[key]
        priority = DEFAULT_PRIORITY
        if columns.priority is not None:
            value = raw_cells[columns.priority] if xlsx else cells[columns.priority]
            if value is not None and value != "":
                try:
                    priority = parse_priority(value)
                except ValueError:
                    bad_priority.append((line, cells[columns.priority]))
        supplier = cells[columns.supplier].strip() if columns.supplier is not None else ""
        levels = tuple(cells[i].strip() for i in columns.levels if cells[i].strip())
        extra = {name: cells[i] for name, i in columns.carried}
        rows.append(InputRow(line, raw_po, po, error, supplier or None, extra, priority, levels))
    if columns is None:
        raise _empty(where)
    if not rows:
        raise InputFileError(
            f"{where} has a header row but no rows below it. Add one PO number a row under "
            f"{columns.names[columns.po]!r}."
        )
    names = _drop_empty_unnamed(columns, rows)
    if inside:
        line, label = inside[0]
        warnings.append(
            f"{len(inside)} row(s) of {where} have a quoted cell over several lines that holds "
            f"what look like rows of their own (first: line {line}, holding {label}); a quote "
            '(") is probably missing or extra there, so those rows were read as part of one '
            "cell. Correct the quotes in the file."
        )
    warnings += _row_warnings(rows, bad_priority, overlong, where)
    return InputTable(rows, names, warnings)


def _row_inside(cells: _Cells, po: int, least: int, delimiter: str) -> str | None:
    """The PO of the first line inside a multi-line cell that reads as a row of its own (at
    least ``least`` cells, a valid PO number in column ``po``), or None."""
    for cell in cells:
        for text in re.split(r"\r\n|\r|\n", cell)[1:]:
            found = next(csv.reader([text], delimiter=delimiter), [])
            if len(found) >= max(least, po + 1):
                number, _ = _parse(found[po].strip())
                if number is not None:
                    return number.label
    return None


def _parse(value: object) -> tuple[PoNumber | None, str]:
    """``(po, "")`` or ``(None, reason)``, as ``parse_po_number`` decides."""
    if isinstance(value, str):
        # The forms nearly every row has, taken without the general parser, which would accept
        # them alike (tests/test_tabular.py checks that); anything else goes to it.
        plain = _PLAIN_PO.fullmatch(value)
        if plain is not None:
            return PoNumber(plain[2], (plain[1] or "PO").upper()), ""
    try:
        return parse_po_number(value), ""
    except InvalidPoNumber as exc:
        return None, exc.reason


def _drop_empty_unnamed(columns: _Columns, rows: list[InputRow]) -> list[str]:
    """The carried column names, less columns without a header and without any value."""
    names = [name for name, _ in columns.carried]
    empty = {
        n for n in names if n in columns.invented and not any(r.extra[n].strip() for r in rows)
    }
    if empty:
        for row in rows:
            for name in empty:
                del row.extra[name]
    return [n for n in names if n not in empty]


def _row_warnings(
    rows: list[InputRow], bad_priority: list[tuple[int, str]], overlong: list[int], where: str
) -> list[str]:
    notes = []
    if bad_priority:
        line, value = bad_priority[0]
        notes.append(
            f"{len(bad_priority)} row(s) of {where} have a PRIORITY that is not a whole number "
            f"nor LOW/NORMAL/HIGH/URGENT (first: line {line}, {value!r}); they run at NORMAL."
        )
    if overlong:
        notes.append(
            f"{len(overlong)} row(s) of {where} have more cells than the header (first: line "
            f"{overlong[0]}); the cells without a header are ignored."
        )
    first_line: dict[str, int] = {}
    repeated: dict[str, int] = {}
    for row in rows:
        if row.po is not None:
            label = row.po.label
            if label in first_line:
                repeated.setdefault(label, row.line)
            else:
                first_line[label] = row.line
    if repeated:
        label, line = next(iter(repeated.items()))
        notes.append(
            f"{len(repeated)} PO number(s) appear on several rows of {where} (first: {label} on "
            f"lines {first_line[label]} and {line}); each is downloaded once and reported on "
            "every row."
        )
    return notes
