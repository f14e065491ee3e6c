"""What a person sees during a run: a live panel on a terminal, plain lines elsewhere.

Both are drawn from the run's status snapshots. What takes more than one snapshot (how long the
run has gone on, bytes per second over the last seconds) is kept by a ``Tracker``.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import deque
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from coupa_async.running.run_status import PoolStatus, WorkerStatus
from coupa_async.terminal_text import safe_text

REFRESH_S = 0.25
LINE_INTERVAL_S = 10.0
BYTES_WINDOW_S = 10.0
BAR_WIDTH = 30
MB = 1024 * 1024
GB = 1024 * MB


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _age(seconds: float) -> str:
    """How long an activity has gone on: seconds, then minutes:seconds."""
    seconds = max(0, int(seconds))
    return f"{seconds} s" if seconds < 60 else _duration(seconds)


def _size(count: int) -> str:
    return f"{count / GB:.1f} GB" if count >= GB else f"{count / MB:.1f} MB"


def _speed(bytes_per_s: float | None) -> str:
    return "— MB/s" if bytes_per_s is None else f"{bytes_per_s / MB:.1f} MB/s"


def _pause(status: PoolStatus) -> str:
    # Rounded up: it counts down to "1 s", then the pause is over.
    return f"paused {math.ceil(status.paused_s)} s (Coupa asked to wait)"


def _unreachable(status: PoolStatus) -> str:
    assert status.unreachable_since is not None
    next_try = "now" if not status.next_probe_s else f"in {status.next_probe_s:.0f} s"
    return f"Coupa unreachable since {status.unreachable_since:%H:%M:%S}, next try {next_try}"


class ByteRate:
    """Bytes per second over the last ``window_s``, from the byte counts of successive
    snapshots."""

    def __init__(self, window_s: float = BYTES_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, total: int) -> None:
        """Note the run's byte count ``total`` at (monotonic) time ``at``."""
        samples = self._samples
        samples.append((at, total))
        # Keep the newest sample at least window_s old, so the rate spans the whole window.
        while len(samples) > 2 and at - samples[1][0] >= self.window_s:
            samples.popleft()

    def per_s(self) -> float | None:
        """Bytes per second over the window; None before two samples."""
        if len(self._samples) < 2:
            return None
        (first_at, first), (last_at, last) = self._samples[0], self._samples[-1]
        return (last - first) / (last_at - first_at) if last_at > first_at else None


