"""Reading input files: encodings, delimiters, workbooks, columns, rows, and every bad input."""

from __future__ import annotations

import codecs
import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from xlsxwriter import Workbook

from coupa_async.coupa.numbers import PoNumber
from coupa_async.errors import InputFileError
from coupa_async.running.priority import DEFAULT_PRIORITY
from coupa_async.tabular import EMPTY_PO, InputRow, InputTable, read_input

HEADER = ["PO_NUMBER", "SUPPLIER", "Notes", "Amount"]
DATA = [
    ["PO15262984", "Café São Paulo", "urgent; call", "1,5"],
    ["po15262985", "Müller GmbH", "", "-3"],
    ["", "", "", ""],
    ["15262986", "", "€ 20", ""],
    ["ABC", "Acme", "bad", "7"],
]


def _csv_text(delimiter: str, newline: str = "\n") -> str:
    lines = []
    for cells in [HEADER, *DATA]:
        quoted = [f'"{c}"' if delimiter in c or "," in c or ";" in c else c for c in cells]
        lines.append(delimiter.join(quoted))
    return newline.join(lines) + newline


def _shape(table: InputTable) -> list[tuple[object, ...]]:
    return [
        (r.line, r.raw_po, r.po, r.error, r.supplier, r.extra, r.priority, r.levels)
        for r in table.rows
    ]


def _write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def _xlsx(tmp_path: Path, sheets: dict[str, list[list[object]]], name: str = "in.xlsx") -> Path:
    path = tmp_path / name
    options = {"default_date_format": "yyyy-mm-dd hh:mm:ss", "strings_to_numbers": False}
    with Workbook(path, options) as book:
        for title, rows in sheets.items():
            sheet = book.add_worksheet(title)
            for number, row in enumerate(rows):
                sheet.write_row(number, 0, row)
    return path


def _error(path: Path) -> str:
    with pytest.raises(InputFileError) as caught:
        read_input(path)
    return str(caught.value)


@pytest.fixture
def baseline(tmp_path: Path) -> InputTable:
    return read_input(_write(tmp_path, "base.csv", _csv_text(",")))


# --- the baseline itself ----------------------------------------------------------------------


def test_baseline_rows(baseline: InputTable) -> None:
    assert baseline.columns == ["SUPPLIER", "Notes", "Amount"]
    assert [r.line for r in baseline.rows] == [2, 3, 5, 6]  # the blank line 4 is no row
    first = baseline.rows[0]
    assert first == InputRow(
        2,
        "PO15262984",
        PoNumber("15262984"),
        "",
        "Café São Paulo",
        {"SUPPLIER": "Café São Paulo", "Notes": "urgent; call", "Amount": "1,5"},
    )
    assert baseline.rows[2].supplier is None
    assert baseline.rows[3].po is None
    assert baseline.rows[3].error
    assert baseline.read_as == "CSV, UTF-8, ','-delimited"


# --- encodings and delimiters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected_encoding"),
    [
        ("utf8-semicolon", _csv_text(";").encode("utf-8"), "UTF-8"),
        ("utf8-tab", _csv_text("\t").encode("utf-8"), "UTF-8"),
        ("utf8-crlf", _csv_text(",", "\r\n").encode("utf-8"), "UTF-8"),
        ("utf8-bom", codecs.BOM_UTF8 + _csv_text(",").encode("utf-8"), "UTF-8 with BOM"),
        ("utf8-bom-semicolon", codecs.BOM_UTF8 + _csv_text(";").encode(), "UTF-8 with BOM"),
        (
            "excel-unicode-text",
            codecs.BOM_UTF16_LE + _csv_text("\t", "\r\n").encode("utf-16-le"),
            "UTF-16 LE",
        ),
        ("utf16-be", codecs.BOM_UTF16_BE + _csv_text(",").encode("utf-16-be"), "UTF-16 BE"),
        ("utf32-le", codecs.BOM_UTF32_LE + _csv_text(";").encode("utf-32-le"), "UTF-32 LE"),
        ("cp1252-semicolon", _csv_text(";", "\r\n").encode("cp1252"), "Windows-1252"),
        ("cp1252-comma", _csv_text(",").encode("cp1252"), "Windows-1252"),
        ("cp1252-tab", _csv_text("\t").encode("cp1252"), "Windows-1252"),
        ("utf16-le-no-bom", _csv_text("\t", "\r\n").encode("utf-16-le"), "UTF-16 LE (no BOM)"),
        ("utf16-be-no-bom", _csv_text(";").encode("utf-16-be"), "UTF-16 BE (no BOM)"),
    ],
)
def test_every_encoding_and_delimiter_reads_the_same(
    tmp_path: Path, baseline: InputTable, name: str, content: bytes, expected_encoding: str
) -> None:
    table = read_input(_write(tmp_path, f"{name}.csv", content))
    assert _shape(table) == _shape(baseline)
    assert table.columns == baseline.columns
    assert expected_encoding in table.read_as


