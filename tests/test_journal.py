"""The journal: one transaction per settled PO, resume plans, and refusing what it cannot read."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coupa_async.errors import InputFileError
from coupa_async.results.journal import (
    JOURNAL_DIR,
    JOURNAL_NAME,
    SCHEMA_VERSION,
    Journal,
    JournalError,
)
from coupa_async.results.result import FoundAttachment, Outcome, PoResult, SavedFile


def settle(out: Path, label: str, outcome: Outcome, files: dict[str, bytes]) -> PoResult:
    """A result as the job makes it, with its files really on disk."""
    folder = out / "Acme" / f"{label}_{outcome.value}"
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        saved.append(SavedFile(name, folder / name, len(data), digest, "PO", f"http://x/{name}"))
    now = datetime.now(UTC)
    return PoResult(
        po_number=label,
        outcome=outcome,
        supplier="Acme",
        files=saved,
        message="m",
        po_url=f"http://x/order_headers/{label[2:]}",
        folder=folder,
        started_at=now,
        finished_at=now,
    )


def test_new_journal_is_wal_and_versioned(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.close()
    path = tmp_path / JOURNAL_DIR / JOURNAL_NAME
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_record_round_trip_and_resume_plan(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    labels = [f"PO{n}" for n in range(1, 8)]
    journal.add_pending(labels)
    journal.record(settle(tmp_path, "PO1", Outcome.COMPLETED, {"a.pdf": b"%PDF-1", "b.txt": b"x"}))
    journal.record(settle(tmp_path, "PO2", Outcome.NO_ATTACHMENTS, {}))
    journal.record(settle(tmp_path, "PO3", Outcome.PO_NOT_FOUND, {}))
    journal.record(settle(tmp_path, "PO4", Outcome.FAILED, {}))
    journal.record(settle(tmp_path, "PO5", Outcome.PARTIAL, {"c.pdf": b"%PDF-2"}))
    damaged = settle(tmp_path, "PO6", Outcome.COMPLETED, {"d.pdf": b"%PDF-3"})
    journal.record(damaged)
    (damaged.folder / "d.pdf").write_bytes(b"truncated")  # type: ignore[operator]
    records = journal.records()
    assert records["PO1"].state == "COMPLETED" and len(records["PO1"].files) == 2
    assert records["PO1"].files[0].path == tmp_path / "Acme" / "PO1_COMPLETED" / "a.pdf"
    assert records["PO7"].state == "PENDING"
    again = records["PO1"].as_result()
    assert again.outcome is Outcome.COMPLETED and again.files[0].sha256 == (
        hashlib.sha256(b"%PDF-1").hexdigest()
    )

    plan = journal.plan([*labels, "PO8"])
    assert [r.label for r in plan.skip] == ["PO1", "PO2", "PO3"]
    assert plan.retry == ["PO4", "PO5", "PO6"]
    assert plan.new == ["PO7", "PO8"]

    only_failed = journal.plan([*labels, "PO8"], retry_failed_only=True)
    assert only_failed.retry == ["PO4", "PO5"]
    assert only_failed.left_alone == ["PO6", "PO7", "PO8"]
    journal.close()


def test_a_rerun_result_replaces_files_and_counts_attempts(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.record(settle(tmp_path, "PO1", Outcome.PARTIAL, {"a.pdf": b"1", "b.pdf": b"2"}))
    journal.record(settle(tmp_path, "PO1", Outcome.COMPLETED, {"a.pdf": b"1"}))
    record = journal.records()["PO1"]
    assert record.state == "COMPLETED" and [f.name for f in record.files] == ["a.pdf"]
    assert record.attempts == 2
    journal.close()


def test_journal_from_another_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    Journal.open(tmp_path).close()
    path = tmp_path / JOURNAL_DIR / JOURNAL_NAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match="another version"):
        Journal.open(tmp_path)
    assert path.read_bytes() == before


def test_damaged_journal_is_refused_and_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / JOURNAL_DIR
    folder.mkdir()
    path = folder / JOURNAL_NAME
    path.write_bytes(b"this is not a database, it is a text file pretending " * 100)
    before = path.read_bytes()
    with pytest.raises(JournalError, match="damaged"):
        Journal.open(tmp_path)
    assert path.read_bytes() == before


def test_fresh_keeps_the_old_journal_beside_the_new_one(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.record(settle(tmp_path, "PO1", Outcome.COMPLETED, {"a.pdf": b"1"}))
    journal.close()
    fresh = Journal.open(tmp_path, fresh=True)
    assert fresh.records() == {}
    fresh.close()
    kept = [p for p in (tmp_path / JOURNAL_DIR).iterdir() if p.name.endswith(".bak")]
    assert len(kept) == 1
    old = sqlite3.connect(kept[0])
    assert old.execute("SELECT state FROM pos").fetchall() == [("COMPLETED",)]
    old.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_folder_is_explained(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(JournalError, match="Cannot create"):
        Journal.open(locked)


def test_output_folder_that_is_a_file_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(JournalError, match="Cannot create"):
        Journal.open(blocker)


def test_conversion_errors_round_trip_and_a_schema_2_journal_is_read_then_upgraded(
    tmp_path: Path,
) -> None:
    journal = Journal.open(tmp_path)
    result = settle(tmp_path, "PO1", Outcome.COMPLETED, {"q.msg": b"\xd0\xcf\x11\xe0junk"})
    result.conversion_errors = ["q.msg could not be read", "second; with a semicolon"]
    journal.record(result)
    record = journal.records()["PO1"]
    assert record.conversion_errors == ("q.msg could not be read", "second; with a semicolon")
    assert record.as_result().conversion_errors == list(record.conversion_errors)
    journal.close()

    # Make it a journal of schema 2, as the previous version wrote it.
    path = tmp_path / JOURNAL_DIR / JOURNAL_NAME
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE pos DROP COLUMN conversion_errors")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()

    reader = Journal.open_read_only(tmp_path)
    assert reader.records()["PO1"].conversion_errors == ()
    assert reader.records()["PO1"].state == "COMPLETED"
    reader.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2  # reading changed nothing
    db.close()

    journal = Journal.open(tmp_path)
    assert journal.records()["PO1"].conversion_errors == ()
    journal.record(result)
    assert journal.records()["PO1"].conversion_errors == tuple(result.conversion_errors)
    journal.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def found_on_pages(result: PoResult) -> list[FoundAttachment]:
    """The attachments the job would report for ``result``: its files, then a URL, a text and a
    file that could not be saved, hostile texts included."""
    saved = [
        FoundAttachment("PO", "header", "file", f.name, f.url, f.name, f.size, f.sha256)
        for f in result.files
    ]
    return [
        *saved,
        FoundAttachment("PO", "line 2", "url", "Spec, v2", "https://example.com/spec?a=1"),
        FoundAttachment(
            "PR",
            "comment by Jane Doe at 01/03/24 10:22",
            "text",
            "",
            "=cmd|' /C calc'!A0\nsecond line",
        ),
        FoundAttachment("PR", "requisition line 1", "file", "lost.pdf", "http://x/lost.pdf"),
    ]


def test_attachments_round_trip_in_page_order_and_a_rerun_replaces_them(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    result = settle(tmp_path, "PO1", Outcome.PARTIAL, {"a.pdf": b"%PDF-1", "b.txt": b"x"})
    result.attachments = found_on_pages(result)
    other = settle(tmp_path, "PO2", Outcome.COMPLETED, {"c.pdf": b"c"})
    other.attachments = found_on_pages(other)[:1]
    journal.record(result)
    journal.record(other)
    record = journal.records()["PO1"]
    assert record.attachments == tuple(result.attachments)
    assert record.attachments[0].size == 6 and record.attachments[-1].size is None
    again = record.as_result()
    assert again.attachments == result.attachments and again.links_and_texts == 2
    journal.close()

    # A rerun's result replaces the PO's attachments, in one transaction with the PO's row.
    journal = Journal.open(tmp_path)
    rerun = settle(tmp_path, "PO1", Outcome.COMPLETED, {"a.pdf": b"%PDF-1"})
    rerun.attachments = found_on_pages(rerun)[:2]
    journal.record(rerun)
    records = journal.records()
    assert records["PO1"].attachments == tuple(rerun.attachments)
    assert records["PO2"].attachments == tuple(other.attachments)  # another PO's are kept
    rerun.attachments = []
    journal.record(rerun)
    assert journal.records()["PO1"].attachments == ()
    journal.close()


def test_a_write_that_fails_on_an_attachment_leaves_the_po_as_it_was(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    result = settle(tmp_path, "PO1", Outcome.COMPLETED, {"a.pdf": b"1"})
    result.attachments = found_on_pages(result)
    journal.record(result)
    broken = settle(tmp_path, "PO1", Outcome.FAILED, {})
    unwritable = FoundAttachment("PO", "header", "file", "x.pdf", size=object())  # type: ignore[arg-type]
    broken.attachments = [result.attachments[1], unwritable]
    with pytest.raises(sqlite3.Error):
        journal.record(broken)
    record = journal.records()["PO1"]  # the PO's row, files and attachments: all or nothing
    assert record.state == "COMPLETED" and [f.name for f in record.files] == ["a.pdf"]
    assert record.attachments == tuple(result.attachments)
    journal.close()


def test_a_schema_3_journal_is_read_without_attachments_then_upgraded(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    result = settle(tmp_path, "PO1", Outcome.COMPLETED, {"a.pdf": b"1"})
    result.attachments = found_on_pages(result)
    journal.record(result)
    journal.close()

    # Make it a journal of schema 3, as the previous version wrote it.
    path = tmp_path / JOURNAL_DIR / JOURNAL_NAME
    db = sqlite3.connect(path)
    db.execute("DROP TABLE attachments")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()

    reader = Journal.open_read_only(tmp_path)
    record = reader.records()["PO1"]
    assert record.attachments == () and record.state == "COMPLETED"
    assert [f.name for f in record.files] == ["a.pdf"]
    assert record.as_result().links_and_texts == 0
    reader.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3  # reading changed nothing
    assert (
        db.execute("SELECT name FROM sqlite_master WHERE name = 'attachments'").fetchone() is None
    )
    db.close()

    journal = Journal.open(tmp_path)
    assert journal.records()["PO1"].attachments == ()
    journal.record(result)
    assert journal.records()["PO1"].attachments == tuple(result.attachments)
    journal.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    db.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pages"])
def test_damaged_journal_is_one_sentence_for_writers_and_readers(
    tmp_path: Path, damage: str
) -> None:
    journal = Journal.open(tmp_path)
    journal.add_pending([f"PO{n}" for n in range(3000)])
    journal.close()
    path = tmp_path / JOURNAL_DIR / JOURNAL_NAME
    data = path.read_bytes()
    if damage == "garbage":
        data = os.urandom(len(data))
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:  # the header reads well; the pages behind it do not
        data = data[:8192] + os.urandom(len(data) - 8192)
    path.write_bytes(data)

    def refused(call: Callable[[], object]) -> str:
        with pytest.raises(JournalError) as error:
            call()
        return str(error.value)

    def read_all() -> None:
        reader = Journal.open_read_only(tmp_path)
        try:
            reader.plan(["PO1"])
            reader.latest_run()
        finally:
            reader.close()

    for message in (refused(lambda: Journal.open(tmp_path)), refused(read_all)):
        assert f"The journal {path} is damaged" in message
        assert "move it aside" in message and "files already saved stay in place" in message
    assert path.read_bytes() == data  # never changed, never deleted


def test_an_empty_journal_file_reads_as_nothing_recorded(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_DIR).mkdir()
    (tmp_path / JOURNAL_DIR / JOURNAL_NAME).write_bytes(b"")
    with pytest.raises(InputFileError, match="No run has recorded anything"):
        Journal.open_read_only(tmp_path)
