"""The soak checker: clean on a real run of the CLI, and names each planted defect rightly."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import hashlib
import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from coupa_async.sim import SimConfig, Simulator

from .clikit import cli_env, finish, start_cli, write_input

# One process runs the module: its real run (the `run` fixture) is made once.
pytestmark = pytest.mark.xdist_group("soak_check")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "soak_check.py"
# Seed 54's first 20 POs hold every outcome: FAILED given up without a folder (a PO page whose
# list never arrives) and FAILED with one, PARTIAL, PR_NOT_ACCESSIBLE, PO_NOT_FOUND...
SEED, POS = 54, 20


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_check"] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


sc = load_checker()


@dataclass
class SoakRun:
    catalog: dict[str, Any]
    stats: dict[str, Any]
    out: Path
    pid: int
    journal: dict[str, tuple[str, str, str]]  # label -> (state, folder, finished_at)

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.out, dest, symlinks=True)
        return dest

    def po(self, outcome: str, files: int = 1) -> dict[str, Any]:
        """A PO of the catalog with this outcome and at least ``files`` expected files."""
        return next(
            po
            for po in self.catalog["pos"]
            if po["expected_outcome"] == outcome and len(po["expected_files"]) >= files
        )

    def folder(self, out: Path, po: dict[str, Any]) -> Path:
        return out / self.journal[f"PO{po['number']}"][1]


BROWSER_FIXTURES = ("run",)  # a real run of the command line: tests using it are marked browser


@pytest.fixture(scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SoakRun]:
    """One real run of the command line against the simulator, and its catalog and stats."""
    tmp = tmp_path_factory.mktemp("soak_check")
    async with Simulator(SimConfig(seed=SEED, pos=POS)) as sim:
        source = write_input(tmp / "pos.csv", [f"PO{po.number}" for po in sim.catalog.pos])
        env = cli_env(
            tmp,
            COUPA_USERNAME=sim.username,
            COUPA_PASSWORD=sim.password,
            COUPA_BACKOFF_BASE_S="0.2",  # the lists that never arrive give up sooner
        )
        out = tmp / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out))
        process = await start_cli(tmp, *args, "--workers", "2", env=env)
        code, output = await finish(process, timeout=180)
        assert code == 3, output  # FAILED and PARTIAL POs need attention
        catalog, stats = await asyncio.to_thread(sc.fetch_sim, sim.base_url)
    journal = (out / ".coupa_async" / "journal.sqlite3").as_uri()
    with contextlib.closing(sqlite3.connect(f"{journal}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT label, state, folder, finished_at FROM pos").fetchall()
    yield SoakRun(catalog, stats, out, process.pid, {row[0]: row[1:] for row in rows})


def checked(run: SoakRun, out: Path | None = None, stats: dict | None = None) -> Any:
    return sc.check(run.catalog, stats or run.stats, out or run.out, tool_pids=[run.pid])


def assert_named(result: Any, category: str, *words: str) -> None:
    """Some finding of ``category`` names every one of ``words``."""
    found = getattr(result, category)
    assert any(all(word in sentence for word in words) for sentence in found), (
        f"no {category} finding naming {words}: {list(result.findings())}"
    )


# ----- clean -------------------------------------------------------------------------------


async def test_a_real_run_is_clean(run: SoakRun) -> None:
    result = checked(run)
    assert result.ok, list(result.findings())
    assert result.summary() == "0 lost, 0 repeated, 0 wrong, 0 other"
    assert result.pos_checked == POS
    # Every file under the final folders: downloads, e-mails' PDFs and extracted attachments.
    folders = {run.out / folder for _, folder, _ in run.journal.values() if folder}
    on_disk = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    expected = [f for po in run.catalog["pos"] for f in po["expected_files"]]
    assert result.files_hashed == len(on_disk) > len(expected) > 0
    # The run met the cases the rules are about.
    outcomes = {po["expected_outcome"] for po in run.catalog["pos"]}
    assert {"COMPLETED", "PARTIAL", "FAILED", "PO_NOT_FOUND", "PR_NOT_ACCESSIBLE"} <= outcomes
    states = run.journal.values()
    assert any(state == "FAILED" and not folder for state, folder, _ in states)  # given up
    assert any(state == "FAILED" and folder for state, folder, _ in states)


async def test_every_saved_file_was_sent_whole_before_its_po_settled(run: SoakRun) -> None:
    completions = run.stats["file_completions"]
    for po in run.catalog["pos"]:
        finished = datetime.fromisoformat(run.journal[f"PO{po['number']}"][2]).timestamp()
        saved = {f["sha256"] for f in po["expected_files"]}
        for f in po["files"] + ((po["requisition"] or {}).get("files") or []):
            times = completions.get(f["url_path"], [])
            assert all(t <= finished for t in times)
            # Saved: sent whole at least once (a PO retried may fetch it again); else never.
            assert bool(times) == (f["sha256"] in saved), f["url_path"]
    assert sum(len(times) for times in completions.values()) == run.stats["files_completed"]


def test_the_command_line_exits_0_when_clean_and_1_when_not(run: SoakRun, tmp_path: Path) -> None:
    catalog, stats = tmp_path / "catalog.json", tmp_path / "stats.json"
    catalog.write_text(json.dumps(run.catalog))
    stats.write_text(json.dumps(run.stats))
    args = [sys.executable, str(SCRIPT), "--catalog", str(catalog), "--stats", str(stats)]
    clean = subprocess.run([*args, "--out", str(run.out)], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 lost, 0 repeated, 0 wrong, 0 other" in clean.stdout

    out = run.copy(tmp_path / "out")
    po = run.po("COMPLETED")
    shutil.rmtree(run.folder(out, po))
    damaged = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True)
    assert damaged.returncode == 1
    assert f"LOST     PO{po['number']}: no final folder" in damaged.stdout


def test_the_checker_imports_nothing_of_the_package() -> None:
    text = SCRIPT.read_text()
    assert "import coupa_async" not in text and "from coupa_async" not in text


# ----- planted defects ---------------------------------------------------------------------


@contextlib.contextmanager
def edit_journal(out: Path) -> Iterator[sqlite3.Connection]:
    """The copy's journal, open for writing; committed and closed after."""
    db = sqlite3.connect(out / ".coupa_async" / "journal.sqlite3")
    try:
        with db:
            yield db
    finally:
        db.close()


