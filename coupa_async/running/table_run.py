"""One run over an input file: read it, download, report. Shared by ``run`` and ``demo``."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
from rich.console import Console

from coupa_async.coupa.po_steps import PoTask
from coupa_async.engine.waiting import unless_stopped
from coupa_async.errors import CoupaAsyncError, ExitCode, InputFileError, StorageError
from coupa_async.htmlreport import report_data, write_html_report
from coupa_async.log import get_logger
from coupa_async.results.journal import Journal, ResumePlan
from coupa_async.results.result import Outcome, PoResult
from coupa_async.results.status_view import print_some
from coupa_async.running.downloader import Downloader
from coupa_async.running.live_run import OutputClaim, claim_output, raised_as_itself
from coupa_async.running.metrics import MetricSample, RunEvent
from coupa_async.running.progress import show_progress
from coupa_async.settings import Settings
from coupa_async.tabular import (
    InputRow,
    InputTable,
    LiveCsvReport,
    LiveManifest,
    read_input,
    write_manifest,
    write_reports,
)
from coupa_async.terminal_text import safe_text

log = get_logger(__name__)


@dataclass
class RunSummary:
    """What a run did, for the summary and the exit code."""

    results: dict[str, PoResult] = field(default_factory=dict)
    invalid: int = 0
    pending: int = 0
    interrupted: bool = False
    skipped: int = 0
    left_alone: int = 0
    reports: list[Path] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results.values() if result.outcome is outcome)

    @property
    def needing_attention(self) -> list[PoResult]:
        return [r for r in self.results.values() if not r.outcome.is_success]

    @property
    def exit_code(self) -> ExitCode:
        """INTERRUPTED, else ATTENTION when a PO is not a success, invalid or pending, else OK."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.needing_attention or self.invalid or self.pending:
            return ExitCode.ATTENTION
        return ExitCode.OK


def load_input(path: Path) -> InputTable:
    table = read_input(path)
    if not any(row.po for row in table.rows):
        raise InputFileError(
            f"No row of {path} holds a valid PO number (e.g. PO15262984). Check the column."
        )
    return table


def plan_tasks(table: InputTable, journal: Journal, *, retry_failed: bool) -> RunPlan:
    """One task per distinct PO of the input, minus what the journal says is settled."""
    tasks: dict[str, PoTask] = {}
    priorities: dict[str, int] = {}
    for row in table.rows:
        if row.po is None:
            continue
        label = row.po.label
        if label not in tasks:
            tasks[label] = PoTask(row.po, row.supplier, tuple(row.levels))
        priorities[label] = min(priorities.get(label, row.priority), row.priority)
    resume = journal.plan(list(tasks), retry_failed_only=retry_failed)
    chosen = []
    for label in resume.to_process:
        record = resume.records.get(label)
        known = tuple(record.saved_files()) if record is not None else ()
        task = tasks[label]
        known_url = record.po_url if record is not None and record.po_url else None
        chosen.append(
            (
                PoTask(task.po, task.supplier_hint, task.levels, known, known_url),
                priorities[label],
            )
        )
    return RunPlan(chosen, resume)


@dataclass
class RunPlan:
    """The tasks to submit, with their priorities, and what the journal decided."""

    tasks: list[tuple[PoTask, int]]
    resume: ResumePlan


async def run_table(
    settings: Settings,
    table: InputTable,
    *,
    stop: asyncio.Event,
    console: Console | None = None,
    show: bool = True,
    fresh: bool = False,
    retry_failed: bool = False,
) -> RunSummary:
    """Download every valid PO of ``table`` that the journal does not show as settled.

    Stops early on ``stop``, leaving the rest pending. The journal is written before a result is
    announced; the reports (and manifest.csv) are written at the end, also when interrupted or
    failing.
    """
    # First contact before --out, the journal or a report is created; then one run at a time
    # on --out (the lock is held until the run's end).
    async with claim_output(settings, settings.out) as claim:
        return await _run_claimed(
            settings,
            table,
            claim,
            stop=stop,
            console=console,
            show=show,
            fresh=fresh,
            retry_failed=retry_failed,
        )


