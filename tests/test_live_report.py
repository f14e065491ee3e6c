"""The live report.csv: rows appear as POs settle, and the final report replaces it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import structlog.testing

from coupa_async.results.result import Outcome, PoResult
from coupa_async.tabular import (
    InputTable,
    LiveCsvReport,
    read_input,
    write_report_csv,
    write_reports,
)

INPUT = "PO_NUMBER;Notes\nPO1;=first\nabc;bad\nPO2;second\npo1;again\nPO3;third\n"


def _rows(path: Path) -> list[list[str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def table(tmp_path: Path) -> InputTable:
    path = tmp_path / "in.csv"
    path.write_text(INPUT, encoding="utf-8")
    return read_input(path)


def test_rows_appear_as_results_come_in(tmp_path: Path, table: InputTable) -> None:
    out = tmp_path / "out"
    first = PoResult("PO1", Outcome.COMPLETED, supplier="Acme", folder=out / "Acme" / "PO1_C")
    second = PoResult("PO3", Outcome.FAILED, message="timeout")
    with LiveCsvReport(out, table.rows, table.columns) as live:
        header, *rows = _rows(out / "report.csv")
        assert rows == []  # the header is there from the start
        live.append(first)
        after_first = _rows(out / "report.csv")  # flushed: readable while still open
        live.append(second)
    header, *rows = _rows(out / "report.csv")
    assert len(after_first) == 3
    assert header[:2] == ["PO_NUMBER", "STATUS"] and header[-1] == "Notes"
    # One row per input row naming the PO (duplicates too), in the order results came.
    assert [(r[0], r[1]) for r in rows] == [
        ("PO1", "COMPLETED"),
        ("po1", "COMPLETED"),
        ("PO3", "FAILED"),
    ]
    assert [r[-1] for r in rows] == ["'=first", "again", "third"]  # neutralised as the final

    # The same rows, byte for byte, as the final report has them.
    results = {"PO1": first, "PO3": second}
    final = write_report_csv(tmp_path / "final.csv", table.rows, results, table.columns)
    final_rows = {tuple(r) for r in _rows(final)}
    assert {tuple(r) for r in [header, *rows]} <= final_rows


def test_the_final_report_replaces_it_in_input_order(tmp_path: Path, table: InputTable) -> None:
    out = tmp_path / "out"
    results = {
        "PO3": PoResult("PO3", Outcome.FAILED),
        "PO1": PoResult("PO1", Outcome.COMPLETED),
    }
    with LiveCsvReport(out, table.rows, table.columns) as live:
        live.extend(results.values())
        assert len(_rows(out / "report.csv")) == 1 + 3  # PO3, PO1 and its duplicate po1
    write_reports(out, table.rows, results, table.columns)
    rows = _rows(out / "report.csv")[1:]
    assert [(r[0], r[1]) for r in rows] == [
        ("PO1", "COMPLETED"),
        ("abc", "INVALID"),
        ("PO2", "PENDING"),
        ("po1", "COMPLETED"),
        ("PO3", "FAILED"),
    ]
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.xlsx"]


def test_a_crash_leaves_the_rows_written(tmp_path: Path, table: InputTable) -> None:
    out = tmp_path / "out"
    live = LiveCsvReport(out, table.rows, table.columns)
    live.append(PoResult("PO2", Outcome.NO_ATTACHMENTS))
    # No close(): what a crashed run leaves. The row is on disk already.
    assert [r[:2] for r in _rows(out / "report.csv")[1:]] == [["PO2", "NO_ATTACHMENTS"]]
    live.close()
    live.append(PoResult("PO3", Outcome.FAILED))  # after close: nothing, no error
    assert len(_rows(out / "report.csv")) == 2


def test_an_unwritable_report_never_stops_the_run(tmp_path: Path, table: InputTable) -> None:
    if os.geteuid() == 0:
        blocked = tmp_path / "out"
        blocked.mkdir()
        (blocked / "report.csv").mkdir()  # even root cannot open a folder as a file
    else:
        blocked = tmp_path / "out"
        blocked.mkdir(mode=0o500)
    with structlog.testing.capture_logs() as logs:
        live = LiveCsvReport(blocked, table.rows, table.columns)
        live.append(PoResult("PO1", Outcome.COMPLETED))
        live.close()
    assert [e["event"] for e in logs] == ["report_live_not_written"]
