"""What a run reports about its workers: the engine's figures plus the run's own."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from coupa_async.engine.status import EngineStatus, WorkerStatus
from coupa_async.memory.watch import MemoryFigures

__all__ = ["PoolStatus", "WorkerStatus"]


@dataclass(frozen=True, slots=True)
class PoolStatus(EngineStatus):
    """A snapshot of the run, cheap enough to take many times a second."""

    memory: MemoryFigures | None = None
    # How pages are read now: "render", "fast", or "checking" (auto, not yet trusting fast).
    discovery: str = "render"
    # Set while Coupa cannot be reached: since when, and seconds to the next check.
    unreachable_since: datetime | None = None
    next_probe_s: float | None = None
    outages: int = 0
    # Bytes of files received so far in this run (for MB/s and the run metrics).
    bytes_received: int = 0
    # POs settled per minute over the last minute (None until two metric samples exist).
    recent_per_min: float | None = None
    # Saved e-mails converted (PDF, attachments) and those whose conversion failed, this run;
    # ``following`` (the engine's) counts POs waiting for their conversions.
    emails_converted: int = 0
    emails_failed: int = 0

    @classmethod
    def of(cls, engine: EngineStatus, **run: object) -> PoolStatus:
        """The engine's snapshot with the run's own figures added."""
        base = {f.name: getattr(engine, f.name) for f in fields(EngineStatus)}
        return cls(**base, **run)  # type: ignore[arg-type]