def _saved_file(run: SoakRun, out: Path, outcome: str = "COMPLETED", files: int = 2) -> Path:
    po = run.po(outcome, files)
    return next(p for p in sorted(run.folder(out, po).iterdir()) if p.is_file())


def plant_deleted_file(run: SoakRun, out: Path) -> tuple[str, ...]:
    path = _saved_file(run, out)
    path.unlink()
    return "lost", path.parent.name.split("_")[0], "is not in"


def plant_altered_file(run: SoakRun, out: Path) -> tuple[str, ...]:
    path = _saved_file(run, out)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "wrong", path.name, "not a file of this PO"


def plant_second_copy(run: SoakRun, out: Path) -> tuple[str, ...]:
    path = _saved_file(run, out)
    shutil.copyfile(path, path.with_name(f"copy of {path.name}"))
    return "repeated", f"copy of {path.name}", "same content 2 times"


def plant_renamed_outcome(run: SoakRun, out: Path) -> tuple[str, ...]:
    folder = run.folder(out, run.po("COMPLETED"))
    label = folder.name.removesuffix("_COMPLETED")
    folder.rename(folder.with_name(f"{label}_PARTIAL"))
    return "wrong", f"{label}_PARTIAL says PARTIAL", "expects COMPLETED"


def plant_second_final_folder(run: SoakRun, out: Path) -> tuple[str, ...]:
    folder = run.folder(out, run.po("COMPLETED"))
    label = folder.name.removesuffix("_COMPLETED")
    shutil.copytree(folder, folder.with_name(f"{label}_FAILED"))
    return "repeated", label, "2 final folders"


def plant_work_folder(run: SoakRun, out: Path) -> tuple[str, ...]:
    folder = run.folder(out, run.po("COMPLETED"))
    work = folder.with_name(folder.name.replace("_COMPLETED", "__WORK"))
    work.mkdir()
    (work / "half.pdf").write_bytes(b"%PDF")
    return "other", work.name, "work folder"