def test_excel_sep_line_sets_the_delimiter(tmp_path: Path, baseline: InputTable) -> None:
    table = read_input(_write(tmp_path, "sep.csv", "sep=;\n" + _csv_text(";")))
    assert [s[1:] for s in _shape(table)] == [s[1:] for s in _shape(baseline)]
    assert [r.line for r in table.rows] == [3, 4, 6, 7]


def test_txt_and_unknown_suffixes_are_read_as_csv(tmp_path: Path, baseline: InputTable) -> None:
    for name in ("export.txt", "export.tsv", "no_suffix"):
        table = read_input(_write(tmp_path, name, _csv_text("\t")))
        assert _shape(table) == _shape(baseline)


def test_single_column_without_delimiter(tmp_path: Path) -> None:
    table = read_input(_write(tmp_path, "one.csv", "PO_NUMBER\nPO1\n 15262984 \nPM7\n"))
    assert [r.po.label for r in table.rows if r.po] == ["PO1", "PO15262984", "PM7"]
    assert table.columns == []
    assert all(r.extra == {} for r in table.rows)


def test_quoted_cells_keep_delimiters_and_line_breaks(tmp_path: Path) -> None:
    text = 'PO_NUMBER;Notes\nPO1;"a;b\nsecond line"\nPO2;plain\n'
    table = read_input(_write(tmp_path, "q.csv", text))
    assert [r.extra["Notes"] for r in table.rows] == ["a;b\nsecond line", "plain"]
    assert [r.line for r in table.rows] == [2, 4]


def test_dos_end_of_file_mark_is_ignored(tmp_path: Path) -> None:
    table = read_input(_write(tmp_path, "dos.csv", b"PO_NUMBER\r\nPO1\r\n\x1a"))
    assert [r.raw_po for r in table.rows] == ["PO1"]


def test_a_few_stray_control_characters_are_tolerated(tmp_path: Path) -> None:
    rows = "".join(f"PO{n};note {n}\n" for n in range(2000))
    table = read_input(_write(tmp_path, "c.csv", "PO_NUMBER;Notes\n" + rows + "PO9;a\x0cb\n"))
    assert table.rows[-1].extra["Notes"] == "a\x0cb"


# --- workbooks --------------------------------------------------------------------------------


def test_xlsx_po_data_sheet_reads_like_the_csv(tmp_path: Path, baseline: InputTable) -> None:
    path = _xlsx(tmp_path, {"Notes": [["nothing", "here"]], "PO_Data": [HEADER, *DATA]})
    table = read_input(path)
    assert table.warnings == []
    assert table.read_as == "XLSX, sheet 'PO_Data'"
    assert _shape(table) == _shape(baseline)


def test_xlsx_po_data_sheet_name_in_another_case(tmp_path: Path) -> None:
    path = _xlsx(tmp_path, {"Other": [["x"]], "po_data": [["PO_NUMBER"], ["PO1"]]})
    table = read_input(path)
    assert [r.raw_po for r in table.rows] == ["PO1"]
    assert table.warnings == []


def test_xlsx_without_po_data_reads_the_first_sheet_with_a_warning(tmp_path: Path) -> None:
    path = _xlsx(
        tmp_path,
        {"Orders": [["PO Number"], ["PO1"]], "Other": [["PO_NUMBER"], ["PO2"]], "More": []},
    )
    table = read_input(path)
    assert [r.raw_po for r in table.rows] == ["PO1"]
    assert len(table.warnings) == 1
    warning = table.warnings[0]
    assert "PO_Data" in warning and "'Orders'" in warning and "'Other'" in warning


