"""The live panel shows what a person needs: progress, rate, ETA, workers, memory, pauses."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from coupa_async import Downloader
from coupa_async.memory.watch import MemoryFigures
from coupa_async.running.progress import MB, Tracker, render_status, show_progress, status_line
from coupa_async.running.run_status import PoolStatus, WorkerStatus
from coupa_async.sim import Faults, SimConfig, Simulator

from .runkit import make_settings

NOW = 1000.0  # the tests' monotonic clock


def status(**changes: object) -> PoolStatus:
    values: dict[str, object] = {
        "workers": (
            WorkerStatus(
                1, "busy", "PO15262984", 3, 0.0, "downloading files: 2 of 5 done", NOW - 12
            ),
            WorkerStatus(2, "idle", None, 2, 0.0, "idle", NOW - 3),
        ),
        "target_workers": 2,
        "queued": 5,
        "waiting_retry": 0,
        "in_flight": 1,
        "done": 5,
        "outcomes": {"COMPLETED": 4, "FAILED": 1},
        "rate_per_s": 2.0,
        "eta_s": 95.0,
        "paused_s": 0.0,
        "session_renewals": 0,
        "browser_relaunches": 0,
    }
    values.update(changes)
    return PoolStatus(**values)  # type: ignore[arg-type]


def text_of(renderable: object) -> str:
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def render(**changes: object) -> str:
    return text_of(render_status(status(**changes), 20, now=NOW))


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_panel_shows_progress_rate_eta_outcomes_and_workers() -> None:
    text = render()
    assert "5/20 POs" in text and "120/min" in text and "ETA 1:35" in text
    assert "COMPLETED 4" in text and "FAILED 1" in text
    assert "worker 1" in text and "PO15262984" in text and "workers 2/2" in text


def test_panel_shows_memory_and_a_rate_limit_pause() -> None:
    memory = MemoryFigures(
        budget_mb=4096,
        tree_mb=812,
        pss=True,
        available_mb=9000,
        psi=None,
        pressure=True,
        target=2,
        actual=2,
    )
    text = render(memory=memory, paused_s=7.2)
    assert "memory 812/4096 MB" in text
    assert "paused 8 s (Coupa asked to wait)" in text


def test_panel_counts_emails_converted_not_convertible_and_pos_waiting_for_theirs() -> None:
    assert "e-mails" not in render()  # nothing before the first e-mail
    text = render(emails_converted=7, emails_failed=1, following=2)
    assert "e-mails converted 7, 1 not convertible, 2 PO(s) converting" in text
    line = status_line(status(emails_converted=3), 20)
    assert "e-mails converted 3" in line and "not convertible" not in line


def test_unknown_eta_is_a_dash() -> None:
    assert "ETA —" in render(rate_per_s=0.0, eta_s=None)


def test_panel_says_since_when_coupa_is_unreachable_and_when_it_tries_again() -> None:
    since = datetime(2026, 11, 29, 14, 3, 27).astimezone()
    text = render(unreachable_since=since, next_probe_s=7.6)
    assert "Coupa unreachable since 14:03:27, next try in 8 s" in text
    assert "unreachable" not in render()


def test_panel_shows_elapsed_time_bytes_and_mb_per_s_from_two_snapshots() -> None:
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    first = text_of(tracker.panel(status(bytes_received=0), 20))
    assert "elapsed 0:00" in first and "0.0 MB" in first and "— MB/s" in first
    clock.now += 65
    second = text_of(tracker.panel(status(bytes_received=130 * MB), 20))
    assert "elapsed 1:05" in second
    assert "130.0 MB  2.0 MB/s" in second


def test_mb_per_s_covers_the_last_ten_seconds_only() -> None:
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    received = 0
    for step in range(30):  # 1 MB/s for 20 s, then 5 MB/s for 10 s, a snapshot a second
        tracker.observe(status(bytes_received=received))
        clock.now += 1
        received += MB if step < 20 else 5 * MB
    assert "5.0 MB/s" in text_of(tracker.panel(status(bytes_received=received), 20))


def test_the_pause_counts_down_from_snapshot_to_snapshot() -> None:
    assert "paused 8 s" in render(paused_s=7.2)
    assert "paused 4 s" in render(paused_s=3.1)
    assert "paused 1 s" in render(paused_s=0.2)
    assert "paused" not in render(paused_s=0.0)


def test_panel_shows_retries_waiting() -> None:
    assert "retries waiting 3" in render(waiting_retry=3)
    assert "retries waiting" not in render()


def test_each_worker_line_says_what_it_does_and_for_how_long() -> None:
    workers = (
        WorkerStatus(1, "busy", "PO1001", 1, 0.0, "downloading files: 2 of 5 done", NOW - 12),
        WorkerStatus(2, "busy", "PO1002", 1, 0.0, "waiting for the requisition to settle", NOW - 3),
        WorkerStatus(3, "draining", "PO1003", 1, 0.0, "rendering the PO page", NOW - 75),
        WorkerStatus(4, "idle", None, 1, 0.0, "idle", NOW - 40.6),
    )
    lines = render(workers=workers).splitlines()

    def line_of(worker: int) -> str:
        return next(line for line in lines if line.startswith(f"worker {worker} "))

    assert "PO1001" in line_of(1) and "downloading files: 2 of 5 done" in line_of(1)
    assert line_of(1).split()[-2:] == ["12", "s"]
    assert "waiting for the requisition to settle" in line_of(2) and "3 s" in line_of(2)
    assert "rendering the PO page" in line_of(3) and "1:15" in line_of(3)
    assert "draining" in line_of(3)
    assert "idle" in line_of(4) and "40 s" in line_of(4) and "PO" not in line_of(4)


def test_the_panel_fits_80_columns_in_the_usual_case() -> None:
    console = Console(record=True, width=80, file=io.StringIO())
    console.print(
        render_status(status(done=1234, bytes_received=5 * MB), 5000, elapsed_s=2712, now=NOW)
    )
    lines = console.export_text().splitlines()
    assert lines[0].startswith("1234/5000 POs") and "workers 2/2" in lines[0]  # not wrapped
    assert len(lines) == 5  # header, bar, outcomes, two workers


async def test_a_non_terminal_gets_a_plain_line_per_interval() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80)
    assert not console.is_terminal
    snapshots = iter(
        status(bytes_received=n * MB, waiting_retry=2, paused_s=4.5 if n else 0.0)
        for n in range(1000)
    )
    shown = asyncio.create_task(
        show_progress(lambda: next(snapshots), 20, console, interval_s=0.05)
    )
    try:
        async with asyncio.timeout(10):
            while out.getvalue().count("\n") < 2:
                await asyncio.sleep(0.01)
    finally:
        shown.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await shown
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2
    for line in lines:  # one line each, never wrapped at the console's width
        assert line.startswith("progress: 5/20 done, 5 queued, 2 retries waiting, 120/min")
        assert "elapsed 0:0" in line and " MB at " in line and "MB/s" in line
        assert "1/2 workers busy" in line and "paused 5 s (Coupa asked to wait)" in line


# ----- end to end: real Chromium, the simulator ------------------------------------------------

# Links, click-only files (browser downloads), a big file, files found on the requisition, and a
# "file" that is an HTML page (refused: not a file, not counted).
RECIPES = (
    "many_files",
    "click_nav",
    "click_anchor",
    "big_file",
    "pr_files_no_po_files",
    "partial_html_instead",
)


async def watch_activities(downloader: Downloader, seen: set[str]) -> None:
    while True:
        seen.update(worker.activity for worker in downloader.status().workers)
        await asyncio.sleep(0.002)


@pytest.mark.browser
async def test_a_run_shows_workers_downloading_and_counts_the_bytes_of_its_files(
    tmp_path: Path,
) -> None:
    """``bytes_received`` counts the bodies of the files received (over HTTP, per chunk, and
    by the browser, by saved size); not pages, not refused HTML. Every PO here settles at its
    first attempt, so nothing is received twice: it is the sum of the saved files' sizes."""
    config = SimConfig(seed=5, pos=len(RECIPES), recipes=RECIPES, faults=Faults(latency_ms=20))
    async with Simulator(config) as sim:
        settings = make_settings(
            tmp_path,
            base_url=sim.base_url,
            username=sim.username,
            password=sim.password,
            out=str(tmp_path / "out"),
            storage_state=str(tmp_path / "state.json"),
            workers=2,
        )
        seen: set[str] = set()
        async with Downloader(settings) as downloader:
            assert downloader.status().bytes_received == 0
            watcher = asyncio.create_task(watch_activities(downloader, seen))
            try:
                results = [result async for result in downloader.run(numbers(sim))]
            finally:
                watcher.cancel()
            received = downloader.status().bytes_received
    assert len(results) == len(RECIPES)
    assert all(result.attempts == 1 for result in results)
    files = [saved for result in results for saved in result.files]
    assert any(saved.size > 10 * MB for saved in files)  # the big one, received in chunks
    assert all(saved.path.stat().st_size == saved.size for saved in files)
    assert received == sum(saved.size for saved in files)
    assert any(activity.startswith("downloading files: ") for activity in seen), seen
    assert "reading the PO page" in seen or "rendering the PO page" in seen


def numbers(sim: Simulator) -> Sequence[str]:
    return [f"PO{po.number}" for po in sim.catalog.pos]
