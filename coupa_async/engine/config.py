"""The engine's settings: worker counts, attempts, backoff and deadlines; nothing about Coupa."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What the engine needs to know, and no more (the run's Settings stay outside)."""

    workers: int = 4
    min_workers: int = 1
    max_workers: int = 4
    max_attempts: int = 3
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    task_timeout_s: float = 300.0
    shutdown_grace_s: float = 30.0
    close_timeout_s: float = 10.0
    recycle_after_tasks: int = 100
    # Follow-ups waiting or running off the workers, per worker; past it a worker does its
    # item's follow-up itself (work that lags far behind would be lost to a stop).
    follow_ups_per_worker: int = 2
    # Login answers one item may meet that count as an expired session (a new sign-in); past
    # them a login answer is the item's own failure, charged like others.
    sign_ins_per_item: int = 1

    def clamp_workers(self, n: int) -> int:
        """``n`` within [min_workers, max_workers] (at least one)."""
        high = max(1, self.min_workers, self.max_workers)
        return max(max(1, self.min_workers), min(high, n))