def test_xlsx_single_sheet_not_named_po_data_warns(tmp_path: Path) -> None:
    table = read_input(_xlsx(tmp_path, {"Sheet1": [["PO_NUMBER"], ["PO1"]]}))
    assert [r.raw_po for r in table.rows] == ["PO1"]
    assert "'Sheet1'" in table.warnings[0]


def test_xlsx_numeric_and_other_cells(tmp_path: Path) -> None:
    from datetime import datetime

    rows: list[list[object]] = [
        ["PO_NUMBER", "Amount", "Due", "Flag", "PRIORITY"],
        [15262984, 1.5, datetime(2024, 1, 31), True, 1],
        [15262985.0, 3.0, datetime(2024, 1, 31, 8, 30), None, 3.0],
        [1.5, None, None, None, None],
        ["PO15262986", "x", "y", "z", "low"],
        [None, None, None, None, None],
        [None, "left", None, None, None],
    ]
    table = read_input(_xlsx(tmp_path, {"PO_Data": rows}))
    assert [r.line for r in table.rows] == [2, 3, 4, 5, 7]
    assert [r.raw_po for r in table.rows] == ["15262984", "15262985", "1.5", "PO15262986", ""]
    assert [r.po.label if r.po else None for r in table.rows] == [
        "PO15262984",
        "PO15262985",
        None,
        "PO15262986",
        None,
    ]
    assert "fractional" in table.rows[2].error
    assert table.rows[4].error == EMPTY_PO
    assert table.rows[0].extra == {
        "Amount": "1.5",
        "Due": "2024-01-31",
        "Flag": "TRUE",
        "PRIORITY": "1",
    }
    assert table.rows[1].extra["Due"] == "2024-01-31 08:30:00"
    assert table.rows[1].extra["Amount"] == "3"
    assert [r.priority for r in table.rows] == [1, 3, 2, 3, 2]


def test_xlsx_formulas_give_their_cached_values(tmp_path: Path) -> None:
    path = tmp_path / "f.xlsx"
    with Workbook(path) as book:
        sheet = book.add_worksheet("PO_Data")
        sheet.write_row(0, 0, ["PO_NUMBER", "Calc", "Error"])
        sheet.write_string(1, 0, "PO1")
        sheet.write_formula(1, 1, "=1+1", None, 2)
        sheet.write_formula(1, 2, "=NA()", None, "#N/A")
    extra = read_input(path).rows[0].extra
    # The value Excel saved, never the formula text; an error value reads as empty.
    assert extra == {"Calc": "2", "Error": ""}


def test_xlsx_read_even_if_named_csv(tmp_path: Path) -> None:
    path = _xlsx(tmp_path, {"PO_Data": [["PO_NUMBER"], ["PO1"]]}, name="renamed.csv")
    assert [r.raw_po for r in read_input(path).rows] == ["PO1"]


# --- columns ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "PO_NUMBER",
        "PO Number",
        "po_number",
        "PO_Number",
        "po number",
        "  PO_NUMBER  ",
        "\ufeffPO_NUMBER",
        '"PO_NUMBER"',
        "PO-Number",
        "PONumber",
        "Po\u200bNumber",
    ],
)
def test_po_column_aliases(tmp_path: Path, header: str) -> None:
    path = _write(tmp_path, "h.csv", f"{header};Other\nPO1;x\n", encoding="utf-8-sig")
    table = read_input(path)
    assert [r.raw_po for r in table.rows] == ["PO1"]
    assert table.columns == ["Other"]


def test_po_number_column_preferred_over_a_po_column(tmp_path: Path) -> None:
    table = read_input(_write(tmp_path, "p.csv", "PO,PO_NUMBER\n1,2\n"))
    assert table.rows[0].po == PoNumber("2")
    assert table.columns == ["PO"]
    assert "'PO_NUMBER'" in table.warnings[0]


def test_other_columns_are_carried_in_order(tmp_path: Path) -> None:
    text = "Region,PO_NUMBER,Notes,,notes,Cost Center,\nEU,PO1,a,,b,CC1,\nUS,PO2,,z,,,\n"
    table = read_input(_write(tmp_path, "x.csv", text))
    # An unnamed column with values is kept; one without any value is dropped.
    assert table.columns == ["Region", "Notes", "COLUMN_D", "notes_2", "Cost Center"]
    assert table.rows[0].extra == {
        "Region": "EU",
        "Notes": "a",
        "COLUMN_D": "",
        "notes_2": "b",
        "Cost Center": "CC1",
    }
    assert table.rows[1].extra["COLUMN_D"] == "z"


