"""What a person sees during a run: a live panel on a terminal, plain lines elsewhere."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from coupa_async.pool import PoolStatus


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_status(status: PoolStatus, total: int) -> Group:
    """A panel: bar, counts per outcome, rate and ETA, one line per worker."""
    done = min(status.done, total)
    head = Text.assemble(
        (f"{done}/{total} POs", "bold"),
        f"  {status.rate_per_s * 60:.0f}/min  ETA {_duration(status.eta_s)}",
        f"  workers {len([w for w in status.workers if w.state != 'closed'])}"
        f"/{status.target_workers}",
    )
    memory = status.memory
    if memory is not None:
        style = "yellow" if memory.pressure else "dim"
        head.append(f"  memory {memory.tree_mb:.0f}/{memory.budget_mb:.0f} MB", style=style)
    if status.paused_s > 0:
        head.append(f"  paused {status.paused_s:.0f} s (Coupa asked to wait)", style="yellow")
    if status.unreachable_since is not None:
        next_try = "now" if not status.next_probe_s else f"in {status.next_probe_s:.0f} s"
        head.append(
            f"  Coupa unreachable since {status.unreachable_since:%H:%M:%S}, next try {next_try}",
            style="bold yellow",
        )
    outcomes = "  ".join(f"{k} {v}" for k, v in sorted(status.outcomes.items())) or "—"
    table = Table.grid(padding=(0, 2))
    for worker in status.workers:
        table.add_row(f"worker {worker.id}", worker.state, worker.current_po or "")
    lines = Table.grid()
    lines.add_row(head)
    lines.add_row(ProgressBar(total=max(total, 1), completed=done, width=60))
    lines.add_row(Text(outcomes, style="dim"))
    return Group(lines, table)


async def show_progress(
    get_status: Callable[[], PoolStatus], total: int, console: Console | None = None
) -> None:
    """Refresh the panel until cancelled; on a non-terminal print a line every 10 s."""
    console = console or Console(file=sys.stderr)
    if not console.is_terminal:
        while True:
            await asyncio.sleep(10)
            status = get_status()
            console.print(
                f"progress: {status.done}/{total} done, {status.queued} queued, "
                f"{status.rate_per_s * 60:.0f}/min, ETA {_duration(status.eta_s)}"
            )
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            live.update(render_status(get_status(), total))
            await asyncio.sleep(0.25)
