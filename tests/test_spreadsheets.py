"""Every spreadsheet format users send: .xlsx, .xlsm, .xlsb, .xls, .ods, read with calamine.

The .xls, .xlsb and .ods fixtures hold the cells of ``fixtures/make_fixtures.py`` (see the
README there); the .xlsx ones are made here with XlsxWriter from the same cells.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from xlsxwriter import Workbook
from xlsxwriter.worksheet import Worksheet

from coupa_async.errors import ExitCode, InputFileError
from coupa_async.results.result import Outcome, PoResult
from coupa_async.tabular import EMPTY_PO, InputTable, read_input, write_reports

from .clikit import cli_env, finish, start_cli
from .fixtures.make_fixtures import make_xlsx

FIXTURES = Path(__file__).parent / "fixtures"
KINDS = {".xlsx": "XLSX", ".xlsm": "XLSX", ".xls": "XLS", ".ods": "ODS", ".xlsb": "XLSB"}
# Formats whose merged cells python-calamine reports (for the others B3 reads empty).
MERGES_KNOWN = {".xlsx", ".xlsm", ".xls"}


def _orders(tmp_path: Path, suffix: str) -> Path:
    if suffix in (".xlsx", ".xlsm"):
        path = tmp_path / f"orders{suffix}"
        make_xlsx(path)
        return path
    return FIXTURES / f"orders{suffix}"


def _error(path: Path) -> str:
    with pytest.raises(InputFileError) as caught:
        read_input(path)
    assert caught.value.exit_code == ExitCode.USAGE == 2
    return str(caught.value)


def _book(path: Path, fill: Callable[[Workbook, Worksheet], None]) -> Path:
    """An .xlsx of one sheet PO_Data written by ``fill(book, sheet)``."""
    with Workbook(path, {"strings_to_numbers": False}) as book:
        fill(book, book.add_worksheet("PO_Data"))
    return path


# --- the same sheet in every format -----------------------------------------------------------


@pytest.mark.parametrize("suffix", list(KINDS))
def test_every_format_reads_the_same(tmp_path: Path, suffix: str) -> None:
    table = read_input(_orders(tmp_path, suffix))
    assert table.read_as == f"{KINDS[suffix]}, sheet 'Orders'"
    # The hidden first sheet (holding PO999) is skipped, and the warning says so.
    (warning,) = table.warnings
    assert "no sheet named PO_Data" in warning and "'Orders'" in warning
    assert "'Lookup' (hidden)" in warning
    # Row 4 is empty: no row. Lines are the sheet's row numbers.
    assert [r.line for r in table.rows] == [2, 3, 5, 6, 7]
    # Numbers stored as doubles (15262984.0) are PO numbers; 1.5 is not.
    assert [r.raw_po for r in table.rows] == ["15262984", "15262985", "PO15262986", "1.5", ""]
    assert [r.po.label if r.po else None for r in table.rows] == [
        "PO15262984",
        "PO15262985",
        "PO15262986",
        None,
        None,
    ]
    assert "fractional" in table.rows[3].error
    assert table.rows[4].error == EMPTY_PO
    assert table.rows[4].extra["Notes"] == "only a note"
    # The header "Notes" merged over D1:E1 names D; E keeps its values under a made-up name.
    assert table.columns == ["SUPPLIER", "Due", "Notes", "COLUMN_E", "Amount"]
    assert table.rows[0].extra == {
        "SUPPLIER": "Acme",
        "Due": "2024-01-31",
        "Notes": "urgent",
        "COLUMN_E": "call first",
        "Amount": "1.5",
    }
    assert table.rows[1].extra["Due"] == "2024-01-31 08:30:00"
    assert table.rows[1].extra["Amount"] == "3"
    # "Acme" merged over B2:B3 is the supplier of both rows where the format tells the merge.
    expected = "Acme" if suffix in MERGES_KNOWN else None
    assert [r.supplier for r in table.rows[:3]] == ["Acme", expected, "Bolt"]


def test_a_genuine_excel_xlsb_is_read(tmp_path: Path) -> None:
    # date.xlsb, saved by Excel (from calamine's tests): its first row is dates and numbers.
    message = _error(FIXTURES / "date.xlsb")
    assert "no PO_NUMBER column" in message and "'2021-01-01', '15'" in message


def test_content_decides_not_the_name(tmp_path: Path) -> None:
    for suffix in (".xls", ".ods", ".xlsb"):
        renamed = tmp_path / f"orders{suffix}.csv"
        renamed.write_bytes((FIXTURES / f"orders{suffix}").read_bytes())
        assert read_input(renamed).read_as == f"{KINDS[suffix]}, sheet 'Orders'"


# --- sheets -----------------------------------------------------------------------------------


def test_po_data_is_chosen_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "two.xlsx"
    with Workbook(path) as book:
        book.add_worksheet("Summary").write_row(0, 0, ["PO_NUMBER", "x"])
        data = book.add_worksheet("PO_Data")
        data.write_column(0, 0, ["PO_NUMBER", 15262984.0])
    table = read_input(path)
    assert table.warnings == []
    assert [r.po.label for r in table.rows if r.po] == ["PO15262984"]


def test_a_workbook_of_chart_sheets_only(tmp_path: Path) -> None:
    path = tmp_path / "chart.xlsx"
    with Workbook(path) as book:
        data = book.add_worksheet("Data")
        data.write_column(0, 0, [1, 2])
        chart = book.add_chart({"type": "line"})
        chart.add_series({"values": "=Data!$A$1:$A$2"})
        book.add_chartsheet("Chart").set_chart(chart)
    # The chart sheet is not "the first sheet": the worksheet is.
    assert "'Data'" in _error(path)


# --- cells ------------------------------------------------------------------------------------


def test_data_away_from_a1_keeps_the_sheet_row_numbers(tmp_path: Path) -> None:
    def fill(book: Workbook, sheet: Worksheet) -> None:
        sheet.write_row(3, 2, ["PO_NUMBER", "Notes"])
        sheet.write_row(5, 2, [15262984, "a"])
        sheet.write_row(7, 3, ["only a note"])

    table = read_input(_book(tmp_path / "c4.xlsx", fill))
    assert [r.line for r in table.rows] == [6, 8]
    assert table.columns == ["Notes"]  # the empty columns A and B are no columns
    assert [r.raw_po for r in table.rows] == ["15262984", ""]


def test_dates_times_durations_and_booleans(tmp_path: Path) -> None:
    def fill(book: Workbook, sheet: Worksheet) -> None:
        day = book.add_format({"num_format": "dd/mm/yyyy"})
        clock = book.add_format({"num_format": "hh:mm"})
        hours = book.add_format({"num_format": "[h]:mm:ss"})
        sheet.write_row(0, 0, ["PO_NUMBER", "Day", "Clock", "Took", "Flag", "Big"])
        sheet.write_number(1, 0, 15262984.0)
        sheet.write_datetime(1, 1, datetime(2024, 2, 29), day)
        sheet.write_datetime(1, 2, time(8, 30), clock)
        sheet.write_datetime(1, 3, timedelta(hours=30, minutes=15), hours)
        sheet.write_boolean(1, 4, True)
        sheet.write_number(1, 5, 2.0**60)
        sheet.write_number(2, 0, 1.5e16)

    table = read_input(_book(tmp_path / "d.xlsx", fill))
    assert table.rows[0].extra == {
        "Day": "2024-02-29",
        "Clock": "08:30:00",
        "Took": "30:15:00",
        "Flag": "TRUE",
        "Big": "1.152921504606847e+18",  # past 2**53 the digits are not exact: shown as is
    }
    assert table.rows[1].po is None and "too large" in table.rows[1].error


def test_a_supplier_merged_down_names_every_row(tmp_path: Path) -> None:
    def fill(book: Workbook, sheet: Worksheet) -> None:
        sheet.write_row(0, 0, ["PO_NUMBER", "SUPPLIER", "Notes"])
        sheet.write_column(1, 0, ["PO1", "PO2", "PO3", "PO4"])
        sheet.merge_range("B2:B4", "Acme")
        sheet.merge_range("C2:C3", "")  # an empty merge fills nothing
        sheet.write_string(4, 1, "Bolt")

    table = read_input(_book(tmp_path / "m.xlsx", fill))
    assert [r.supplier for r in table.rows] == ["Acme", "Acme", "Acme", "Bolt"]
    assert [r.extra["Notes"] for r in table.rows] == ["", "", "", ""]


def test_only_empty_rows_below_the_header(tmp_path: Path) -> None:
    def fill(book: Workbook, sheet: Worksheet) -> None:
        sheet.write_row(0, 0, ["PO_NUMBER", "Notes"])
        sheet.write_blank(5, 1, None, book.add_format({"bold": True}))

    message = _error(_book(tmp_path / "e.xlsx", fill))
    assert "no rows" in message and "'PO_Data'" in message


# --- damaged and protected workbooks ----------------------------------------------------------


def _damaged(tmp_path: Path) -> dict[str, Path]:
    make_xlsx(tmp_path / "good.xlsx")
    good = (tmp_path / "good.xlsx").read_bytes()
    xls = (FIXTURES / "orders.xls").read_bytes()
    cases = {
        "truncated.xlsx": good[: len(good) // 2],
        "no-central-directory.xlsx": good[:-200],
        "zip-header-then-noise.xlsx": b"PK\x03\x04" + os.urandom(2000),
        "truncated.xls": xls[: len(xls) // 3],
        "ole-header-then-noise.xls": xls[:8] + os.urandom(4000),
        "truncated.ods": (FIXTURES / "orders.ods").read_bytes()[:3000],
    }
    paths = {}
    for name, data in cases.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    broken = tmp_path / "bad-xml.xlsx"
    with zipfile.ZipFile(tmp_path / "good.xlsx") as source, zipfile.ZipFile(broken, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet2.xml":
                data = data[: len(data) // 2]
            out.writestr(item, data)
    paths["bad-xml.xlsx"] = broken
    return paths


def test_damaged_workbooks_are_input_errors(tmp_path: Path) -> None:
    for name, path in _damaged(tmp_path).items():
        message = _error(path)
        assert str(path) in message, name
        assert "not a readable" in message and "save it again" in message, (name, message)
        kind = {".xlsx": "Excel workbook", ".xls": "(.xls)", ".ods": "OpenDocument"}
        assert kind[path.suffix] in message, (name, message)


def test_random_bytes_named_like_a_workbook(tmp_path: Path) -> None:
    for suffix in (".xlsx", ".xlsb", ".xls", ".ods"):
        path = tmp_path / f"noise{suffix}"
        path.write_bytes(bytes(range(1, 256)) * 8)
        message = _error(path)
        assert f"is named {suffix} but is not" in message and "CSV UTF-8" in message


def test_a_web_page_named_xls_says_so(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_text("<html><table><tr><td>PO_NUMBER</td></tr></table></html>")
    assert "web page" in _error(path)


@pytest.mark.parametrize(
    "name", ["encrypted.xlsx", "encrypted.xls", "pass_protected.xlsb", "pass_protected.ods"]
)
def test_password_protected_workbooks_say_so(tmp_path: Path, name: str) -> None:
    message = _error(FIXTURES / name)
    assert "protected by a password" in message and "CSV UTF-8" in message
    renamed = tmp_path / "orders.csv"  # the content decides, not the name
    renamed.write_bytes((FIXTURES / name).read_bytes())
    assert "protected by a password" in _error(renamed)


async def test_the_command_exits_2_on_a_damaged_or_protected_workbook(tmp_path: Path) -> None:
    damaged = _damaged(tmp_path)["truncated.xlsx"]
    for path, expected in ((damaged, "not a readable"), (FIXTURES / "encrypted.xlsx", "password")):
        args = ("run", str(path), "--base-url", "http://127.0.0.1:9")
        code, output = await finish(await start_cli(tmp_path, *args, env=cli_env(tmp_path)))
        assert code == 2, output
        assert expected in " ".join(output.split())


# --- the report read back as input -------------------------------------------------------------


def test_report_xlsx_reads_back_like_report_csv(tmp_path: Path) -> None:
    table = read_input(_orders(tmp_path, ".xls"))
    out = tmp_path / "out"
    results = {"PO15262984": PoResult("PO15262984", Outcome.COMPLETED, folder=out / "A" / "P")}
    csv_path, xlsx_path = write_reports(out, table.rows, results, table.columns)
    from_csv, from_xlsx = read_input(csv_path), read_input(xlsx_path)
    assert from_xlsx.read_as == "XLSX, sheet 'Report'"
    assert _shape(from_xlsx) == _shape(from_csv)
    assert from_xlsx.rows[0].extra["STATUS"] == "COMPLETED"
    assert from_xlsx.rows[2].extra["STATUS"] == "PENDING"


def _shape(table: InputTable) -> list[tuple[object, ...]]:
    return [(r.line, r.raw_po, r.po, r.error, r.supplier, r.extra) for r in table.rows]