def plant_temp_file(run: SoakRun, out: Path) -> tuple[str, ...]:
    folder = run.folder(out, run.po("COMPLETED"))
    (folder / ".quote.pdf.0badcafe.part").write_bytes(b"half")
    return "other", ".quote.pdf.0badcafe.part", "partial download"


def plant_report_tmp(run: SoakRun, out: Path) -> tuple[str, ...]:
    (out / ".report.csv.12ab34cd.tmp").write_text("PO_NUMBER\n")
    return "other", ".report.csv.12ab34cd.tmp", "temporary file"


def plant_symlink_outside(run: SoakRun, out: Path) -> tuple[str, ...]:
    folder = run.folder(out, run.po("COMPLETED"))
    (folder / "passwd.pdf").symlink_to("/etc/passwd")
    return "other", "passwd.pdf", "resolves outside"


def plant_report_status(run: SoakRun, out: Path) -> tuple[str, ...]:
    path = out / "report.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    label = f"PO{run.po('PARTIAL')['number']}"
    row = next(row for row in rows if row["PO_NUMBER"] == label)
    row["STATUS"] = "COMPLETED"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, header or [])
        writer.writeheader()
        writer.writerows(rows)
    return "wrong", label, "STATUS 'COMPLETED'", "the folder says PARTIAL"


def plant_journal_state(run: SoakRun, out: Path) -> tuple[str, ...]:
    label = f"PO{run.po('PR_NOT_ACCESSIBLE', 0)['number']}"
    with edit_journal(out) as db:
        db.execute("UPDATE pos SET state = 'COMPLETED' WHERE label = ?", (label,))
    return "wrong", label, "the journal says COMPLETED", "the folder says PR_NOT_ACCESSIBLE"


def plant_journal_file(run: SoakRun, out: Path) -> tuple[str, ...]:
    label = f"PO{run.po('COMPLETED')['number']}"
    with edit_journal(out) as db:
        db.execute("UPDATE files SET sha256 = ? WHERE label = ?", ("0" * 64, label))
    return "wrong", label, "the journal records", "sha256 000000000000"


PLANTS: dict[str, Callable[[SoakRun, Path], tuple[str, ...]]] = {
    "deleted file": plant_deleted_file,
    "altered file": plant_altered_file,
    "second copy": plant_second_copy,
    "renamed outcome": plant_renamed_outcome,
    "second final folder": plant_second_final_folder,
    "work folder": plant_work_folder,
    "temp file": plant_temp_file,
    "report temp file": plant_report_tmp,
    "symlink outside": plant_symlink_outside,
    "report status": plant_report_status,
    "journal state": plant_journal_state,
    "journal file": plant_journal_file,
}


async def test_a_missing_folder_is_lost_unless_the_po_was_given_up(
    run: SoakRun, tmp_path: Path
) -> None:
    out = run.copy(tmp_path / "out")
    po = run.po("PO_NOT_FOUND", 0)
    shutil.rmtree(run.folder(out, po))
    assert_named(checked(run, out), "lost", f"PO{po['number']}", "no final folder")

    # A given-up FAILED PO has no folder: fine while the journal says so, lost when it names one.
    label = next(label for label, (state, folder, _) in run.journal.items() if not folder)
    with edit_journal(out) as db:
        db.execute("UPDATE pos SET folder = ? WHERE label = ?", (f"X/{label}_FAILED", label))
    assert_named(checked(run, out), "lost", label, "no final folder")


async def test_requests_during_a_retry_after_are_named(run: SoakRun) -> None:
    stats = {**run.stats, "requests_during_retry_after": 1}
    assert_named(checked(run, stats=stats), "other", "1 request(s)", "Retry-After")


