"""The audit: a clean run proves clean, planted damage and false settles are found."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import json
import random
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from coupa_async.audit import AuditReport, Check, audit
from coupa_async.audit.online import choose
from coupa_async.audit.records import read_records
from coupa_async.audit.sight import Sight, disagreements
from coupa_async.coupa.discover import AttachmentRef
from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME, KnownFile, PoRecord
from coupa_async.running.table_run import run_table
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator

from .clikit import cli_env, finish, start_cli
from .runkit import input_table_for, settings_for

POS = 8
FILES_PER_PO = 3


@dataclass
class CleanRun:
    sim: Simulator
    settings: Settings
    tmp: Path

    @property
    def out(self) -> Path:
        return self.settings.out

    def copy(self, dest: Path) -> Settings:
        """The run's output folder copied to ``dest``, and settings pointing at the copy."""
        shutil.copytree(self.out, dest)
        return self.settings.model_copy(update={"out": dest})


BROWSER_FIXTURES = ("clean",)  # a real run: tests using it are marked browser
# One process runs the module: the real run (the `clean` fixture) is made once.
pytestmark = pytest.mark.xdist_group("audit")


@pytest.fixture(scope="module")
async def clean(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CleanRun]:
    """One finished run of a small uniform catalog: every PO COMPLETED with three files."""
    tmp = tmp_path_factory.mktemp("audit")
    async with Simulator(SimConfig(seed=41, pos=POS, profile="uniform")) as sim:
        settings = settings_for(sim, tmp, workers=2)
        table = input_table_for(tmp / "pos.csv", sim)
        summary = await run_table(settings, table, stop=asyncio.Event(), show=False)
        assert summary.exit_code == 0
        yield CleanRun(sim, settings, tmp)


def labels(run: CleanRun) -> list[str]:
    return [f"PO{po.number}" for po in run.sim.catalog.pos]


