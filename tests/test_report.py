"""The report: CSV and XLSX read back, columns and order, styles, formula injection, atomicity."""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from coupa_async.result import FileProblem, Outcome, PoResult, SavedFile
from coupa_async.tabular import (
    REPORT_COLUMNS,
    InputTable,
    read_input,
    report_header,
    write_report_csv,
    write_report_xlsx,
    write_reports,
)
from coupa_async.tabular import report as report_module

FINISHED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
LOCAL = FINISHED.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _table(tmp_path: Path) -> InputTable:
    text = (
        "PO_NUMBER;SUPPLIER;Status;Notes;Amount\n"
        'PO1;Acme in;;=HYPERLINK("http://evil");-12.5\n'
        "abc;;;+cmd;\n"
        "PO2;;;@SUM(A1);1\n"
        "po1;;x;-2+3;\n"
        "PO3;Bolt;;\tTAB;\n"
        "PO4;;;;\n"
        "PO5;;;;\n"
        "PO6;;;;\n"
    )
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return read_input(path)


def _results(out: Path) -> dict[str, PoResult]:
    def saved(name: str) -> SavedFile:
        return SavedFile(name, out / name, 10, "0" * 64, "PO", f"https://x/{name}")

    return {
        "PO1": PoResult(
            "PO1",
            Outcome.COMPLETED,
            supplier="Acme Corp",
            files=[saved("a.pdf"), saved("b.pdf")],
            message="",
            po_url="https://t.coupahost.com/order_headers/1",
            folder=out / "Acme_Corp" / "PO1_COMPLETED",
            started_at=FINISHED,
            finished_at=FINISHED,
        ),
        "PO2": PoResult(
            "PO2",
            Outcome.PARTIAL,
            supplier="=evil()",
            files=[saved("c.pdf")],
            problems=[FileProblem("https://x/d", "d.pdf", "timeout", "PR")],
            message="d.pdf: timeout",
            po_url="https://t.coupahost.com/order_headers/2",
            folder=out / "Sup # 1" / "PO2_PARTIAL",
            finished_at=datetime(2024, 5, 6, 10, 0, 0),
        ),
        "PO3": PoResult("PO3", Outcome.FAILED, message="page timeout\x00\x1b", folder=None),
        "PO4": PoResult("PO4", Outcome.NO_ATTACHMENTS, folder=Path("/elsewhere/PO4_X")),
        "PO5": PoResult("PO5", Outcome.PO_NOT_FOUND),
        "PO6": PoResult("PO6", Outcome.PR_NOT_ACCESSIBLE),
    }