async def test_a_file_sent_whole_after_its_po_settled_is_repeated(run: SoakRun) -> None:
    po = next(p for p in run.catalog["pos"] if p["expected_outcome"] == "COMPLETED" and p["files"])
    label = f"PO{po['number']}"
    finished = datetime.fromisoformat(run.journal[label][2]).timestamp()
    stats = copy.deepcopy(run.stats)
    url_path = po["files"][0]["url_path"]
    stats["file_completions"][url_path].append(finished + 5)
    assert_named(checked(run, stats=stats), "repeated", label, url_path, "after the PO settled")

    stats["file_completions"][url_path][-1] = finished - 5  # a retry before it settled: fine
    assert checked(run, stats=stats).ok


async def test_stats_without_completions_cannot_prove_no_repeats(run: SoakRun) -> None:
    stats = {k: v for k, v in run.stats.items() if k != "file_completions"}
    assert_named(checked(run, stats=stats), "other", "no file_completions")


def test_a_process_left_running_is_named(run: SoakRun, tmp_path: Path) -> None:
    hint = str(tmp_path / "profile")
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "coupa_async", hint]
    )
    try:
        result = sc.check(run.catalog, run.stats, run.out, tool_pids=[fake.pid])
        assert_named(result, "other", f"tool process {fake.pid}", "still running")
        result = sc.check(run.catalog, run.stats, run.out, profile_hint=hint)
        assert_named(result, "other", str(fake.pid), hint)
    finally:
        fake.kill()
        fake.wait()
    assert sc.check(run.catalog, run.stats, run.out, tool_pids=[fake.pid]).ok


# ----- saved e-mails and their conversion --------------------------------------------------

MAIL_SUFFIXES = (".msg", ".eml")


@dataclass
class Mail:
    """A saved e-mail of the run (in a copy of its output), with the catalog's summary."""

    label: str
    path: Path
    summary: dict[str, Any]

    @property
    def pdf(self) -> Path:
        return self.path.with_name(f"{self.path.name}.pdf")

    @property
    def folder(self) -> Path:
        return self.path.with_name(f"{self.path.name}_attachments")

    def attachment(self) -> Path:
        """A plain (not e-mail) attachment extracted into its folder."""
        plain = {a["sha256"] for a in self.summary["attachments"] if not a["nested"]}
        return next(p for p in sorted(self.folder.iterdir()) if p.is_file() and sha(p) in plain)

    def nested(self) -> Path:
        """An e-mail nested in it, as extracted."""
        return next(p for p in sorted(self.folder.iterdir()) if p.suffix in MAIL_SUFFIXES)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def saved_mails(run: SoakRun, out: Path) -> list[Mail]:
    mails = []
    for po in run.catalog["pos"]:
        label = f"PO{po['number']}"
        if not run.journal[label][1]:
            continue
        files = po["files"] + ((po["requisition"] or {}).get("files") or [])
        summaries = {f["sha256"]: f["email"] for f in files if f.get("email")}
        for path in sorted(run.folder(out, po).iterdir()):
            if path.is_file() and path.suffix.lower() in MAIL_SUFFIXES and sha(path) in summaries:
                mails.append(Mail(label, path, summaries[sha(path)]))
    return mails


def saved_mail(
    run: SoakRun, out: Path, *, malformed: bool = False, suffix: str = "", plain: bool = False
) -> Mail:
    """A saved e-mail: a malformed one, or a good one with a nested e-mail (and ``plain``: with
    a plain attachment too)."""
    return next(
        mail
        for mail in saved_mails(run, out)
        if mail.summary["malformed"] == malformed
        and (malformed or mail.summary["nested"])
        and mail.path.suffix.endswith(suffix)
        and (not plain or any(not a["nested"] for a in mail.summary["attachments"]))
    )


def rewrite_report(out: Path, edit: Callable[[list[str], list[dict[str, str]]], None]) -> None:
    """Rewrite report.csv after ``edit`` changed its header or rows in place."""
    path = out / "report.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = list(reader.fieldnames or []), list(reader)
    edit(header, rows)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def set_conversion_errors(out: Path, label: str, text: str) -> None:
    """The PO's CONVERSION_ERRORS, in the report and the journal alike."""

    def edit(header: list[str], rows: list[dict[str, str]]) -> None:
        for row in rows:
            if row["PO_NUMBER"] == label:
                row["CONVERSION_ERRORS"] = text

    rewrite_report(out, edit)
    with edit_journal(out) as db:
        db.execute(
            "UPDATE pos SET conversion_errors = ? WHERE label = ?",
            (text.replace("; ", "\n"), label),
        )