def test_short_and_long_rows(tmp_path: Path) -> None:
    table = read_input(_write(tmp_path, "r.csv", "PO_NUMBER,A,B\nPO1\nPO2,1,2,3,4\n"))
    assert table.rows[0].extra == {"A": "", "B": ""}
    assert table.rows[1].extra == {"A": "1", "B": "2"}
    assert any("more cells than the header" in w for w in table.warnings)


def test_supplier_column(tmp_path: Path) -> None:
    text = "PO_NUMBER;supplier name\nPO1;  Acme  \nPO2;\n"
    table = read_input(_write(tmp_path, "s.csv", text))
    assert [r.supplier for r in table.rows] == ["Acme", None]
    assert table.rows[0].extra == {"supplier name": "  Acme  "}


# --- rows -------------------------------------------------------------------------------------


def test_po_numbers_are_normalised(tmp_path: Path) -> None:
    values = ["PO15262984", "po15262984", " PO15262984 ", "15262984", "PM15262984", "pm 1"]
    text = "PO_NUMBER\n" + "\n".join(f'"{v}"' for v in values) + "\n"
    table = read_input(_write(tmp_path, "n.csv", text))
    labels = [r.po.label for r in table.rows if r.po]
    assert labels == ["PO15262984"] * 4 + ["PM15262984", "PM1"]
    assert [r.raw_po for r in table.rows][2] == "PO15262984"
    assert all(r.error == "" for r in table.rows)


def test_invalid_rows_are_kept_with_their_reason(tmp_path: Path) -> None:
    text = "PO_NUMBER,Notes\nABC,\nPO12.5,\n1.5E+07,\n,only a note\nPO 12 34,\n,\n  ,  \n\nPO7,\n"
    table = read_input(_write(tmp_path, "i.csv", text))
    by_raw = {r.raw_po: r for r in table.rows}
    assert [r.line for r in table.rows] == [2, 3, 4, 5, 6, 10]
    assert "only digits" in by_raw["ABC"].error
    assert "decimal point" in by_raw["PO12.5"].error
    assert "scientific notation" in by_raw["1.5E+07"].error
    assert by_raw[""].error == EMPTY_PO
    assert by_raw[""].extra == {"Notes": "only a note"}
    assert "blank inside" in by_raw["PO 12 34"].error
    assert by_raw["PO7"].po == PoNumber("7")
    assert all(r.po is None for r in table.rows[:5])


def test_duplicates_are_kept(tmp_path: Path) -> None:
    text = "PO_NUMBER,Notes\nPO1,a\npo1,b\n1,c\nPO2,d\n"
    table = read_input(_write(tmp_path, "d.csv", text))
    assert [r.po.label for r in table.rows if r.po] == ["PO1", "PO1", "PO1", "PO2"]
    assert [r.extra["Notes"] for r in table.rows] == ["a", "b", "c", "d"]
    assert any("PO1 on lines 2 and 3" in w for w in table.warnings)


def test_priority_column_bad_values_warn_and_run_at_normal(tmp_path: Path) -> None:
    text = "PO_NUMBER,Priority\nPO1,urgent\nPO2,asap\nPO3,\nPO4,5\nPO5,soon\n"
    table = read_input(_write(tmp_path, "p.csv", text))
    assert [r.priority for r in table.rows] == [0, DEFAULT_PRIORITY, DEFAULT_PRIORITY, 5, 2]
    assert all(r.po is not None for r in table.rows)
    (warning,) = table.warnings
    assert "2 row(s)" in warning and "line 3" in warning and "'asap'" in warning


def test_no_priority_column_means_normal(baseline: InputTable) -> None:
    assert {r.priority for r in baseline.rows} == {DEFAULT_PRIORITY}