def _read_csv(path: Path) -> list[list[str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_header_renames_clashing_input_columns() -> None:
    header = report_header(["SUPPLIER", "Status", "Notes", "status_input", "AttachmentName"])
    assert header[: len(REPORT_COLUMNS)] == list(REPORT_COLUMNS)
    assert header[len(REPORT_COLUMNS) :] == [
        "SUPPLIER_INPUT",
        "Status_INPUT",
        "Notes",
        "status_input_INPUT",
        "AttachmentName_INPUT",
    ]


def test_csv_round_trip(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    path = write_report_csv(out / "report.csv", table.rows, _results(out), table.columns)
    assert path == out / "report.csv"
    rows = _read_csv(path)
    header = rows[0]
    assert header == [
        *REPORT_COLUMNS,
        "SUPPLIER_INPUT",
        "Status_INPUT",
        "Notes",
        "Amount",
    ]
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert [r["PO_NUMBER"] for r in records] == [
        "PO1",
        "abc",
        "PO2",
        "po1",
        "PO3",
        "PO4",
        "PO5",
        "PO6",
    ]
    assert [r["STATUS"] for r in records] == [
        "COMPLETED",
        "INVALID",
        "PARTIAL",
        "COMPLETED",
        "FAILED",
        "NO_ATTACHMENTS",
        "PO_NOT_FOUND",
        "PR_NOT_ACCESSIBLE",
    ]
    first = records[0]
    assert first["SUPPLIER"] == "Acme Corp"
    assert first["SUPPLIER_INPUT"] == "Acme in"
    assert first["ATTACHMENTS_FOUND"] == "2"
    assert first["ATTACHMENTS_DOWNLOADED"] == "2"
    assert first["AttachmentName"] == "a.pdf; b.pdf"
    assert first["LAST_PROCESSED"] == LOCAL
    assert first["DOWNLOAD_FOLDER"] == str(out / "Acme_Corp" / "PO1_COMPLETED")
    assert first["COUPA_URL"] == "https://t.coupahost.com/order_headers/1"
    # The duplicate row gets the same result, with its own input values.
    same = ("STATUS", "SUPPLIER", "AttachmentName", "LAST_PROCESSED", "DOWNLOAD_FOLDER")
    assert [records[3][k] for k in same] == [first[k] for k in same]
    assert records[3]["ATTACHMENTS_DOWNLOADED"] == "2"
    assert records[3]["Status_INPUT"] == "x"
    invalid = records[1]
    assert "only digits" in invalid["ERROR_MESSAGE"]
    assert invalid["ATTACHMENTS_FOUND"] == "" and invalid["LAST_PROCESSED"] == ""
    partial = records[2]
    assert partial["ATTACHMENTS_FOUND"] == "2" and partial["ATTACHMENTS_DOWNLOADED"] == "1"
    assert partial["ERROR_MESSAGE"] == "d.pdf: timeout"
    assert partial["LAST_PROCESSED"] == "2024-05-06 10:00:00"  # naive: already local


def test_rows_without_result_are_pending_or_invalid(tmp_path: Path) -> None:
    table = _table(tmp_path)
    path = write_report_csv(tmp_path / "r.csv", table.rows, {}, table.columns)
    rows = _read_csv(path)[1:]
    assert [r[1] for r in rows] == ["PENDING", "INVALID", *["PENDING"] * 6]
    assert rows[0][2] == "Acme in"  # the input's supplier until the page says otherwise
    assert rows[0][7] == "not processed yet"


def test_csv_neutralises_formulas(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    path = write_report_csv(out / "report.csv", table.rows, _results(out), table.columns)
    header, *rows = _read_csv(path)
    notes = [row[header.index("Notes")] for row in rows]
    assert notes[:5] == ['\'=HYPERLINK("http://evil")', "'+cmd", "'@SUM(A1)", "'-2+3", "'\tTAB"]
    assert rows[0][header.index("Amount")] == "-12.5"  # a plain number is no formula
    assert rows[2][header.index("SUPPLIER")] == "'=evil()"
    for row in rows:
        for value in row:
            assert not value.startswith(("=", "+", "@", "\t", "\r")) or value == "-12.5"


def test_xlsx_round_trip_and_styles(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    path = write_report_xlsx(out / "report.xlsx", table.rows, _results(out), table.columns)
    book = load_workbook(path)
    sheet = book.active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = values[0]
    assert header[: len(REPORT_COLUMNS)] == list(REPORT_COLUMNS)
    assert header[len(REPORT_COLUMNS) :] == ["SUPPLIER_INPUT", "Status_INPUT", "Notes", "Amount"]
    assert [row[0] for row in values[1:]] == [
        "PO1",
        "abc",
        "PO2",
        "po1",
        "PO3",
        "PO4",
        "PO5",
        "PO6",
    ]
    assert values[1][3] == 2 and values[1][4] == 2  # numbers, not text
    assert values[1][6] == datetime.strptime(LOCAL, "%Y-%m-%d %H:%M:%S")
    assert sheet["G2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert values[5][7] == "page timeout\ufffd\ufffd"  # control characters cannot go in XLSX

    assert all(cell.font.b for cell in sheet[1])
    assert all(cell.fill.fgColor.rgb.endswith("305496") for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:N{len(table.rows) + 1}"
    widths = {letter: dim.width for letter, dim in sheet.column_dimensions.items()}
    assert set("ABCDEFGHIJKLMN") <= set(widths)
    assert all(0 < width <= 60 for width in widths.values())
    assert widths["I"] > widths["B"]  # the folder column is wider than STATUS

    fills = {row[0].value: row[1].fill.fgColor.rgb[-6:] for row in sheet.iter_rows(min_row=2)}
    assert fills["PO1"] == fills["PO4"] == "C6EFCE"
    assert fills["PO2"] == fills["PO6"] == "FFEB9C"
    assert fills["abc"] == fills["PO3"] == fills["PO5"] == "FFC7CE"

    assert sheet["I2"].hyperlink.target == "Acme_Corp/PO1_COMPLETED"
    assert sheet["I4"].hyperlink.target == "Sup%20%23%201/PO2_PARTIAL"
    assert sheet["I7"].hyperlink.target == "file:///elsewhere/PO4_X"
    assert sheet["I6"].hyperlink is None


def test_xlsx_pending_is_amber(tmp_path: Path) -> None:
    table = _table(tmp_path)
    path = write_report_xlsx(tmp_path / "r.xlsx", table.rows, {}, table.columns)
    sheet = load_workbook(path).active
    assert sheet["B2"].value == "PENDING"
    assert sheet["B2"].fill.fgColor.rgb.endswith("FFEB9C")


def test_xlsx_stores_formula_like_text_as_text(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    path = write_report_xlsx(out / "report.xlsx", table.rows, _results(out), table.columns)
    sheet = load_workbook(path).active
    header = [c.value for c in sheet[1]]
    notes = header.index("Notes") + 1
    cells = [sheet.cell(row, notes) for row in range(2, 7)]
    assert [c.value for c in cells] == [
        '=HYPERLINK("http://evil")',
        "+cmd",
        "@SUM(A1)",
        "-2+3",
        "\tTAB",
    ]
    assert all(c.data_type == "s" for c in cells)
    assert cells[0].quotePrefix
    assert sheet.cell(4, 3).value == "=evil()" and sheet.cell(4, 3).data_type == "s"
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_write_reports_writes_both(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "new" / "out"
    paths = write_reports(out, table.rows, _results(out), table.columns)
    assert paths == [out / "report.csv", out / "report.xlsx"]
    assert all(p.is_file() for p in paths)
    assert _temp_files(out) == []
    csv_rows = _read_csv(paths[0])
    xlsx_rows = list(load_workbook(paths[1]).active.iter_rows(values_only=True))
    assert len(csv_rows) == len(xlsx_rows) == len(table.rows) + 1
    assert [r[0] for r in csv_rows] == [r[0] for r in xlsx_rows]


def test_rewrite_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    write_reports(out, table.rows, {}, table.columns)
    write_reports(out, table.rows, _results(out), table.columns)
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.xlsx"]
    assert _read_csv(out / "report.csv")[1][1] == "COMPLETED"


def test_failed_write_keeps_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    write_reports(out, table.rows, {}, table.columns)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = 0

    def broken(*args: object) -> list[object]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        return original(*args)

    original = report_module.report_row
    monkeypatch.setattr(report_module, "report_row", broken)
    for write, name in ((write_report_csv, "report.csv"), (write_report_xlsx, "report.xlsx")):
        calls = 0
        with pytest.raises(OSError, match="disk full"):
            write(out / name, table.rows, _results(out), table.columns)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_locked_report_gets_another_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(tmp_path)
    real_replace = os.replace

    def locked(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "report.xlsx":
            raise PermissionError(13, "being used by another process")
        real_replace(src, dst)

    monkeypatch.setattr(report_module.os, "replace", locked)
    paths = write_reports(tmp_path / "out", table.rows, {}, table.columns)
    assert paths[0].name == "report.csv"
    assert paths[1].name.startswith("report-") and paths[1].suffix == ".xlsx"
    assert paths[1].is_file()
    assert _temp_files(tmp_path / "out") == []


def test_report_files_get_ordinary_permissions(tmp_path: Path) -> None:
    table = _table(tmp_path)
    old = os.umask(0o022)
    try:
        paths = write_reports(tmp_path / "out", table.rows, {}, table.columns)
    finally:
        os.umask(old)
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in paths)


def test_folder_links_stop_at_the_excel_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    monkeypatch.setattr(report_module, "EXCEL_MAX_LINKS", 1)
    path = write_report_xlsx(out / "report.xlsx", table.rows, _results(out), table.columns)
    sheet = load_workbook(path).active
    linked = [c.coordinate for c in sheet["I"] if c.hyperlink is not None]
    assert linked == ["I2"]
    assert sheet["I4"].value == str(out / "Sup # 1" / "PO2_PARTIAL")  # the text stays