def strip_outputs(run: SoakRun, out: Path, *, pdfs: bool, folders: bool) -> None:
    """Delete the conversion outputs a run in another mode would not have made."""
    for mail in saved_mails(run, out):
        if pdfs:
            mail.pdf.unlink(missing_ok=True)
            if mail.folder.is_dir():
                for nested_pdf in mail.folder.rglob("*.pdf"):
                    if nested_pdf.name.removesuffix(".pdf").endswith(MAIL_SUFFIXES):
                        nested_pdf.unlink()
        if folders and mail.folder.is_dir():
            shutil.rmtree(mail.folder)


def test_the_run_converted_good_nested_and_malformed_e_mails(run: SoakRun) -> None:
    # The clean run above holds every case the conversion rules are about.
    for suffix in MAIL_SUFFIXES:
        mail = saved_mail(run, run.out, suffix=suffix)
        assert mail.pdf.read_bytes().startswith(b"%PDF-")
        nested = mail.nested()
        assert nested.with_name(f"{nested.name}.pdf").is_file()
        assert nested.with_name(f"{nested.name}_attachments").is_dir()
    assert saved_mail(run, run.out, plain=True).attachment().is_file()
    bad = saved_mail(run, run.out, malformed=True)
    assert not bad.pdf.exists() and not bad.folder.exists()
    with (run.out / "report.csv").open(encoding="utf-8-sig", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["PO_NUMBER"] == bad.label)
    assert bad.path.name in row["CONVERSION_ERRORS"]


def plant_missing_pdf(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out)
    mail.pdf.unlink()
    return "lost", mail.path.name, "has no PDF"


def plant_not_a_pdf(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out)
    mail.pdf.write_bytes(b"half a PDF")
    return "wrong", mail.pdf.name, "not a PDF"


def plant_missing_attachment(run: SoakRun, out: Path) -> tuple[str, ...]:
    path = saved_mail(run, out, plain=True).attachment()
    path.unlink()
    return "lost", "an attachment of", "is not in", path.parent.name


def plant_attachment_copy(run: SoakRun, out: Path) -> tuple[str, ...]:
    path = saved_mail(run, out, plain=True).attachment()
    shutil.copyfile(path, path.with_name(f"copy of {path.name}"))
    return "repeated", f"copy of {path.name}", "same content 2 times"


def plant_foreign_attachment(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out, plain=True)
    (mail.folder / "intruder.txt").write_text("not from this e-mail\n")
    return "wrong", "intruder.txt", "is no attachment of", mail.path.name


def plant_missing_nested(run: SoakRun, out: Path) -> tuple[str, ...]:
    nested = saved_mail(run, out, suffix=".msg").nested()
    nested.unlink()
    return "lost", "nested in", "is not in"


def plant_missing_nested_pdf(run: SoakRun, out: Path) -> tuple[str, ...]:
    nested = saved_mail(run, out, suffix=".eml").nested()
    nested.with_name(f"{nested.name}.pdf").unlink()
    return "lost", nested.name, "has no PDF"


def plant_missing_nested_attachment(run: SoakRun, out: Path) -> tuple[str, ...]:
    nested = saved_mail(run, out, suffix=".msg").nested()
    inside = nested.with_name(f"{nested.name}_attachments")
    name = next(inside.iterdir()).name
    shutil.rmtree(inside)
    inside.mkdir()
    return "lost", name, "is not in"


def plant_unreported_failure(run: SoakRun, out: Path) -> tuple[str, ...]:
    bad = saved_mail(run, out, malformed=True)
    set_conversion_errors(out, bad.label, "")
    return "lost", bad.path.name, "does not report", "could not be converted"


def plant_pdf_of_malformed(run: SoakRun, out: Path) -> tuple[str, ...]:
    bad = saved_mail(run, out, malformed=True)
    bad.pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    return "wrong", bad.pdf.name, "a PDF of", "malformed"