def test_hierarchy_separator(tmp_path: Path) -> None:
    text = (
        "PO_NUMBER;SUPPLIER;<|>;Region;Country;City\n"
        "PO1;Acme;;EU;FR;Paris\n"
        "PO2;Acme;;EU;;Lyon\n"
        "PO3;Bolt;;;;\n"
        "PO4;;x;  ;DE; \n"
    )
    table = read_input(_write(tmp_path, "h.csv", text))
    assert table.columns == ["SUPPLIER", "Region", "Country", "City"]
    assert [r.levels for r in table.rows] == [("EU", "FR", "Paris"), ("EU", "Lyon"), (), ("DE",)]
    assert [r.supplier for r in table.rows] == ["Acme", "Acme", "Bolt", None]
    assert table.rows[0].extra == {
        "SUPPLIER": "Acme",
        "Region": "EU",
        "Country": "FR",
        "City": "Paris",
    }
    assert "<|>" not in table.rows[3].extra


def test_without_separator_there_are_no_levels(baseline: InputTable) -> None:
    assert all(r.levels == () for r in baseline.rows)


def test_hierarchy_in_a_workbook(tmp_path: Path) -> None:
    rows: list[list[object]] = [["PO_NUMBER", "<|>", "Plant", "Year"], [1, None, "P1", 2024]]
    table = read_input(_xlsx(tmp_path, {"PO_Data": rows}))
    assert table.rows[0].levels == ("P1", "2024")


# --- the input file is never changed ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_input_file_is_unchanged(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        path = _write(tmp_path, "in.csv", _csv_text(";"), encoding="cp1252")
    else:
        path = _xlsx(tmp_path, {"PO_Data": [HEADER, *DATA]})
    os.chmod(path, 0o444)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    read_input(path)
    read_input(path)
    after = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# --- bad inputs -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = _error(tmp_path / "nope.csv")
    assert "does not exist" in message and "nope.csv" in message


def test_a_folder(tmp_path: Path) -> None:
    assert "is a folder" in _error(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("orders.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        ("orders.csv", b"%PDF-1.7\n1 0 obj\n", "PDF"),
        ("orders.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), ".xls"),
        ("orders.xls", b"<html><table><tr><td>PO_NUMBER</td></tr></table></html>", ".xls"),
        ("orders.xlsb", b"PK\x03\x04rest", ".xlsb"),
        ("orders.docx", b"PK\x03\x04rest", "Word"),
        ("orders.ods", b"PK\x03\x04rest", "OpenDocument"),
    ],
)
def test_other_formats_are_refused_with_advice(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    message = _error(_write(tmp_path, name, content))
    assert expected in message
    assert ".xlsx" in message and "CSV" in message


def test_xlsx_that_is_not_a_workbook(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "fake.xlsx", "PO_NUMBER\nPO1\n"))
    assert "not an Excel workbook" in message


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "archive.csv"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert "not a readable Excel workbook" in _error(path)


@pytest.mark.parametrize("content", [b"", b"   \r\n\n", codecs.BOM_UTF8, b",,,\n,,\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    assert "is empty" in _error(_write(tmp_path, "empty.csv", content))


def test_header_only(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "h.csv", "PO_NUMBER;SUPPLIER\n\n;\n"))
    assert "no rows" in message


def test_no_po_column_lists_the_columns_found(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "c.csv", "Order;Supplier;Amount\n1;a;2\n"))
    assert "no PO_NUMBER column" in message
    assert "'Order', 'Supplier', 'Amount'" in message


def test_xlsx_without_rows(tmp_path: Path) -> None:
    assert "is empty" in _error(_xlsx(tmp_path, {"PO_Data": []}))
    message = _error(_xlsx(tmp_path, {"PO_Data": [["PO_NUMBER", "Notes"]]}, name="h.xlsx"))
    assert "no rows" in message and "PO_Data" in message


def test_xlsx_no_po_column(tmp_path: Path) -> None:
    message = _error(_xlsx(tmp_path, {"PO_Data": [["Order", 1], [1, 2]]}))
    assert "'Order', '1'" in message


def test_binary_file_named_csv(tmp_path: Path) -> None:
    content = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    message = _error(_write(tmp_path, "image.csv", content))
    assert "not a text file" in message and "NUL" in message


def test_binary_without_nul_bytes(tmp_path: Path) -> None:
    content = bytes(b for b in range(1, 256) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)) * 20
    message = _error(_write(tmp_path, "noise.csv", content))
    assert "UTF-8" in message and "Windows-1252" in message and "control characters" in message


