"""manifest.csv: a row per attachment found, live as POs settle, rebuilt whole from the journal."""

from __future__ import annotations

import csv
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog.testing

from coupa_async.results.journal import Journal
from coupa_async.results.result import FoundAttachment, Outcome, PoResult, SavedFile
from coupa_async.tabular import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    InputTable,
    LiveManifest,
    read_input,
    write_manifest,
)

INPUT = "PO_NUMBER\nPO1\nabc\nPO2\npo1\nPO3\n"
HOSTILE = "=cmd|' /C calc'!A0"
MULTILINE = 'Deliver to gate 4,\r\nthen call +49 30 1234, ask for "Jane"\nsecond line'


def _read(path: Path) -> list[dict[str, str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # as report.csv: Excel reads it right
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
        return list(reader)


def _cells(rows: list[dict[str, str]], *columns: str) -> list[tuple[str, ...]]:
    return [tuple(row[column] for column in columns) for row in rows]


def _po(out: Path, label: str, outcome: Outcome, files: dict[str, bytes]) -> PoResult:
    """A settled PO as the job reports it: its files on disk, each also found on the page."""
    folder = out / "Acme" / f"{label}_{outcome.value}"
    folder.mkdir(parents=True, exist_ok=True)
    result = PoResult(label, outcome, supplier="Acme", folder=folder)
    for place, (name, data) in zip(("header", "line 1", "line 2"), files.items(), strict=False):
        (folder / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        url = f"https://t.coupahost.com/attachments/{name}"
        result.files.append(SavedFile(name, folder / name, len(data), digest, "PO", url))
        result.attachments.append(
            FoundAttachment("PO", place, "file", name, url, name, len(data), digest)
        )
    result.finished_at = datetime.now(UTC)
    return result


@pytest.fixture
def table(tmp_path: Path) -> InputTable:
    path = tmp_path / "in.csv"
    path.write_text(INPUT, encoding="utf-8")
    return read_input(path)


@pytest.fixture
def results(tmp_path: Path) -> dict[str, PoResult]:
    out = tmp_path / "out"
    first = _po(out, "PO1", Outcome.PARTIAL, {"Quote.pdf": b"%PDF-1", "Spec (2).docx": b"docx"})
    first.attachments += [
        FoundAttachment("PO", "line 2", "url", "Portal", "https://supplier.example/p?id=1"),
        FoundAttachment("PO", "comment by Jane Doe at 01/03/24 10:22", "text", "", MULTILINE),
        FoundAttachment("PR", "requisition line 1", "file", "Lost.pdf", "https://t/lost.pdf"),
    ]
    second = _po(out, "PO2", Outcome.NO_ATTACHMENTS, {})
    third = _po(out, "PO3", Outcome.COMPLETED, {"x.txt": b"x"})
    third.attachments.append(FoundAttachment("PR", "requisition header", "text", HOSTILE, "@SUM"))
    return {"PO1": first, "PO2": second, "PO3": third}


def test_rows_appear_as_pos_settle_then_the_rebuild_is_in_input_then_page_order(
    tmp_path: Path, table: InputTable, results: dict[str, PoResult]
) -> None:
    out = tmp_path / "out"
    path = out / MANIFEST_NAME
    with LiveManifest(out) as live:
        assert _read(path) == []  # the header is there from the start
        live.append(results["PO3"])
        assert _cells(_read(path), "PO_NUMBER", "NAME") == [
            ("PO3", "x.txt"),
            ("PO3", f"'{HOSTILE}"),  # neutralised, as the report does
        ]
        live.append(results["PO2"])  # no attachment: no row
        live.append(results["PO1"])
        live_rows = _read(path)  # flushed: readable while still open
    assert len(live_rows) == 2 + 5

    written = write_manifest(out, table.rows, results)
    assert written == path
    rows = _read(path)
    # Each PO once (po1 is PO1 again), in input order; its attachments in page order.
    assert _cells(rows, "PO_NUMBER", "SOURCE", "LOCATION", "KIND") == [
        ("PO1", "PO", "header", "file"),
        ("PO1", "PO", "line 1", "file"),
        ("PO1", "PO", "line 2", "url"),
        ("PO1", "PO", "comment by Jane Doe at 01/03/24 10:22", "text"),
        ("PO1", "PR", "requisition line 1", "file"),
        ("PO3", "PO", "header", "file"),
        ("PO3", "PR", "requisition header", "text"),
    ]
    quote, spec, url, text, lost, saved, _ = rows
    assert quote["SAVED_PATH"] == os.path.join("Acme", "PO1_PARTIAL", "Quote.pdf")
    assert (out / quote["SAVED_PATH"]).read_bytes() == b"%PDF-1"
    assert quote["SIZE"] == "6" and quote["SHA256"] == hashlib.sha256(b"%PDF-1").hexdigest()
    assert quote["VALUE"] == "https://t.coupahost.com/attachments/Quote.pdf"
    assert (out / spec["SAVED_PATH"]).is_file() and spec["NAME"] == "Spec (2).docx"
    assert (url["NAME"], url["VALUE"]) == ("Portal", "https://supplier.example/p?id=1")
    assert text["VALUE"] == MULTILINE  # commas, quotes and line breaks survive
    for not_saved in (url, text, lost):
        assert not_saved["SAVED_PATH"] == not_saved["SIZE"] == not_saved["SHA256"] == ""
    assert lost["VALUE"] == "https://t/lost.pdf"  # a file that could not be saved: its address
    assert saved["SAVED_PATH"] == os.path.join("Acme", "PO3_COMPLETED", "x.txt")
    # The live rows are the final rows, in the order the POs settled.
    assert live_rows == rows[5:] + rows[:5]
    # Nothing is written inside the PO folders.
    assert sorted(p.name for p in (out / "Acme" / "PO1_PARTIAL").iterdir()) == [
        "Quote.pdf",
        "Spec (2).docx",
    ]


def test_formula_like_text_is_neutralised_and_reads_back_whole(
    tmp_path: Path, table: InputTable, results: dict[str, PoResult]
) -> None:
    out = tmp_path / "out"
    hostile = results["PO3"]
    hostile.attachments = [
        FoundAttachment("PO", "-line 1", "url", "+x", HOSTILE),
        FoundAttachment("PO", "header", "text", "a,b\nc", f"{HOSTILE}\r\n,=2+2"),
        FoundAttachment("PO", "header", "text", "\tTAB", "-12.5"),
    ]
    with LiveManifest(out) as live:
        live.append(hostile)
        live_rows = _read(out / MANIFEST_NAME)
    write_manifest(out, table.rows, {"PO3": hostile})
    rows = _read(out / MANIFEST_NAME)
    assert rows == live_rows
    assert _cells(rows, "LOCATION", "NAME", "VALUE") == [
        ("'-line 1", "'+x", f"'{HOSTILE}"),
        ("header", "a,b\nc", f"'{HOSTILE}\r\n,=2+2"),
        ("header", "'\tTAB", "-12.5"),  # a plain number is no formula
    ]
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value


def test_a_rerun_keeps_the_rows_of_the_pos_it_skipped(
    tmp_path: Path, table: InputTable, results: dict[str, PoResult]
) -> None:
    out = tmp_path / "out"
    first_run = Journal.open(out)
    first_run.record(results["PO3"])
    first_run.close()

    # The rerun skips PO3 (settled and intact) and settles PO1 and PO2, as run_table does.
    journal = Journal.open(out)
    plan = journal.plan(["PO1", "PO2", "PO3"])
    assert [record.label for record in plan.skip] == ["PO3"]
    settled = {record.label: record.as_result() for record in plan.skip}
    with LiveManifest(out) as live:
        live.extend(settled.values())
        for label in ("PO2", "PO1"):
            journal.record(results[label])
            settled[label] = results[label]
            live.append(results[label])
    journal.close()
    write_manifest(out, table.rows, settled)
    rows = _read(out / MANIFEST_NAME)
    assert [row["PO_NUMBER"] for row in rows] == ["PO1"] * 5 + ["PO3"] * 2
    from_journal = [row for row in rows if row["PO_NUMBER"] == "PO3"]
    assert _cells(from_journal, "NAME", "SAVED_PATH", "SIZE") == [
        ("x.txt", os.path.join("Acme", "PO3_COMPLETED", "x.txt"), "1"),
        (f"'{HOSTILE}", "", ""),
    ]


def test_the_rebuild_replaces_a_symlink_instead_of_writing_through_it(
    tmp_path: Path, table: InputTable, results: dict[str, PoResult]
) -> None:
    out = tmp_path / "out"  # made by the fixture, with the POs' folders
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / MANIFEST_NAME).symlink_to(victim)
    write_manifest(out, table.rows, results)
    assert victim.read_text() == "keep me"
    assert not (out / MANIFEST_NAME).is_symlink() and len(_read(out / MANIFEST_NAME)) == 7
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_an_unwritable_live_manifest_never_stops_the_run(
    tmp_path: Path, results: dict[str, PoResult]
) -> None:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / MANIFEST_NAME).mkdir()  # even root cannot open a folder as a file
    with structlog.testing.capture_logs() as logs:
        live = LiveManifest(blocked)
        live.append(results["PO1"])
        live.close()
    assert [e["event"] for e in logs] == ["manifest_live_not_written"]
