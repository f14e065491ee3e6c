"""One run over an input file: read it, download, report. Shared by ``run`` and ``demo``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from coupa_async.coupa.job import PoTask
from coupa_async.downloader import Downloader
from coupa_async.errors import InputFileError
from coupa_async.progress import show_progress
from coupa_async.result import Outcome, PoResult
from coupa_async.settings import Settings
from coupa_async.tabular import InputTable, read_input, write_report_csv

EXIT_OK = 0
EXIT_ATTENTION = 3
EXIT_INTERRUPTED = 130


@dataclass
class RunSummary:
    """What a run did, for the summary and the exit code."""

    results: dict[str, PoResult] = field(default_factory=dict)
    invalid: int = 0
    pending: int = 0
    interrupted: bool = False
    report: Path | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results.values() if result.outcome is outcome)

    @property
    def needing_attention(self) -> list[PoResult]:
        return [r for r in self.results.values() if not r.outcome.is_success]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.needing_attention or self.invalid or self.pending:
            return EXIT_ATTENTION
        return EXIT_OK


def load_input(path: Path) -> InputTable:
    table = read_input(path)
    if not any(row.po for row in table.rows):
        raise InputFileError(
            f"No row of {path} holds a valid PO number (e.g. PO15262984). Check the column."
        )
    return table


async def run_table(
    settings: Settings,
    table: InputTable,
    *,
    stop: asyncio.Event,
    console: Console | None = None,
    show: bool = True,
) -> RunSummary:
    """Download every valid PO of ``table``; stop early (leaving the rest pending) on ``stop``."""
    summary = RunSummary()
    summary.invalid = sum(1 for row in table.rows if row.po is None)
    tasks: dict[str, PoTask] = {}
    for row in table.rows:
        if row.po is not None and row.po.label not in tasks:
            tasks[row.po.label] = PoTask(row.po, row.supplier)
    report = settings.out / "report.csv"

    async def collect(result: PoResult) -> None:
        summary.results[result.po_number] = result

    try:
        async with Downloader(settings) as downloader:
            downloader.add_listener(collect)
            for task in tasks.values():
                downloader.submit(task)
            async with asyncio.TaskGroup() as group:
                waiters = [
                    group.create_task(downloader.pool.join()),
                    group.create_task(stop.wait()),
                ]
                progress = (
                    group.create_task(show_progress(downloader.status, len(tasks), console))
                    if show
                    else None
                )
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in [*waiters, progress]:
                    if waiter is not None:
                        waiter.cancel()
            if stop.is_set():
                summary.interrupted = True
                await downloader.stop(settings.timeouts.shutdown_s)
    finally:
        summary.pending = sum(1 for label in tasks if label not in summary.results)
        await asyncio.to_thread(
            write_report_csv, report, table.rows, summary.results, table.columns
        )
        summary.report = report
    return summary


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
        for result in attention[:20]:
            console.print(f"  {result.po_number}: {result.outcome.value} — {result.message[:160]}")
        if len(attention) > 20:
            console.print(f"  … and {len(attention) - 20} more in the report")
    if summary.interrupted:
        console.print("Interrupted: run the same command again to resume.")
    if summary.report:
        console.print(f"Report: {summary.report}")