async def _run_claimed(
    settings: Settings,
    table: InputTable,
    claim: OutputClaim,
    *,
    stop: asyncio.Event,
    console: Console | None,
    show: bool,
    fresh: bool,
    retry_failed: bool,
) -> RunSummary:
    summary = RunSummary()
    summary.invalid = sum(1 for row in table.rows if row.po is None)
    journal = await anyio.to_thread.run_sync(partial(Journal.open, settings.out, fresh=fresh))
    run_id = await anyio.to_thread.run_sync(journal.begin_run)
    live = await anyio.to_thread.run_sync(LiveCsvReport, settings.out, table.rows, table.columns)
    manifest = await anyio.to_thread.run_sync(LiveManifest, settings.out)
    finished = False
    try:
        plan = await anyio.to_thread.run_sync(
            partial(plan_tasks, table, journal, retry_failed=retry_failed)
        )
        for record in plan.resume.skip:
            summary.results[record.label] = record.as_result()
        earlier = list(summary.results.values())
        await anyio.to_thread.run_sync(live.extend, earlier)
        await anyio.to_thread.run_sync(manifest.extend, earlier)
        summary.skipped = len(plan.resume.skip)
        summary.left_alone = len(plan.resume.left_alone)
        await anyio.to_thread.run_sync(
            journal.add_pending, [task.po.label for task, _ in plan.tasks]
        )
        if plan.tasks:  # else no browser is started, no sign-in made
            recorder = _Recorder(journal, run_id, summary, (live, manifest))
            await _download(settings, claim, plan, recorder, stop=stop, console=console, show=show)
        finished = not summary.interrupted
    finally:
        labels = {row.po.label for row in table.rows if row.po is not None}
        summary.pending = len(labels - set(summary.results))
        # Each step on its own: a full disk must not hide why the run stopped, nor keep the
        # reports that can still be written from being written.
        with _unless_storage_fails("run_end_not_recorded"):
            state = "finished" if finished else "interrupted"
            await anyio.to_thread.run_sync(journal.end_run, run_id, state)
        live.close()  # before write_reports replaces report.csv (Windows cannot replace it open)
        manifest.close()
        with _unless_storage_fails("report_not_written"):
            summary.reports = await anyio.to_thread.run_sync(
                write_reports, settings.out, table.rows, summary.results, table.columns
            )
        # Every PO with a result: this run's and, from the journal, those it skipped.
        with _unless_storage_fails("manifest_not_written"):
            summary.reports.append(
                await anyio.to_thread.run_sync(
                    write_manifest, settings.out, table.rows, summary.results
                )
            )
        html = await anyio.to_thread.run_sync(write_html_report_from, journal, table.rows)
        if html is not None:
            summary.reports.append(html)
        journal.close()
    return summary


@contextlib.contextmanager
def _unless_storage_fails(event: str) -> Iterator[None]:
    """Log a write that the disk refused, and go on."""
    try:
        yield
    except (OSError, StorageError) as exc:
        log.warning(event, reason=str(exc.__cause__ or exc))  # the cause, not the stop sentence


def write_html_report_from(journal: Journal, rows: list[InputRow] | None = None) -> Path | None:
    """``report.html`` from the journal (and the input's rows, when known). A report that
    cannot be written is a warning: the CSV and XLSX reports and the journal stand."""
    try:
        return write_html_report(journal.out_dir, report_data(journal, rows))
    except (OSError, sqlite3.Error, CoupaAsyncError) as exc:
        log.warning("report_html_not_written", reason=str(exc))
        return None


