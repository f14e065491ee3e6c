"""Run metrics: a small time series of the run (one sample a second) and the events that mark it.

The recorder is the one component that samples and saves: ``keep_sampling`` takes the run's
status once a second beside the workers, and ``finish`` takes the last sample once the run has
stopped. Events are read off the differences between two samples (the engine scaled, the session
was renewed, the browser relaunched, the host paused for a 429, Coupa became unreachable), so
nothing in the engine needs to call it. It keeps the last hour in memory
(``recent_rate_per_min`` for the progress panel) and hands new samples, every few seconds and at
the end, to the saver its owner gives (``run_table`` gives the journal's, see
``Journal.add_metrics``, which keeps a long run bounded by thinning old samples).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import anyio

from coupa_async.running.run_status import PoolStatus

EventKind = Literal["scaled", "session_renewed", "browser_relaunched", "host_paused", "unreachable"]

# In memory: the last hour at one sample a second.
RECENT_SAMPLES = 3600
SAMPLE_INTERVAL_S = 1.0
# Samples go to the saver this often (and when the run ends).
SAVE_EVERY_SAMPLES = 10


@dataclass(frozen=True, slots=True)
class MetricSample:
    """The run at one moment (``at``: Unix time, seconds)."""

    at: float
    settled: int
    bytes: int
    workers: int  # workers with a PO in hand
    target_workers: int
    pss_mb: int | None  # memory of the process tree, when the memory watch measures it
    budget_mb: int | None
    queued: int
    waiting_retry: int
    paused: bool


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Something that happened to the run as a whole, for the markers on the report's charts."""

    at: float
    kind: EventKind
    detail: str


def sample_of(status: PoolStatus, at: float) -> MetricSample:
    """The figures of one status snapshot."""
    memory = status.memory
    busy = sum(1 for worker in status.workers if worker.current_key)
    return MetricSample(
        at=at,
        settled=status.done,
        bytes=status.bytes_received,
        workers=busy,
        target_workers=status.target_workers,
        pss_mb=memory.tree_mb if memory is not None else None,
        budget_mb=memory.budget_mb if memory is not None else None,
        queued=status.queued,
        waiting_retry=status.waiting_retry,
        paused=status.paused_s > 0,
    )


def events_between(before: PoolStatus | None, after: PoolStatus, at: float) -> list[RunEvent]:
    """What changed for the run as a whole from ``before`` to ``after``."""
    if before is None:
        return []
    events = []
    if after.target_workers != before.target_workers:
        events.append(
            RunEvent(at, "scaled", f"{before.target_workers} → {after.target_workers} workers")
        )
    if after.session_renewals > before.session_renewals:
        events.append(RunEvent(at, "session_renewed", "signed in again"))
    if after.browser_relaunches > before.browser_relaunches:
        events.append(RunEvent(at, "browser_relaunched", "the browser was started again"))
    if after.paused_s > 0 and before.paused_s <= 0:
        events.append(RunEvent(at, "host_paused", f"Coupa asked to wait {after.paused_s:.0f} s"))
    if after.unreachable_since is not None and before.unreachable_since is None:
        events.append(RunEvent(at, "unreachable", "Coupa could not be reached"))
    return events


MetricsSaver = Callable[[list[MetricSample], list[RunEvent]], Awaitable[None]]


class MetricsRecorder:
    """Samples a run's status; keeps the last hour; hands what was not yet saved to ``save``."""

    def __init__(
        self, clock: Callable[[], float] = time.time, *, save: MetricsSaver | None = None
    ) -> None:
        self._clock = clock
        self._save = save
        self.recent: deque[MetricSample] = deque(maxlen=RECENT_SAMPLES)
        # Bounded too: a library caller that never saves them must not grow without end.
        self._unsaved_samples: deque[MetricSample] = deque(maxlen=RECENT_SAMPLES)
        self._unsaved_events: deque[RunEvent] = deque(maxlen=RECENT_SAMPLES)
        self._last: PoolStatus | None = None

    def take(self, status: PoolStatus) -> MetricSample:
        """Record one sample (and the events since the previous one)."""
        at = self._clock()
        sample = sample_of(status, at)
        self.recent.append(sample)
        self._unsaved_samples.append(sample)
        self._unsaved_events.extend(events_between(self._last, status, at))
        self._last = status
        return sample

    async def keep_sampling(
        self, status: Callable[[], PoolStatus], interval_s: float = SAMPLE_INTERVAL_S
    ) -> None:
        """A sample every ``interval_s`` until cancelled; every few, the new ones are saved."""
        taken = 0
        while True:
            self.take(status())
            taken += 1
            if taken % SAVE_EVERY_SAMPLES == 0:
                await self.save()
            await anyio.sleep(interval_s)

    async def finish(self, status: Callable[[], PoolStatus]) -> None:
        """The run as it ends: a last sample, and what is unsaved to the saver."""
        self.take(status())
        with anyio.CancelScope(shield=True):
            await self.save()

    async def save(self) -> None:
        """Hand the samples and events not yet saved to the saver (if there is one)."""
        if self._save is not None:
            await self._save(*self.unsaved())

    def unsaved(self) -> tuple[list[MetricSample], list[RunEvent]]:
        """The samples and events taken since the last call (for the journal)."""
        samples, events = list(self._unsaved_samples), list(self._unsaved_events)
        self._unsaved_samples.clear()
        self._unsaved_events.clear()
        return samples, events

    def recent_rate_per_min(self, window_s: float = 60.0) -> float | None:
        """POs settled per minute over the last ``window_s`` seconds (None before two samples)."""
        ends = self._window(window_s)
        if ends is None:
            return None
        first, last = ends
        return (last.settled - first.settled) * 60.0 / (last.at - first.at)

    def recent_bytes_per_s(self, window_s: float = 10.0) -> float | None:
        """Bytes received per second over the last ``window_s`` seconds."""
        ends = self._window(window_s)
        if ends is None:
            return None
        first, last = ends
        return (last.bytes - first.bytes) / (last.at - first.at)

    def _window(self, window_s: float) -> tuple[MetricSample, MetricSample] | None:
        """The oldest and newest samples within ``window_s`` of the newest, if they differ."""
        if len(self.recent) < 2:
            return None
        last = first = self.recent[-1]
        for sample in reversed(self.recent):
            if last.at - sample.at > window_s:
                break
            first = sample
        return (first, last) if last.at > first.at else None