class Tracker:
    """What a display keeps between snapshots: when it started, and bytes received lately.

    Start it when the run starts: its elapsed time counts from then.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, window_s: float = BYTES_WINDOW_S
    ) -> None:
        self._clock = clock
        self.started = clock()
        self._bytes = ByteRate(window_s)

    def observe(self, status: PoolStatus) -> tuple[float, float | None, float]:
        """Take in a snapshot: seconds elapsed, bytes per second, and the time now."""
        now = self._clock()
        self._bytes.add(now, status.bytes_received)
        return now - self.started, self._bytes.per_s(), now

    def panel(self, status: PoolStatus, total: int) -> Group:
        """The live panel of this snapshot (see ``render_status``)."""
        elapsed, speed, now = self.observe(status)
        return render_status(status, total, elapsed_s=elapsed, bytes_per_s=speed, now=now)

    def line(self, status: PoolStatus, total: int) -> str:
        """The plain progress line of this snapshot (see ``status_line``)."""
        elapsed, speed, _ = self.observe(status)
        return status_line(status, total, elapsed_s=elapsed, bytes_per_s=speed)


def _per_min(status: PoolStatus) -> float:
    """POs per minute over the last minute when known, else over the run."""
    recent = status.recent_per_min
    return recent if recent is not None else status.rate_per_s * 60


def render_status(
    status: PoolStatus,
    total: int,
    *,
    elapsed_s: float | None = None,
    bytes_per_s: float | None = None,
    now: float | None = None,
) -> Group:
    """The panel: a header line, the bar with bytes received, the outcomes, a line per worker.

    ``elapsed_s`` and ``bytes_per_s`` come from a Tracker (they take more than one snapshot);
    workers' activities are aged to ``now`` (``time.monotonic()`` when not given).
    """
    lines = Table.grid()
    lines.add_row(_header(status, total, elapsed_s))
    lines.add_row(_bar_line(status, total, bytes_per_s))
    lines.add_row(_outcomes_line(status))
    return Group(lines, _workers(status.workers, time.monotonic() if now is None else now))


def _header(status: PoolStatus, total: int, elapsed_s: float | None) -> Text:
    alive = len([w for w in status.workers if w.state != "closed"])
    head = Text.assemble(
        (f"{min(status.done, total)}/{total} POs", "bold"),
        f"  {_per_min(status):.0f}/min  ETA {_duration(status.eta_s)}",
    )
    if elapsed_s is not None:
        head.append(f"  elapsed {_duration(elapsed_s)}")
    head.append(f"  workers {alive}/{status.target_workers}")
    if status.paused_s > 0:
        head.append(f"  {_pause(status)}", style="yellow")
    if status.unreachable_since is not None:
        head.append(f"  {_unreachable(status)}", style="bold yellow")
    return head


def _bar_line(status: PoolStatus, total: int, bytes_per_s: float | None) -> Table:
    figures = Text(f"{_size(status.bytes_received)}  {_speed(bytes_per_s)}")
    memory = status.memory
    if memory is not None:
        style = "yellow" if memory.pressure else "dim"
        figures.append(f"  memory {memory.tree_mb:.0f}/{memory.budget_mb:.0f} MB", style=style)
    done = min(status.done, total)
    row = Table.grid(padding=(0, 2))
    row.add_row(ProgressBar(total=max(total, 1), completed=done, width=BAR_WIDTH), figures)
    return row


def _outcomes_line(status: PoolStatus) -> Text:
    outcomes = "  ".join(f"{k} {v}" for k, v in sorted(status.outcomes.items())) or "—"
    line = Text(outcomes, style="dim")
    if status.waiting_retry:
        line.append(f"  retries waiting {status.waiting_retry}", style="yellow")
    if emails := _emails(status):
        line.append(f"  {emails}", style="yellow" if status.emails_failed else "dim")
    return line


def _emails(status: PoolStatus) -> str:
    """E-mails converted and failed, and POs waiting for theirs; empty before the first."""
    if not (status.emails_converted or status.emails_failed or status.following):
        return ""
    text = f"e-mails converted {status.emails_converted}"
    if status.emails_failed:
        text += f", {status.emails_failed} not convertible"
    if status.following:
        text += f", {status.following} PO(s) converting"
    return text


def _workers(workers: tuple[WorkerStatus, ...], now: float) -> Table:
    """One line per worker: its PO, what it is doing and for how long."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis")
    table.add_column(no_wrap=True, justify="right")
    table.add_column(no_wrap=True, style="dim")
    for worker in workers:
        # A snapshot built by hand may have no activity clock: no age then.
        age = _age(now - worker.activity_since) if worker.activity_since > 0 else ""
        note = worker.state if worker.state == "draining" else ""
        # The PO and the activity may quote a page (a file name): shown as text, never markup.
        po, activity = safe_text(worker.current_key or ""), safe_text(worker.activity)
        table.add_row(f"worker {worker.id}", po, activity, age, note)
    return table


def status_line(
    status: PoolStatus,
    total: int,
    *,
    elapsed_s: float | None = None,
    bytes_per_s: float | None = None,
) -> str:
    """One plain line for a log or a file: counts, rate, ETA, elapsed, bytes, workers, pause."""
    busy = sum(1 for worker in status.workers if worker.current_key)
    parts = [
        f"{status.done}/{total} done",
        f"{status.queued} queued",
        f"{status.waiting_retry} retries waiting",
        f"{_per_min(status):.0f}/min",
        f"ETA {_duration(status.eta_s)}",
        f"elapsed {_duration(elapsed_s)}",
        f"{_size(status.bytes_received)} at {_speed(bytes_per_s)}",
        f"{busy}/{status.target_workers} workers busy",
    ]
    if emails := _emails(status):
        parts.append(emails)
    if status.paused_s > 0:
        parts.append(_pause(status))
    if status.unreachable_since is not None:
        parts.append(_unreachable(status))
    return "progress: " + ", ".join(parts)


async def show_progress(
    get_status: Callable[[], PoolStatus],
    total: int,
    console: Console | None = None,
    *,
    interval_s: float = LINE_INTERVAL_S,
) -> None:
    """Refresh the panel until cancelled; on a non-terminal print a line every ``interval_s``.

    Start it when the run starts: the elapsed time counts from then.
    """
    console = console or Console(file=sys.stderr)
    tracker = Tracker()
    if not console.is_terminal:
        tracker.observe(get_status())  # the bytes at the start: the first line has a rate
        while True:
            await asyncio.sleep(interval_s)
            line = tracker.line(get_status(), total)
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            live.update(tracker.panel(get_status(), total))
            await asyncio.sleep(REFRESH_S)