def plant_folder_of_malformed(run: SoakRun, out: Path) -> tuple[str, ...]:
    bad = saved_mail(run, out, malformed=True)
    bad.folder.mkdir()
    return "wrong", bad.folder.name, "malformed"


def plant_good_mail_reported(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out)
    set_conversion_errors(out, mail.label, f"{mail.path.name} could not be read as an e-mail")
    return "wrong", mail.label, repr(mail.path.name), "as not converted"


def plant_stray_conversion_error(run: SoakRun, out: Path) -> tuple[str, ...]:
    label = f"PO{run.po('COMPLETED')['number']}"
    set_conversion_errors(out, label, "something could not be converted")
    return "wrong", label, "none of its e-mails"


def plant_report_journal_disagree(run: SoakRun, out: Path) -> tuple[str, ...]:
    bad = saved_mail(run, out, malformed=True)
    with edit_journal(out) as db:
        db.execute("UPDATE pos SET conversion_errors = 'other' WHERE label = ?", (bad.label,))
    return "wrong", bad.label, "the journal 'other'"


def plant_orphan_folder(run: SoakRun, out: Path) -> tuple[str, ...]:
    folder = run.folder(out, run.po("COMPLETED")) / "Ghost.msg_attachments"
    folder.mkdir()
    (folder / "note.txt").write_text("left behind\n")
    return "other", "Ghost.msg_attachments", "no e-mail beside it"


def plant_orphan_pdf(run: SoakRun, out: Path) -> tuple[str, ...]:
    (run.folder(out, run.po("COMPLETED")) / "Ghost.eml.pdf").write_bytes(b"%PDF-1.4\n")
    return "other", "Ghost.eml.pdf", "no e-mail beside it"


def plant_other_subfolder(run: SoakRun, out: Path) -> tuple[str, ...]:
    (run.folder(out, run.po("COMPLETED")) / "extra").mkdir()
    return "other", "extra", "a folder the tool does not make"


def plant_partial_folder(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out)
    partial = mail.path.with_name(f".{mail.folder.name}.partial")
    partial.mkdir()
    (partial / "half.txt").write_text("half\n")
    return "other", partial.name, "half-extracted"


def plant_stale_folder(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out)
    stale = mail.path.with_name(f".{mail.folder.name}.stale")
    shutil.copytree(mail.folder, stale)
    return "other", stale.name, "moved aside"


def plant_pdf_temp(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out)
    temp = mail.path.with_name(f".{mail.pdf.name}.0badcafe.tmp")
    temp.write_bytes(b"%PDF-1.4")
    return "other", temp.name, "temporary file"


def plant_incomplete_marker(run: SoakRun, out: Path) -> tuple[str, ...]:
    mail = saved_mail(run, out)
    (mail.folder / ".incomplete").write_text("The attachment x could not be read\n")
    return "other", ".incomplete", "ended in an error"


def plant_report_without_column(run: SoakRun, out: Path) -> tuple[str, ...]:
    rewrite_report(out, lambda header, rows: header.remove("CONVERSION_ERRORS"))
    return "other", "no column CONVERSION_ERRORS"


EMAIL_PLANTS: dict[str, Callable[[SoakRun, Path], tuple[str, ...]]] = {
    "missing PDF": plant_missing_pdf,
    "not a PDF": plant_not_a_pdf,
    "missing attachment": plant_missing_attachment,
    "attachment copy": plant_attachment_copy,
    "foreign attachment": plant_foreign_attachment,
    "missing nested e-mail": plant_missing_nested,
    "missing nested PDF": plant_missing_nested_pdf,
    "missing nested attachment": plant_missing_nested_attachment,
    "unreported failure": plant_unreported_failure,
    "PDF of malformed": plant_pdf_of_malformed,
    "folder of malformed": plant_folder_of_malformed,
    "good e-mail reported": plant_good_mail_reported,
    "stray conversion error": plant_stray_conversion_error,
    "report and journal disagree": plant_report_journal_disagree,
    "orphan attachments folder": plant_orphan_folder,
    "orphan PDF": plant_orphan_pdf,
    "other subfolder": plant_other_subfolder,
    "partial folder": plant_partial_folder,
    "stale folder": plant_stale_folder,
    "PDF temp file": plant_pdf_temp,
    "incomplete marker": plant_incomplete_marker,
    "report without column": plant_report_without_column,
}

