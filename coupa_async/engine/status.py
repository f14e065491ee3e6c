"""Snapshots of the engine for progress displays and callers: cheap, immutable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One worker: its state, its item, and what it is doing now.

    ``since`` is when the state last changed (Unix time); ``activity_since`` is when the
    activity text last changed (``time.monotonic()``).
    """

    id: int
    state: str
    current_key: str | None
    tasks_done: int
    since: float
    activity: str = "idle"
    activity_since: float = 0.0


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """Workers, queue, outcomes, rate and ETA at one moment."""

    workers: tuple[WorkerStatus, ...]
    target_workers: int
    queued: int
    waiting_retry: int
    in_flight: int
    done: int
    outcomes: dict[str, int]
    rate_per_s: float
    eta_s: float | None
    paused_s: float
    session_renewals: int
    browser_relaunches: int
    following: int = 0  # items off their worker, in their follow-up (converting e-mails)
