"""The report: CSV and XLSX read back, columns and order, styles, formula injection, atomicity.

The XLSX is read back with python-calamine (values) and as XML (styles, links, panes).
"""

from __future__ import annotations

import csv
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
import structlog.testing
from python_calamine import CalamineWorkbook

from coupa_async.results.result import FileProblem, FoundAttachment, Outcome, PoResult, SavedFile
from coupa_async.tabular import (
    REPORT_COLUMNS,
    InputTable,
    atomic,
    read_input,
    report_header,
    report_xlsx,
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
            files=[saved("a.pdf"), saved("b.pdf"), saved("q.msg")],
            message="",
            po_url="https://t.coupahost.com/order_headers/1",
            conversion_errors=["q.msg could not be read as an Outlook message", "=x"],
            attachments=[
                FoundAttachment("PO", "header", "file", "a.pdf", "https://x/a.pdf", "a.pdf", 10),
                FoundAttachment("PO", "line 1", "url", "Site", "https://example.com/"),
                FoundAttachment("PR", "requisition header", "text", "", "Deliver to gate 4"),
            ],
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


def _xlsx_values(path: Path) -> list[list[object]]:
    """Every row of the first sheet from A1, empty cells as ""."""
    with CalamineWorkbook.from_path(path) as book:
        return book.get_sheet_by_index(0).to_python(skip_empty_area=False)


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


class _XlsxXml:
    """The parts of an .xlsx that hold what calamine does not tell: styles, panes, links."""

    def __init__(self, path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            self.sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
            self.styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
            names = archive.namelist()
            rels = "xl/worksheets/_rels/sheet1.xml.rels"
            self._rels = ElementTree.fromstring(archive.read(rels)) if rels in names else None
        self.cells = {c.get("r"): c for c in self.sheet.iter(f"{_MAIN}c")}

    def xf(self, ref: str) -> ElementTree.Element:
        """The cell format (``cellXfs`` entry) of cell ``ref``."""
        xfs = self.styles.find(f"{_MAIN}cellXfs")
        assert xfs is not None
        return list(xfs)[int(self.cells[ref].get("s", "0"))]

    def fill(self, ref: str) -> str | None:
        """The RGB of the solid fill of ``ref`` (``"C6EFCE"``), or None."""
        fills = list(self.styles.iter(f"{_MAIN}fill"))
        colour = fills[int(self.xf(ref).get("fillId", "0"))].find(f".//{_MAIN}fgColor")
        return None if colour is None else colour.get("rgb", "")[-6:]

    def font(self, ref: str) -> ElementTree.Element:
        fonts = list(self.styles.iter(f"{_MAIN}font"))
        return fonts[int(self.xf(ref).get("fontId", "0"))]

    def number_format(self, ref: str) -> str:
        wanted = self.xf(ref).get("numFmtId")
        found = [f for f in self.styles.iter(f"{_MAIN}numFmt") if f.get("numFmtId") == wanted]
        return found[0].get("formatCode", "") if found else ""

    def links(self) -> dict[str, str]:
        """Cell → link target."""
        if self._rels is None:
            return {}
        targets = {
            r.get("Id"): r.get("Target") for r in self._rels.iter(f"{_PACKAGE_REL}Relationship")
        }
        return {
            link.get("ref", ""): targets[link.get(f"{_REL}id")]
            for link in self.sheet.iter(f"{_MAIN}hyperlink")
        }

    def widths(self) -> dict[int, float]:
        # One <col> may cover several adjacent columns of the same width.
        return {
            column: float(c.get("width", "0"))
            for c in self.sheet.iter(f"{_MAIN}col")
            for column in range(int(c.get("min", "0")), int(c.get("max", c.get("min", "0"))) + 1)
        }


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
    assert first["ATTACHMENTS_FOUND"] == "3"
    assert first["ATTACHMENTS_DOWNLOADED"] == "3"
    assert first["AttachmentName"] == "a.pdf; b.pdf; q.msg"
    # An e-mail not converted is noted beside the PO's own outcome, which stays COMPLETED.
    assert first["CONVERSION_ERRORS"] == "q.msg could not be read as an Outlook message; =x"
    others = [r["CONVERSION_ERRORS"] for i, r in enumerate(records) if i not in (0, 3)]
    assert others == [""] * 6  # row 3 is PO1 again
    # URL and text attachments have their own count; ATTACHMENTS_FOUND counts files only.
    assert [r["LINKS_AND_TEXTS"] for r in records] == ["2", "", "0", "2", "0", "0", "0", "0"]
    assert first["LAST_PROCESSED"] == LOCAL
    assert first["DOWNLOAD_FOLDER"] == str(out / "Acme_Corp" / "PO1_COMPLETED")
    assert first["COUPA_URL"] == "https://t.coupahost.com/order_headers/1"
    # The duplicate row gets the same result, with its own input values.
    same = ("STATUS", "SUPPLIER", "AttachmentName", "LAST_PROCESSED", "DOWNLOAD_FOLDER")
    assert [records[3][k] for k in same] == [first[k] for k in same]
    assert records[3]["ATTACHMENTS_DOWNLOADED"] == "3"
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
    results = _results(out)
    path = write_report_xlsx(out / "report.xlsx", table.rows, results, table.columns)
    values = _xlsx_values(path)
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
    assert values[1][3] == 3 and values[1][4] == 3  # numbers, not text
    assert isinstance(values[1][3], float)
    assert values[1][6] == datetime.strptime(LOCAL, "%Y-%m-%d %H:%M:%S")
    assert values[1][2] == "Acme Corp" and values[1][5] == "a.pdf; b.pdf; q.msg"
    assert values[1][10].startswith("q.msg could not be read")
    assert values[1][11] == 2 and values[3][11] == 0 and values[2][11] == ""
    assert values[1][8] == str(out / "Acme_Corp" / "PO1_COMPLETED")
    assert values[5][7] == "page timeout\ufffd\ufffd"  # control characters cannot go in XLSX
    assert values[2][3] == "" and values[2][6] == ""  # an invalid row has no count, no time

    xml = _XlsxXml(path)
    assert xml.number_format("G2") == "yyyy-mm-dd hh:mm:ss"
    for column in "ABCDEFGHIJKLMNOP":
        assert xml.font(f"{column}1").find(f"{_MAIN}b") is not None
        assert xml.fill(f"{column}1") == "305496"
    pane = xml.sheet.find(f".//{_MAIN}pane")
    assert pane is not None
    assert (pane.get("state"), pane.get("ySplit"), pane.get("topLeftCell")) == ("frozen", "1", "A2")
    auto_filter = xml.sheet.find(f"{_MAIN}autoFilter")
    assert auto_filter is not None and auto_filter.get("ref") == f"A1:P{len(table.rows) + 1}"
    widths = xml.widths()
    assert set(widths) == set(range(1, 17))
    assert all(0 < width <= 61 for width in widths.values())  # 60 characters, and padding
    assert widths[9] > widths[2]  # the folder column is wider than STATUS

    fills = {values[row][0]: xml.fill(f"B{row + 1}") for row in range(1, len(values))}
    assert fills["PO1"] == fills["PO4"] == "C6EFCE"
    assert fills["PO2"] == fills["PO6"] == "FFEB9C"
    assert fills["abc"] == fills["PO3"] == fills["PO5"] == "FFC7CE"
    assert xml.font("B2").find(f"{_MAIN}b") is not None

    links = xml.links()
    # XlsxWriter writes file links with backslashes, as Excel does; Excel and LibreOffice
    # resolve them relative to the report.
    assert links["I2"] == "Acme_Corp\\PO1_COMPLETED"
    assert links["I4"] == "Sup%20%23%201\\PO2_PARTIAL"
    elsewhere = os.path.relpath("/elsewhere/PO4_X", out.absolute())
    assert links["I7"] == elsewhere.replace("/", "\\")
    assert set(links) == {"I2", "I4", "I5", "I7"}  # PO3 has no folder
    assert xml.font("I2").find(f"{_MAIN}u") is not None


def test_xlsx_pending_is_amber(tmp_path: Path) -> None:
    table = _table(tmp_path)
    path = write_report_xlsx(tmp_path / "r.xlsx", table.rows, {}, table.columns)
    assert _xlsx_values(path)[1][1] == "PENDING"
    assert _XlsxXml(path).fill("B2") == "FFEB9C"


def test_xlsx_stores_formula_like_text_as_text(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "out"
    path = write_report_xlsx(out / "report.xlsx", table.rows, _results(out), table.columns)
    values = _xlsx_values(path)
    notes = values[0].index("Notes")
    assert [row[notes] for row in values[1:6]] == [
        '=HYPERLINK("http://evil")',
        "+cmd",
        "@SUM(A1)",
        "-2+3",
        "\tTAB",
    ]
    assert values[3][2] == "=evil()"
    xml = _XlsxXml(path)
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[notes]
    for row in range(2, 7):
        cell = xml.cells[f"{letter}{row}"]
        assert cell.get("t") == "inlineStr"  # text, never <f>
        assert xml.xf(f"{letter}{row}").get("quotePrefix") == "1"
    assert xml.cells["C4"].get("t") == "inlineStr"
    assert not list(xml.sheet.iter(f"{_MAIN}f"))


def test_write_reports_writes_both(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "new" / "out"
    paths = write_reports(out, table.rows, _results(out), table.columns)
    assert paths == [out / "report.csv", out / "report.xlsx"]
    assert all(p.is_file() for p in paths)
    assert _temp_files(out) == []
    csv_rows = _read_csv(paths[0])
    xlsx_rows = _xlsx_values(paths[1])
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

    monkeypatch.setattr(atomic.os, "replace", locked)
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
    monkeypatch.setattr(report_xlsx, "EXCEL_MAX_LINKS", 1)
    path = write_report_xlsx(out / "report.xlsx", table.rows, _results(out), table.columns)
    assert list(_XlsxXml(path).links()) == ["I2"]
    assert _xlsx_values(path)[3][8] == str(out / "Sup # 1" / "PO2_PARTIAL")  # the text stays


def test_rows_beyond_one_sheet_skip_the_xlsx_and_keep_the_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(tmp_path)  # 8 rows and the header
    monkeypatch.setattr(report_module, "XLSX_MAX_ROWS", 9)
    assert report_module.xlsx_fits(8) and not report_module.xlsx_fits(9)
    out = tmp_path / "out"
    assert write_reports(out, table.rows, {}, table.columns)[1] == out / "report.xlsx"
    (out / "report.xlsx").unlink()
    monkeypatch.setattr(report_module, "XLSX_MAX_ROWS", 8)
    with structlog.testing.capture_logs() as logs:
        paths = write_reports(out, table.rows, {}, table.columns)
    assert paths == [out / "report.csv"]
    assert not (out / "report.xlsx").exists()
    assert len(_read_csv(out / "report.csv")) == len(table.rows) + 1
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["report_xlsx_skipped"]
    with pytest.raises(ValueError, match="do not fit"):
        write_report_xlsx(out / "report.xlsx", table.rows, {}, table.columns)


def test_widths_come_from_a_sample_of_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["PO_NUMBER;Notes", *(f"PO{n};short" for n in range(10))]
    lines[3] = "PO2;" + "x" * 40  # row index 2: not in a sample of every 5th row
    lines[7] = "PO6;" + "y" * 30  # row index 6: not sampled either
    lines[6] = "PO5;" + "z" * 20  # row index 5: sampled
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = read_input(tmp_path / "in.csv")
    monkeypatch.setattr(report_xlsx, "WIDTH_SAMPLE", 2)
    path = write_report_xlsx(tmp_path / "r.xlsx", table.rows, {}, table.columns)
    notes = len(REPORT_COLUMNS)  # the input's column comes after ours
    assert round(_XlsxXml(path).widths()[notes + 1]) == 20 + 2 + 1  # XlsxWriter adds padding
    assert _xlsx_values(path)[3][notes] == "x" * 40  # every value is written all the same


def test_xlsx_keeps_long_text_and_odd_characters_readable(tmp_path: Path) -> None:
    long = "é" * 40_000
    text = f"PO_NUMBER;Notes\nPO1;{long}\nPO2;a\x0bb\ufffec\nPO3;tab\there\n"
    (tmp_path / "in.csv").write_text(text, encoding="utf-8")
    table = read_input(tmp_path / "in.csv")
    path = write_report_xlsx(tmp_path / "r.xlsx", table.rows, {}, table.columns)
    notes = [row[len(REPORT_COLUMNS)] for row in _xlsx_values(path)[1:]]
    assert len(notes[0]) == 32_767 and notes[0].endswith("…")
    assert notes[1:] == ["a\ufffdb\ufffdc", "tab\there"]
