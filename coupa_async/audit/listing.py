"""What a person reads after an audit: each disagreement, what was not checked, a summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from coupa_async.audit.findings import AuditReport, shown
from coupa_async.terminal_text import safe_text


def print_audit(report: AuditReport, console: Console) -> None:
    """The listing, then one summary line and one verdict line."""
    out = report.out_dir
    if report.disagreements:
        table = Table(title=f"{len(report.disagreements)} disagreement(s) with the journal")
        for name in ("PO", "check", "the journal says", "found", "where"):
            table.add_column(name, overflow="fold")
        for item in report.disagreements:
            table.add_row(
                safe_text(item.po or "-"),
                safe_text(item.check.value),
                safe_text(item.journal),
                safe_text(item.found),
                safe_text(_where(item.where, out)),
            )
        console.print(table)
    if report.unchecked:
        console.print(
            Text(
                f"{len({u.po for u in report.unchecked})} PO(s) could not be checked online "
                "(no proof for them):"
            )
        )
        for unchecked in report.unchecked:
            console.print(safe_text(f"  {unchecked.po}: {unchecked.reason[:300]}"), soft_wrap=True)
    # Not wrapped by rich: a line to copy or grep whole; the terminal wraps it for the eye.
    console.print(Text(summary(report)), soft_wrap=True)
    console.print(Text(verdict(report)), style="bold", soft_wrap=True)


def summary(report: AuditReport) -> str:
    """One line of counts and timings."""
    mb = report.bytes_hashed / 1_000_000
    reports = ", ".join(p.name for p in report.reports_read) or "no report"
    line = (
        f"Offline: {report.settled} settled PO(s) checked, {report.files_hashed} file(s) hashed "
        f"({mb:,.1f} MB), {reports} compared, in {_seconds(report.offline_s)}"
    )
    if report.pending:
        line += f" ({report.pending} PO(s) still pending: nothing to check)"
    if report.online:
        line += (
            f". Online: {report.online_checked} of {report.online_planned} PO(s) read again "
            f"(every NO_ATTACHMENTS and a sample, seed {report.sample_seed}) "
            f"in {_seconds(report.online_s)}"
        )
    elif report.api:
        line += (
            f". API: {report.api_checked} of {report.api_planned} PO(s) compared with Coupa's "
            f"API, the files of {report.api_sampled} sampled PO(s) downloaded and hashed (seed "
            f"{report.sample_seed}; {report.api_files_hashed} file(s) in all), "
            f"{report.api_requests} request(s) in {_seconds(report.api_s)}"
        )
    else:
        line += ". Online: not checked (--offline)"
    return (
        line + f". {len(report.disagreements)} disagreement(s), "
        f"{len(report.unchecked)} could not be checked."
    )


def verdict(report: AuditReport) -> str:
    if report.interrupted:
        return "Stopped before the end: the audit is incomplete."
    if report.disagreements:
        return "The output does NOT match the journal: see above."
    if report.unchecked:
        return "No disagreement found, but the proof is incomplete: some POs could not be checked."
    return "The output agrees with the journal."


def _where(path: Path | None, out: Path) -> str:
    return shown(path, out) if path is not None else ""


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