ALL_PLANTS = {**PLANTS, **EMAIL_PLANTS}


@pytest.mark.parametrize("plant", ALL_PLANTS.values(), ids=ALL_PLANTS.keys())
async def test_a_planted_defect_is_named_in_its_category(
    run: SoakRun, tmp_path: Path, plant: Callable[[SoakRun, Path], tuple[str, ...]]
) -> None:
    out = run.copy(tmp_path / "out")
    category, *words = plant(run, out)
    result = checked(run, out)
    assert not result.ok
    assert_named(result, category, *words)


@pytest.mark.parametrize(
    ("mode", "pdfs", "folders"),
    [("off", True, True), ("pdf", False, True), ("extract", True, False)],
)
async def test_each_mode_is_clean_with_its_own_outputs_only(
    run: SoakRun, tmp_path: Path, mode: str, pdfs: bool, folders: bool
) -> None:
    # What a run in ``mode`` leaves: the outputs it does not make deleted from a copy.
    assert_named(sc.check(run.catalog, run.stats, run.out, emails=mode), "wrong", repr(mode))
    out = run.copy(tmp_path / "out")
    strip_outputs(run, out, pdfs=pdfs, folders=folders)
    if mode == "off":
        set_conversion_errors(out, saved_mail(run, out, malformed=True).label, "")
    result = sc.check(run.catalog, run.stats, out, emails=mode)
    assert result.ok, list(result.findings())
    assert not sc.check(run.catalog, run.stats, out).ok  # as "both": outputs are missing


def test_the_command_line_takes_the_conversion_mode(run: SoakRun, tmp_path: Path) -> None:
    catalog, stats = tmp_path / "catalog.json", tmp_path / "stats.json"
    catalog.write_text(json.dumps(run.catalog))
    stats.write_text(json.dumps(run.stats))
    args = [sys.executable, str(SCRIPT), "--catalog", str(catalog), "--stats", str(stats)]
    args += ["--out", str(run.out), "--emails"]
    off = subprocess.run([*args, "off"], capture_output=True, text=True)
    assert off.returncode == 1
    assert "though e-mails are converted as 'off'" in off.stdout
    assert subprocess.run([*args, "sometimes"], capture_output=True).returncode == 2


# ----- a hand-made output: alternates, nested e-mails matched by their attachments ---------


def _file(name: str, data: bytes, email: dict[str, Any] | None = None) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    return {
        "name": name,
        "expected_name": name,
        "sha256": digest,
        "size": len(data),
        "url_path": f"/attachments/{name}",
        "source": "po",
        "email": email,
    }


