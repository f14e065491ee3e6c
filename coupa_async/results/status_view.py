"""``coupa-async status --out DIR``: what earlier runs did, and what a rerun would do."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from coupa_async.errors import ExitCode
from coupa_async.results.journal import FAILED_STATES, KEPT, PENDING, Journal
from coupa_async.terminal_text import printable, safe_text


def print_some(console: Console, lines: list[str], limit: int, rest: str) -> None:
    """The first ``limit`` of ``lines``, indented and cut to 160 characters, then how many more
    and where (``rest``).

    The lines carry texts from pages and the journal (names, reasons): they are printed as
    text, markup and control characters shown, never obeyed (``coupa_async.terminal_text``).
    """
    for line in lines[:limit]:
        console.print(Text(f"  {printable(line)[:160]}"))
    if len(lines) > limit:
        console.print(Text(f"  … and {len(lines) - limit} more {rest}"))


def print_status(out: Path, console: Console) -> ExitCode:
    """Counts per outcome, the POs needing attention with reasons, and the rerun plan."""
    journal = Journal.open_read_only(out)  # also while a run writes to it
    try:
        records = journal.records()
    finally:
        journal.close()
    counts = Counter(record.state for record in records.values())
    table = Table(title=safe_text(f"POs recorded in {out}"))
    table.add_column("state")
    table.add_column("POs", justify="right")
    for state, count in sorted(counts.items()):
        table.add_row(safe_text(state), str(count))
    console.print(table)

    failed = [r for r in records.values() if r.state in FAILED_STATES]
    if failed:
        console.print(f"{len(failed)} PO(s) need attention:")
        lines = [f"{r.label}: {r.state} — {r.message}" for r in failed]
        print_some(console, lines, 50, "(see report.csv)")
    unconverted = [r for r in records.values() if r.conversion_errors]
    if unconverted:
        console.print(f"{len(unconverted)} PO(s) have e-mails that could not be converted:")
        lines = [f"{r.label}: {'; '.join(r.conversion_errors)}" for r in unconverted]
        print_some(console, lines, 20, "(see CONVERSION_ERRORS)")
    skipped = sum(1 for r in records.values() if r.state in KEPT and r.intact())
    damaged = sum(1 for r in records.values() if r.state in KEPT and not r.intact())
    pending = counts.get(PENDING, 0)
    console.print(
        f"A rerun with the same input and --out would skip {skipped} settled PO(s), retry "
        f"{len(failed)} failed or partial, process {pending} pending"
        + (f", and redo {damaged} whose folder or files changed on disk" if damaged else "")
        + ". With --retry-failed it would retry only the failed ones."
    )
    return ExitCode.OK
