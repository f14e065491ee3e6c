"""Resuming: interrupted runs pick up where they stopped, nothing is fetched twice or lost."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME
from coupa_async.running.table_run import RunSummary, run_table
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.tabular import InputTable

from .runkit import check_against_catalog, input_table_for, settings_for

pytestmark = pytest.mark.browser
# Twelve POs of these seeds hold every outcome a rerun treats apart (kept, failed, partial, not
# accessible, not found) and a list that never arrives; more would only repeat them. That list
# fails at once (HTTP 500, a script error) at each attempt, and few pages fill late or are heavy:
# slow pages (a list that hangs waits out the settle bound at every attempt) change nothing a
# rerun does, they only make each run longer.
POS = 12
OUTCOMES = {"COMPLETED", "NO_ATTACHMENTS", "PO_NOT_FOUND", "FAILED", "PARTIAL", "PR_NOT_ACCESSIBLE"}


def varied(sim: Simulator) -> Simulator:
    """``sim``, once its catalog is seen to hold every outcome and a list that never arrives."""
    assert {po.expected_outcome for po in sim.catalog.pos} == OUTCOMES
    assert any(po.late_failed for po in sim.catalog.pos)
    return sim


async def run_once(
    settings: Settings, table: InputTable, *, stop_after: int | None = None, **options: bool
) -> RunSummary:
    stop = asyncio.Event()
    if stop_after is None:
        return await run_table(settings, table, stop=stop, show=False, **options)

    task = asyncio.ensure_future(run_table(settings, table, stop=stop, show=False, **options))
    while not task.done():
        await asyncio.sleep(0.05)
        journal = settings.out / JOURNAL_DIR / JOURNAL_NAME
        if journal.exists() and _settled(journal) >= stop_after:
            stop.set()
            break
    return await task


def _settled(journal: Path) -> int:
    db = sqlite3.connect(journal)
    try:
        return db.execute("SELECT COUNT(*) FROM pos WHERE state != 'PENDING'").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def expected_refetches(sim: Simulator, labels: set[str]) -> int:
    """Files a rerun must fetch again for these POs: those that failed, and click-only ones
    (a click has no URL to match the journal by)."""
    count = 0
    for po in sim.catalog.pos:
        if f"PO{po.number}" in labels:
            files = list(po.files) + (list(po.requisition.files) if po.requisition else [])
            count += sum(1 for f in files if f.serves_html or not f.has_href)
    return count


async def test_interrupted_run_resumes_without_fetching_twice(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=5181, pos=POS)) as sim:
        settings = settings_for(varied(sim), tmp_path, workers=2)
        table = input_table_for(tmp_path / "pos.csv", sim)

        first = await run_once(settings, table, stop_after=POS // 2)
        assert first.interrupted and first.pending > 0
        done_first = set(first.results)
        kept = {
            label
            for label, result in first.results.items()
            if result.outcome.value in ("COMPLETED", "NO_ATTACHMENTS", "PO_NOT_FOUND")
        }

        sim.reset_stats()
        second = await run_once(settings, table)
        assert not second.interrupted
        assert second.skipped == len(kept)
        check_against_catalog(sim, list(second.results.values()), settings.out)
        rerun = {f"PO{po.number}" for po in sim.catalog.pos} - kept
        fetched = sim.stats.snapshot()["requests"]["file"]
        # POs settled in the first run were not visited at all; files of the others were
        # fetched at most once more, minus what the journal let us reuse
        reads = sim.stats.snapshot()["requests"]["po_page"]
        assert reads <= page_reads_bound(sim, rerun, settings)
        not_done_before = rerun - done_first
        must_fetch = sum(
            len(po.expected_files) + sum(1 for f in po.files if f.serves_html)
            for po in sim.catalog.pos
            if f"PO{po.number}" in not_done_before
        )
        assert fetched <= must_fetch + expected_refetches(sim, rerun & done_first) + 2

        sim.reset_stats()
        third = await run_once(settings, table)  # everything settled: only the failed again
        settled = ("COMPLETED", "NO_ATTACHMENTS", "PO_NOT_FOUND")
        assert third.skipped == len(
            [r for r in third.results.values() if r.outcome.value in settled]
        )
        again = {label for label, r in third.results.items() if r.outcome.value not in settled}
        reads = sim.stats.snapshot()["requests"]["po_page"]
        assert reads <= page_reads_bound(sim, again, settings)


async def test_a_damaged_folder_is_redone_and_fresh_starts_over(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=2073, pos=POS)) as sim:
        settings = settings_for(varied(sim), tmp_path)
        table = input_table_for(tmp_path / "pos.csv", sim)
        first = await run_once(settings, table)
        victim = next(r for r in first.results.values() if r.outcome.value == "COMPLETED")
        victim.files[0].path.unlink()

        second = await run_once(settings, table)
        redone = second.results[victim.po_number]
        assert redone.outcome.value == "COMPLETED"
        assert victim.files[0].path.exists()
        settled = ("COMPLETED", "NO_ATTACHMENTS", "PO_NOT_FOUND")
        kept_first = sum(1 for r in first.results.values() if r.outcome.value in settled)
        assert second.skipped == kept_first - 1  # all settled ones but the damaged one

        sim.reset_stats()
        fresh = await run_once(settings, table, fresh=True)
        assert fresh.skipped == 0
        assert sim.stats.snapshot()["requests"]["po_page"] >= len(sim.catalog.pos)
        check_against_catalog(sim, list(fresh.results.values()), settings.out)
        backups = [p for p in (settings.out / JOURNAL_DIR).iterdir() if p.name.endswith(".bak")]
        assert backups


async def test_retry_failed_touches_only_the_failed(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=1155, pos=POS)) as sim:
        settings = settings_for(varied(sim), tmp_path)
        table = input_table_for(tmp_path / "pos.csv", sim)
        await run_once(settings, table)
        failed = {
            f"PO{po.number}"
            for po in sim.catalog.pos
            if po.expected_outcome in ("FAILED", "PARTIAL", "PR_NOT_ACCESSIBLE")
        }
        assert failed
        sim.reset_stats()
        again = await run_once(settings, table, retry_failed=True)
        assert again.skipped == len(sim.catalog.pos) - len(failed)
        reads = sim.stats.snapshot()["requests"]["po_page"]
        assert reads <= page_reads_bound(sim, failed, settings)


def page_reads_bound(sim: Simulator, labels: set[str], settings: Settings) -> int:
    """PO page requests a run of ``labels`` may send: two reads (fast, then render) per attempt;
    a list that never arrives uses every attempt."""
    return sum(
        2 * (settings.max_attempts if po.late_failed else 1)
        for po in sim.catalog.pos
        if f"PO{po.number}" in labels
    )