def test_undecodable_bytes_name_the_encodings_and_the_line(tmp_path: Path) -> None:
    content = b"PO_NUMBER;Notes\nPO1;fine\nPO2;caf\xc3\xa9\nPO3;\x81\x8d\x90 bad\n"
    message = _error(_write(tmp_path, "bad.csv", content))
    assert "UTF-8 (with or without BOM)" in message and "Windows-1252" in message
    assert "UTF-16" in message
    assert "line 4" in message


@pytest.mark.parametrize(
    "content",
    [
        "PO_NUMBER\nPO1\x00\x01\n".encode("utf-16-le"),  # decodes, but holds NULs
        "PO_NUMBER\nPO1\n".encode("utf-16-le")[:-1],  # an odd number of bytes
        b"P\x00O\x00\x00\x00" * 50,  # NULs at even and odd positions
    ],
)
def test_utf16_without_bom_must_look_like_text(tmp_path: Path, content: bytes) -> None:
    message = _error(_write(tmp_path, "nul.csv", content))
    assert "NUL" in message or "does not look like a text file" in message


def test_broken_utf16(tmp_path: Path) -> None:
    content = codecs.BOM_UTF16_LE + "PO_NUMBER\nPO1\n".encode("utf-16-le") + b"\x00\xd8"
    message = _error(_write(tmp_path, "u16.csv", content))
    assert "UTF-16 LE" in message and "line 3" in message


def test_runaway_quote(tmp_path: Path) -> None:
    # Past csv's field size limit (128 KiB): the quote's line is kept, the rows after it too.
    content = 'PO_NUMBER,Notes\nPO1,"never closed\n' + "PO2,x\n" * 30_000
    table = read_input(_write(tmp_path, "quote.csv", content))
    assert [(r.line, r.raw_po) for r in table.rows[:2]] == [(2, "PO1"), (3, "PO2")]
    assert len(table.rows) == 30_001 and table.rows[0].extra == {"Notes": "never closed"}
    assert "line 2" in table.warnings[0] and "quote" in table.warnings[0]


def test_an_unclosed_quote_keeps_the_rows_after_it(tmp_path: Path) -> None:
    content = (
        'PO_NUMBER;Notes\r\nPO1;"two\r\nlines";x\r\nPO2;ok\r\nPO3;"5"" pipe, never closed\r\n'
        "PO4;\r\nPO5;a b\r\n"
    )
    table = read_input(_write(tmp_path, "open.csv", content))
    assert [(r.line, r.raw_po, r.extra["Notes"]) for r in table.rows] == [
        (2, "PO1", "two\r\nlines"),
        (4, "PO2", "ok"),
        (5, "PO3", '5" pipe, never closed'),
        (6, "PO4", ""),
        (7, "PO5", "a b"),
    ]
    [warning] = [w for w in table.warnings if w.startswith('The quote (") opened on line 5 of ')]
    assert "never closed" in warning and "2 line(s) after" in warning


def test_an_unclosed_quote_on_a_later_line_of_a_record_is_named(tmp_path: Path) -> None:
    content = 'PO_NUMBER,Notes,Other\nPO1,"fine\nstill fine","open\nPO2,x,y\n'
    table = read_input(_write(tmp_path, "later.csv", content))
    assert [(r.line, r.raw_po) for r in table.rows] == [(2, "PO1"), (4, "PO2")]
    assert table.rows[0].extra == {"Notes": "fine\nstill fine", "Other": "open"}
    assert "opened on line 3 " in table.warnings[0]


def test_a_giant_cell_without_quotes_is_refused_naming_its_line(tmp_path: Path) -> None:
    content = "PO_NUMBER,Notes\nPO1,a\nPO2," + "x" * 200_000 + "\n"
    message = _error(_write(tmp_path, "giant.csv", content))
    assert "near line 3" in message and "field larger than field limit" in message


def test_quotes_that_swallow_rows_are_named(tmp_path: Path) -> None:
    # A stray quote opens a cell, a later one closes it: valid CSV, but rows vanish into it.
    content = 'PO_NUMBER,Notes\nPO1,"6 pipe\nPO2,x\nPO3,he said "hi"\nPO4,"ok"\nPO5,y\n'
    table = read_input(_write(tmp_path, "stray.csv", content))
    assert [r.raw_po for r in table.rows] == ["PO1", "PO4", "PO5"]  # csv's reading, unchanged
    [warning] = [w for w in table.warnings if "have a quoted cell over several lines" in w]
    assert "line 2, holding PO2" in warning and "quote" in warning