class _Recorder:
    """Where a run's results and metrics go: the journal (one write at a time), the summary,
    the live report and manifest."""

    def __init__(
        self,
        journal: Journal,
        run_id: int,
        summary: RunSummary,
        live: tuple[LiveCsvReport, LiveManifest],
    ) -> None:
        self.journal, self.run_id, self.summary, self.live = journal, run_id, summary, live
        self._writing = anyio.Lock()  # one connection: one transaction at a time

    async def record(self, result: PoResult) -> None:
        # Usually 0.1 ms, but a WAL checkpoint can take 200 ms: keep it off the loop.
        async with self._writing:
            await anyio.to_thread.run_sync(self.journal.record, result)
        self.summary.results[result.po_number] = result
        for growing in self.live:
            growing.append(result)  # a row or a few, flushed: well under a millisecond

    async def save_metrics(self, samples: list[MetricSample], events: list[RunEvent]) -> None:
        with _unless_storage_fails("metrics_not_saved"):  # the POs' records matter more
            async with self._writing:
                await anyio.to_thread.run_sync(
                    self.journal.add_metrics, self.run_id, samples, events
                )


async def _download(
    settings: Settings,
    claim: OutputClaim,
    plan: RunPlan,
    recorder: _Recorder,
    *,
    stop: asyncio.Event,
    console: Console | None,
    show: bool,
) -> None:
    downloader = Downloader(settings, claim=claim, save_metrics=recorder.save_metrics)
    downloader.add_listener(recorder.record)
    starting = _StopWhileStarting(stop)
    with raised_as_itself():
        async with anyio.create_task_group() as group:
            # Starting (browser, sign-in) can take long: a stop meanwhile ends it there.
            group.start_soon(starting.watch, group.cancel_scope)
            async with downloader:
                starting.done()
                for task, priority in plan.tasks:
                    downloader.submit(task, priority)
                await _until_done_or_stopped(downloader, len(plan.tasks), stop, console, show)
                if stop.is_set():
                    recorder.summary.interrupted = True
                    await downloader.stop(settings.timeouts.shutdown_s)
            group.cancel_scope.cancel()  # the watch
    if starting.stopped:
        recorder.summary.interrupted = True


class _StopWhileStarting:
    """A stop while the run starts ends the start there (cancelled, and so cleaned up); once
    started, a stop is the run's to handle."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._starting = True
        self.stopped = False

    async def watch(self, start: anyio.CancelScope) -> None:
        await self._stop.wait()
        if self._starting:
            self.stopped = True
            start.cancel()

    def done(self) -> None:
        self._starting = False


async def _until_done_or_stopped(
    downloader: Downloader, total: int, stop: asyncio.Event, console: Console | None, show: bool
) -> None:
    """Until every submitted PO has settled, or ``stop``; the progress panel meanwhile."""
    async with anyio.create_task_group() as group:
        if show:
            group.start_soon(show_progress, downloader.status, total, console)
        await unless_stopped(downloader.join(), stop)
        group.cancel_scope.cancel()


def print_summary(summary: RunSummary, console: Console) -> None:
    """Counts per outcome, the POs needing attention, where the report is."""
    counts = {outcome: summary.count(outcome) for outcome in Outcome}
    parts = [f"{outcome.value} {n}" for outcome, n in counts.items() if n]
    if summary.invalid:
        parts.append(f"INVALID rows {summary.invalid}")
    if summary.pending:
        parts.append(f"pending {summary.pending}")
    console.print("Done: " + (", ".join(parts) or "nothing to do"))
    attention = summary.needing_attention
    if attention:
        console.print(f"{len(attention)} PO(s) need attention:")
        lines = [f"{r.po_number}: {r.outcome.value} — {r.message}" for r in attention]
        print_some(console, lines, 20, "in the report")
    unconverted = [r for r in summary.results.values() if r.conversion_errors]
    if unconverted:
        errors = sum(len(r.conversion_errors) for r in unconverted)
        console.print(
            f"{errors} e-mail(s) could not be converted (the originals are kept; the report's "
            "CONVERSION_ERRORS column says why):"
        )
        lines = [f"{r.po_number}: {'; '.join(r.conversion_errors)}" for r in unconverted]
        print_some(console, lines, 10, "PO(s) in the report")
    if summary.interrupted:
        console.print("Interrupted: run the same command again to resume.")
    if summary.skipped:
        console.print(f"{summary.skipped} PO(s) were already settled by an earlier run: skipped.")
    if summary.reports:
        console.print(safe_text("Report: " + ", ".join(str(path) for path in summary.reports)))