def _summary(*parts: tuple[str, bytes], nested: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    attachments = [
        {
            "name": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "nested": name.endswith(".msg"),
        }
        for name, data in parts
    ]
    return {"malformed": False, "attachments": attachments, "nested": list(nested)}


def build_output(tmp: Path, *, journal_schema: int = 3) -> tuple[dict[str, Any], Path]:
    """PO1 with a download named like a PDF of its e-mail (so the PDF takes the alternate name),
    an e-mail holding two nested ones (their files named against the summaries' order, their
    bytes exported anew) and a malformed e-mail, reported."""
    first = _summary(("x.txt", b"x"))
    second = _summary(("y.txt", b"y"))
    mail = _summary(
        ("a.txt", b"a"),
        ("First.msg", b"first as sent"),
        ("b.pdf", b"%PDF-b"),
        ("Second.msg", b"second as sent"),
        nested=[first, second],
    )
    files = [
        _file("Mail.msg", b"mail", mail),
        _file("Mail.msg.pdf", b"%PDF-a download"),
        _file("Bad.eml", b"no headers", {**_summary(), "malformed": True}),
        _file("Quote.pdf", b"%PDF-quote"),
    ]
    po = {
        "number": "1",
        "expected_outcome": "COMPLETED",
        "files": files,
        "requisition": None,
        "expected_files": [{k: f[k] for k in ("sha256", "size", "source", "name")} for f in files],
    }
    out = tmp / "out"
    folder = out / "Acme" / "PO1_COMPLETED"
    tree = {
        "Mail.msg": b"mail",
        "Mail.msg.pdf": b"%PDF-a download",
        "Mail.msg (e-mail).pdf": b"%PDF-1.4 converted",
        "Bad.eml": b"no headers",
        "Quote.pdf": b"%PDF-quote",
        "Mail.msg_attachments/a.txt": b"a",
        "Mail.msg_attachments/b.pdf": b"%PDF-b",
        "Mail.msg_attachments/A.msg": b"second, exported",
        "Mail.msg_attachments/A.msg.pdf": b"%PDF-1.4",
        "Mail.msg_attachments/A.msg_attachments/y.txt": b"y",
        "Mail.msg_attachments/B.msg": b"first, exported",
        "Mail.msg_attachments/B.msg.pdf": b"%PDF-1.4",
        "Mail.msg_attachments/B.msg_attachments/x.txt": b"x",
    }
    for rel, data in tree.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    error = "Bad.eml could not be read as an e-mail: it has no mail headers"
    (out / ".coupa_async").mkdir()
    with contextlib.closing(sqlite3.connect(out / ".coupa_async" / "journal.sqlite3")) as db:
        columns = "label, state, folder, finished_at"
        row = ["PO1", "COMPLETED", "Acme/PO1_COMPLETED", "2025-01-01T00:00:00+00:00"]
        if journal_schema >= 3:  # schema 2 has no conversion_errors
            columns, row = f"{columns}, conversion_errors", [*row, error]
        db.execute(f"CREATE TABLE pos ({columns})")
        db.execute("CREATE TABLE files (label, path, sha256, size)")
        db.execute(f"INSERT INTO pos VALUES ({', '.join('?' * len(row))})", row)
        for f in files:
            db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?)",
                ("PO1", f"Acme/PO1_COMPLETED/{f['name']}", f["sha256"], f["size"]),
            )
        db.commit()
    with (out / "report.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(sc.REPORT_COLUMNS)
        writer.writerow(["PO1", "COMPLETED", str(folder), len(files), error])
    return {"pos": [po]}, out


@pytest.mark.parametrize("journal_schema", [3, 2])
def test_a_hand_made_output_with_alternate_names_and_nested_e_mails_is_clean(
    tmp_path: Path, journal_schema: int
) -> None:
    catalog, out = build_output(tmp_path, journal_schema=journal_schema)
    result = sc.check(catalog, {"file_completions": {}}, out)
    assert result.ok, list(result.findings())
    assert result.files_hashed == 13


def test_nested_e_mails_are_matched_by_their_attachments(tmp_path: Path) -> None:
    catalog, out = build_output(tmp_path)
    inside = out / "Acme" / "PO1_COMPLETED" / "Mail.msg_attachments"
    (inside / "A.msg_attachments" / "y.txt").unlink()
    result = sc.check(catalog, {"file_completions": {}}, out)
    # Only y.txt is lost: A.msg is still taken for the second nested e-mail, not by order.
    assert result.summary() == "1 lost, 0 repeated, 0 wrong, 0 other", list(result.findings())
    assert_named(result, "lost", "'y.txt'", "A.msg_attachments")


def test_a_shadow_po_file_in_a_po_folder_is_wrong(tmp_path: Path) -> None:
    """The file of the PO whose page sits at the asked PO's number is another PO's file."""
    catalog, out = build_output(tmp_path)
    stolen = b"%PDF-shadow"
    shadow_file = _file("Shadow quote.pdf", stolen)
    catalog["shadow_pos"] = [
        {
            "number": "96032748",
            "internal_id": "1",
            "shadow_of": "1",
            "files": [shadow_file],
            "links": [],
            "expected_links": 0,
        }
    ]
    catalog["pos"][0].update(internal_id="40000001", links=[], expected_links=0)
    (out / "Acme" / "PO1_COMPLETED" / "Shadow quote.pdf").write_bytes(stolen)
    result = sc.check(catalog, {"file_completions": {}}, out)
    assert_named(result, "wrong", "PO1", "Shadow quote.pdf", "another PO's file", "PO96032748")