def test_a_multi_line_note_is_not_taken_for_rows(tmp_path: Path) -> None:
    content = 'PO_NUMBER,Notes\nPO1,"Ship to:\n12\nMain St, 12"\nPO2,x\n'
    table = read_input(_write(tmp_path, "note.csv", content))
    assert [r.raw_po for r in table.rows] == ["PO1", "PO2"] and table.warnings == []


# --- mixed encodings ---------------------------------------------------------------------------


def test_windows_1252_lines_in_a_utf8_file_are_read_and_named(tmp_path: Path) -> None:
    lines = ["PO_NUMBER;SUPPLIER"] + [f"PO{n};Café {n}" for n in range(1, 10)]
    data = "\n".join(lines).encode() + b"\nPO10;M\xfcller\nPO11;na\xefve\n"
    table = read_input(_write(tmp_path, "mixed.csv", data))
    assert [r.supplier for r in table.rows][-3:] == ["Café 9", "Müller", "naïve"]
    assert table.read_as == "CSV, UTF-8 (2 line(s) Windows-1252), ';'-delimited"
    [warning] = table.warnings
    assert warning.startswith("Lines 11 and 12 of ") and "not UTF-8" in warning
    assert "read as Windows-1252" in warning


def test_utf8_lines_in_a_windows_1252_file_are_read_and_named(tmp_path: Path) -> None:
    rows = [f"PO{n};Müller {n}\r\n".encode("cp1252") for n in range(1, 12)]
    utf8 = ["PO20;São Paulo\r\n".encode(), "PO21;Zürich\r\n".encode()]
    data = b"PO_NUMBER;SUPPLIER\r\n" + b"".join(rows[:3] + utf8 + rows[3:])
    table = read_input(_write(tmp_path, "mixed.csv", data))
    assert [r.supplier for r in table.rows][2:6] == ["Müller 3", "São Paulo", "Zürich", "Müller 4"]
    assert table.read_as.startswith("CSV, Windows-1252 (2 line(s) UTF-8)")
    assert (
        table.warnings[0].startswith("Lines 5 and 6 of ") and "read as UTF-8" in table.warnings[0]
    )


def test_many_odd_lines_are_counted_after_the_first_few(tmp_path: Path) -> None:
    lines = [b"PO_NUMBER;SUPPLIER\n", codecs.BOM_UTF8[:0]]
    lines += [f"PO{n};Café\n".encode() for n in range(1, 21)]
    lines += [f"PO{n};Caf\xe9\n".encode("latin-1") for n in range(21, 29)]
    table = read_input(_write(tmp_path, "many.csv", codecs.BOM_UTF8 + b"".join(lines)))
    assert all(r.supplier == "Café" for r in table.rows)
    assert table.read_as.startswith("CSV, UTF-8 with BOM (8 line(s) Windows-1252)")
    assert table.warnings[0].startswith("Lines 22, 23, 24, 25, 26 and 3 more of ")


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = _write(tmp_path, "locked.csv", "PO_NUMBER\nPO1\n")
    os.chmod(path, 0)
    assert "Cannot read" in _error(path)


def test_fast_path_agrees_with_parse_po_number() -> None:
    import random

    from coupa_async.coupa.numbers import InvalidPoNumber, parse_po_number
    from coupa_async.tabular.reader import _parse

    pieces = ["PO", "po", "Pm", "PM", "pM", "P", "O", " ", "\t", "0", "7", "12", ".", "1" * 19]
    pieces += ["\u200b", "\xa0", "٣", "E5", "-", "+", "#", "1" * 21]
    chooser = random.Random(5)
    values = ["", " ", "PO", "PO 1", "po\t00012", "1" * 20, "1" * 21, "PM" + "9" * 20]
    values += ["".join(chooser.choices(pieces, k=chooser.randint(1, 5))) for _ in range(5000)]
    for value in values:
        try:
            expected: tuple[object, str] = (parse_po_number(value), "")
        except InvalidPoNumber as exc:
            expected = (None, exc.reason)
        assert _parse(value) == expected, value