def found_pairs(report: AuditReport) -> set[tuple[str, Check]]:
    return {(item.po, item.check) for item in report.disagreements}


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file and folder under ``roots``, the roots included."""
    seen = {}
    for root in roots:
        if not root.exists():
            seen[str(root)] = (-1, -1)
            continue
        for path in [root, *root.rglob("*")]:
            stat = path.stat()
            seen[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return seen


async def test_a_clean_run_proves_clean_and_the_audit_changes_nothing(
    clean: CleanRun, tmp_path: Path
) -> None:
    offline = await audit(clean.settings, offline=True)
    assert offline.disagreements == [] and offline.unchecked == []
    assert offline.settled == POS and offline.files_hashed == POS * FILES_PER_PO
    assert [p.name for p in offline.reports_read] == ["report.csv", "report.xlsx"]
    assert offline.exit_code == 0

    journal = clean.out / JOURNAL_DIR / JOURNAL_NAME
    journal_bytes = journal.read_bytes()
    state = tmp_path / "state.json"  # none yet: the audit must sign in, and save nothing
    before = snapshot(clean.out, state)
    env = cli_env(tmp_path, COUPA_USERNAME=clean.sim.username, COUPA_PASSWORD=clean.sim.password)
    args = ["audit", "--out", str(clean.out), "--base-url", clean.sim.base_url]
    args += ["--sample", "20", "--seed", "3", "--log-format", "json", "--log-level", "info"]
    process = await start_cli(tmp_path, *args, env=env)
    async with asyncio.timeout(120):
        stdout, stderr = await process.communicate()
    output = stdout.decode()
    assert process.returncode == 0, output + stderr.decode()
    assert f"Online: {POS} of {POS} PO(s) read again" in output
    assert "The output agrees with the journal." in output
    events = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert "audit_offline_done" in {event["event"] for event in events}
    assert clean.sim.password not in output + stderr.decode()

    assert snapshot(clean.out, state) == before
    assert journal.read_bytes() == journal_bytes


async def test_planted_damage_on_disk_and_in_the_report_is_found(
    clean: CleanRun, tmp_path: Path
) -> None:
    settings = clean.copy(tmp_path / "out")
    out = settings.out
    records = read_records(out)
    a, b, c, d, e, f, g = labels(clean)[:7]

    deleted = records[a].files[0].path
    deleted.unlink()
    altered = records[b].files[1].path
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    altered.write_bytes(bytes(data))
    folder_c = records[c].folder
    assert folder_c is not None
    work = folder_c.with_name(f"{c}__WORK")
    work.mkdir()
    (work / ".document_1.pdf.0a1b2c3d.part").write_bytes(b"half")
    folder_d = records[d].folder
    assert folder_d is not None
    folder_d.with_name(f"{d}_FAILED").mkdir()
    folder_e = records[e].folder
    assert folder_e is not None
    (folder_e / ".document_2.pdf.deadbeef.part").write_bytes(b"half")
    _edit_csv_status(out / "report.csv", f, "FAILED")
    _edit_xlsx_status(out / "report.xlsx", g, "PARTIAL")

    report = await audit(settings, offline=True)
    assert found_pairs(report) == {
        (a, Check.FILE),
        (b, Check.FILE),
        (c, Check.LEFTOVER),
        (d, Check.DUPLICATE),
        (e, Check.LEFTOVER),
        (f, Check.REPORT),
        (g, Check.REPORT),
    }
    by_po = {item.po: item for item in report.disagreements}
    assert by_po[a].found == "the file is missing" and by_po[a].where == deleted
    assert by_po[b].found.startswith("same size, other bytes")
    assert by_po[c].where == work
    assert "report.csv row" in by_po[f].found and "FAILED" in by_po[f].found
    assert "report.xlsx row" in by_po[g].found and "PARTIAL" in by_po[g].found
    assert report.exit_code == 3

    code, output = await finish(
        await start_cli(tmp_path, "audit", "--out", str(out), "--offline", env=cli_env(tmp_path))
    )
    assert code == 3, output
    assert all(label in output for label in (a, b, c, d, e, f, g))
    assert "7 disagreement(s)" in output and "does NOT match" in output


def _edit_csv_status(path: Path, label: str, status: str) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    status_at = rows[0].index("STATUS")
    for row in rows[1:]:
        if row[0] == label:
            row[status_at] = status
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)


def _edit_xlsx_status(path: Path, label: str, status: str) -> None:
    with CalamineWorkbook.from_path(path) as book:
        rows = book.get_sheet_by_index(0).to_python()
    status_at = rows[0].index("STATUS")
    for row in rows[1:]:
        if row[0] == label:
            row[status_at] = status
    with xlsxwriter.Workbook(path, {"strings_to_formulas": False}) as book:
        sheet = book.add_worksheet("Report")
        for number, row in enumerate(rows):
            sheet.write_row(number, 0, row)


async def test_online_a_false_no_attachments_is_found_and_an_unreadable_po_is_unchecked(
    clean: CleanRun, tmp_path: Path
) -> None:
    settings = clean.copy(tmp_path / "out")
    falsely_empty, unreadable, logged_out = labels(clean)[2], labels(clean)[5], labels(clean)[6]
    db = sqlite3.connect(settings.out / JOURNAL_DIR / JOURNAL_NAME)
    with db:
        db.execute(
            "UPDATE pos SET state = 'NO_ATTACHMENTS', found = 0 WHERE label = ?",
            (falsely_empty,),
        )
        db.execute("DELETE FROM files WHERE label = ?", (falsely_empty,))
    db.close()
    clean.sim.inject("500", path_contains=f"/order_headers/{unreadable[2:]}", count=20)
    try:
        report = await audit(settings, sample=0, seed=1, settle_s=10)
        assert report.online_planned == 1  # sample 0: only the NO_ATTACHMENTS one
        site = [item for item in report.disagreements if item.check is Check.SITE]
        assert [item.po for item in site] == [falsely_empty]
        assert site[0].journal.startswith("NO_ATTACHMENTS")
        assert site[0].found.startswith(f"{FILES_PER_PO} attachment(s)")
        assert report.exit_code == 3

        # Mid-audit, the site asks for a sign-in again: signed in afresh, the PO is read.
        clean.sim.inject("login_redirect", path_contains=f"/order_headers/{logged_out[2:]}")
        redirects = clean.sim.stats.snapshot()["login_redirects"]
        everything = await audit(settings, sample=POS, seed=1, settle_s=10)
    finally:
        clean.sim.clear_faults()
    assert clean.sim.stats.snapshot()["login_redirects"] == redirects + 1
    assert [item.po for item in everything.unchecked] == [unreadable]
    assert "HTTP 500" in everything.unchecked[0].reason
    assert everything.online_checked == POS - 1
    site = [item for item in everything.disagreements if item.check is Check.SITE]
    assert {item.po for item in site} == {falsely_empty}
    assert everything.exit_code == 3


async def test_online_a_po_recorded_from_another_pos_page_is_found(
    clean: CleanRun, tmp_path: Path
) -> None:
    """A planted identity mismatch: the journal says a PO's page is the page of another PO."""
    settings = clean.copy(tmp_path / "out")
    planted, other = labels(clean)[1], labels(clean)[4]
    other_url = f"{clean.sim.base_url}/order_headers/{other[2:]}"
    db = sqlite3.connect(settings.out / JOURNAL_DIR / JOURNAL_NAME)
    with db:
        db.execute("UPDATE pos SET po_url = ? WHERE label = ?", (other_url, planted))
    db.close()
    report = await audit(settings, sample=POS, seed=1, settle_s=10)
    site = [item for item in report.disagreements if item.check is Check.SITE]
    assert [item.po for item in site] == [planted]
    assert site[0].found == f"the page at {other_url} shows PO #{other[2:]}"
    assert report.exit_code == 3


