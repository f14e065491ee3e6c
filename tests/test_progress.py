"""The live panel shows what a person needs: progress, rate, ETA, workers, memory, pauses."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console

from coupa_async.memory.watch import MemoryFigures
from coupa_async.pool import PoolStatus, WorkerStatus
from coupa_async.progress import render_status


def render(**changes: object) -> str:
    values: dict[str, object] = {
        "workers": (
            WorkerStatus(1, "busy", "PO15262984", 3, 0.0),
            WorkerStatus(2, "idle", None, 2, 0.0),
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
    console = Console(width=120, record=True)
    console.print(render_status(PoolStatus(**values), 20))  # type: ignore[arg-type]
    return console.export_text()


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
    assert "paused 7 s" in text


def test_unknown_eta_is_a_dash() -> None:
    assert "ETA —" in render(rate_per_s=0.0, eta_s=None)


def test_panel_says_since_when_coupa_is_unreachable_and_when_it_tries_again() -> None:
    since = datetime(2026, 11, 29, 14, 3, 27).astimezone()
    text = render(unreachable_since=since, next_probe_s=7.6)
    assert "Coupa unreachable since 14:03:27, next try in 8 s" in text
    assert "unreachable" not in render()
