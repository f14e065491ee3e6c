"""The soak checker: clean on a real run of the CLI, and names each planted defect rightly."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from coupa_async.sim import SimConfig, Simulator

from .test_cli import cli_env, finish, start_cli, write_input

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "soak_check.py"
# Seed 5's first 20 POs hold every outcome: FAILED given up without a folder (a PO page whose
# list never arrives) and FAILED with one, PARTIAL, PR_NOT_ACCESSIBLE, PO_NOT_FOUND...
SEED, POS = 5, 20


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
    expected = [f for po in run.catalog["pos"] for f in po["expected_files"]]
    assert result.files_hashed == len(expected) > 0
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


@pytest.mark.parametrize("plant", PLANTS.values(), ids=PLANTS.keys())
async def test_a_planted_defect_is_named_in_its_category(
    run: SoakRun, tmp_path: Path, plant: Callable[[SoakRun, Path], tuple[str, ...]]
) -> None:
    out = run.copy(tmp_path / "out")
    category, *words = plant(run, out)
    result = checked(run, out)
    assert not result.ok
    assert_named(result, category, *words)


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
    po = run.po("COMPLETED")
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
