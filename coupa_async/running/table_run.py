"""One run over an input file: read it, download, report. Shared by ``run`` and ``demo``."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from coupa_async.coupa.po_steps import PoTask
from coupa_async.errors import CoupaAsyncError, ExitCode, InputFileError, StorageError
from coupa_async.htmlreport import report_data, write_html_report
from coupa_async.log import get_logger
from coupa_async.results.journal import Journal, ResumePlan
from coupa_async.results.result import Outcome, PoResult
from coupa_async.results.status_view import print_some
from coupa_async.running.downloader import Downloader
from coupa_async.running.progress import show_progress
from coupa_async.session.contact import ensure_contact
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

# The run's metrics go to the journal this often (and when the run ends).
METRICS_SAVE_INTERVAL_S = 10.0

# Aliases of ExitCode members, kept because coupa_async.audit.findings imports them from here.
EXIT_OK = ExitCode.OK
EXIT_ATTENTION = ExitCode.ATTENTION
EXIT_INTERRUPTED = ExitCode.INTERRUPTED


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
    await ensure_contact(settings)  # before --out, the journal or a report is created
    summary = RunSummary()
    summary.invalid = sum(1 for row in table.rows if row.po is None)
    # exclusive: one run at a time on --out (the lock is held until journal.close()).
    journal = await asyncio.to_thread(Journal.open, settings.out, fresh=fresh, exclusive=True)
    run_id = await asyncio.to_thread(journal.begin_run)
    live = await asyncio.to_thread(LiveCsvReport, settings.out, table.rows, table.columns)
    manifest = await asyncio.to_thread(LiveManifest, settings.out)
    finished = False
    try:
        plan = await asyncio.to_thread(plan_tasks, table, journal, retry_failed=retry_failed)
        for record in plan.resume.skip:
            summary.results[record.label] = record.as_result()
        earlier = list(summary.results.values())
        await asyncio.to_thread(live.extend, earlier)
        await asyncio.to_thread(manifest.extend, earlier)
        summary.skipped = len(plan.resume.skip)
        summary.left_alone = len(plan.resume.left_alone)
        await asyncio.to_thread(journal.add_pending, [task.po.label for task, _ in plan.tasks])
        await _download(
            settings,
            plan,
            journal,
            run_id,
            summary,
            (live, manifest),
            stop=stop,
            console=console,
            show=show,
        )
        finished = not summary.interrupted
    finally:
        labels = {row.po.label for row in table.rows if row.po is not None}
        summary.pending = len(labels - set(summary.results))
        # Each step on its own: a full disk must not hide why the run stopped, nor keep the
        # reports that can still be written from being written.
        with _unless_storage_fails("run_end_not_recorded"):
            state = "finished" if finished else "interrupted"
            await asyncio.to_thread(journal.end_run, run_id, state)
        live.close()  # before write_reports replaces report.csv (Windows cannot replace it open)
        manifest.close()
        with _unless_storage_fails("report_not_written"):
            summary.reports = await asyncio.to_thread(
                write_reports, settings.out, table.rows, summary.results, table.columns
            )
        # Every PO with a result: this run's and, from the journal, those it skipped.
        with _unless_storage_fails("manifest_not_written"):
            summary.reports.append(
                await asyncio.to_thread(write_manifest, settings.out, table.rows, summary.results)
            )
        html = await asyncio.to_thread(write_html_report_from, journal, table.rows)
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


async def _download(
    settings: Settings,
    plan: RunPlan,
    journal: Journal,
    run_id: int,
    summary: RunSummary,
    live: tuple[LiveCsvReport, LiveManifest],
    *,
    stop: asyncio.Event,
    console: Console | None,
    show: bool,
) -> None:
    if not plan.tasks:
        return

    writing = asyncio.Lock()  # one connection: one transaction at a time

    async def record(result: PoResult) -> None:
        # Usually 0.1 ms, but a WAL checkpoint can take 200 ms: keep it off the loop.
        async with writing:
            await asyncio.to_thread(journal.record, result)
        summary.results[result.po_number] = result
        for growing in live:
            growing.append(result)  # a row or a few, flushed: well under a millisecond

    async def save_metrics() -> None:
        samples, events = downloader.metrics.unsaved()
        async with writing:
            await asyncio.to_thread(journal.add_metrics, run_id, samples, events)

    async def keep_saving_metrics() -> None:
        while True:
            await asyncio.sleep(METRICS_SAVE_INTERVAL_S)
            with _unless_storage_fails("metrics_not_saved"):  # the POs' records matter more
                await save_metrics()

    # The journal holds the output folder's lock for the whole run (Journal.open(exclusive)).
    downloader = Downloader(settings, check_contact=False, lock_out=False)
    async with contextlib.AsyncExitStack() as stack:
        # Starting (browser, sign-in) can take long: a stop meanwhile ends it there.
        if not await _unless_stopped(stack.enter_async_context(downloader), stop):
            summary.interrupted = True
            return
        downloader.add_listener(record)
        for task, priority in plan.tasks:
            downloader.submit(task, priority)
        try:
            async with asyncio.TaskGroup() as group:
                waiters = [
                    group.create_task(downloader.join()),
                    group.create_task(stop.wait()),
                ]
                helpers = [group.create_task(keep_saving_metrics())]
                if show:
                    helpers.append(
                        group.create_task(
                            show_progress(downloader.status, len(plan.tasks), console)
                        )
                    )
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in [*waiters, *helpers]:
                    waiter.cancel()
            if stop.is_set():
                summary.interrupted = True
                await downloader.stop(settings.timeouts.shutdown_s)
        finally:
            downloader.metrics.take(downloader.status())  # the run as it ends
            with _unless_storage_fails("metrics_not_saved"):
                await save_metrics()


async def _unless_stopped(starting: Awaitable[object], stop: asyncio.Event) -> bool:
    """Await ``starting`` in this task; False, with it cancelled (and so cleaned up), when
    ``stop`` is set first (as ``asyncio.timeout`` does, by cancelling this task)."""
    current = asyncio.current_task()
    assert current is not None
    stopping = False

    def cancel_start(_: object) -> None:
        nonlocal stopping
        stopping = True
        current.cancel()

    watch = asyncio.ensure_future(stop.wait())
    watch.add_done_callback(cancel_start)
    try:
        await starting
    except asyncio.CancelledError:
        if stopping and current.uncancel() == 0:
            return False
        raise
    finally:
        watch.remove_done_callback(cancel_start)
        watch.cancel()
    return True


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