async def test_bad_input_exits_2_with_a_message(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    code, output = await finish(
        await start_cli(tmp_path, "audit", "--out", str(tmp_path / "nowhere"), "--offline", env=env)
    )
    assert code == 2 and "does not exist" in output
    (tmp_path / "empty").mkdir()
    code, output = await finish(
        await start_cli(tmp_path, "audit", "--out", str(tmp_path / "empty"), env=env)
    )
    assert code == 2 and "No run has written" in output


async def test_the_sample_is_seeded_and_always_holds_every_no_attachments(
    clean: CleanRun,
) -> None:
    records = read_records(clean.out)
    empty = labels(clean)[0]
    records[empty] = dataclasses.replace(records[empty], state="NO_ATTACHMENTS", files=())
    picks = [
        [r.label for r in choose(records, 3, random.Random(seed))] for seed in (7, 7, 8, 9, 10)
    ]
    assert picks[0] == picks[1]
    assert len({tuple(p) for p in picks[1:]}) > 1
    assert all(p[0] == empty and len(p) == 4 for p in picks)
    assert [r.label for r in choose(records, 0, random.Random(1))] == [empty]


def _record(state: str, found: int, files: list[tuple[str, str, str]]) -> PoRecord:
    known = tuple(
        KnownFile(name, Path("/out") / name, 1, hashlib.sha256(b"").hexdigest(), source, url)
        for name, source, url in files
    )
    return PoRecord(
        label="PO1",
        state=state,
        supplier="S",
        folder=Path(f"/out/S/PO1_{state}"),
        message="",
        po_url="http://t/order_headers/1",
        pr_url="",
        found=found,
        attempts=1,
        finished_at="",
        files=known,
    )


def test_the_online_rules_count_clicks_and_follow_the_requisition_like_the_job() -> None:
    clicked = _record(
        "COMPLETED", 2, [("a.pdf", "PO", "http://t/a"), ("b.pdf", "PO", "http://t/dl?1")]
    )
    page = (AttachmentRef("http://t/a", "a.pdf"), AttachmentRef(None, "b.pdf", click_index=0))
    assert disagreements(clicked, Sight(po_refs=page)) == []
    gone = disagreements(clicked, Sight(po_refs=page[:1]))
    assert any("no longer links http://t/dl?1" in found for _, found in gone)

    from_pr = _record("COMPLETED", 1, [("x.docx", "PR", "http://t/x")])
    shows_pdf = Sight(po_refs=(AttachmentRef("http://t/p", "p.pdf"),), requisition_url="http://t/r")
    rows = disagreements(from_pr, shows_pdf)
    assert any("from the requisition" in said for said, _ in rows)

    not_found = _record("PO_NOT_FOUND", 0, [])
    assert disagreements(not_found, Sight(po_error="Oops")) == []
    assert disagreements(clicked, Sight(po_error="Oops"))[0][1].startswith(
        "the PO page is an error"
    )
