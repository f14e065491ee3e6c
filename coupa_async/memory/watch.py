"""The memory watch: sample, decide, scale the engine; once a second, until cancelled.

It runs inside the engine's task group. Each tick samples in a thread (the reads of ``/proc`` take
a few milliseconds), asks the policy, and calls ``engine.scale_to``. Every step is logged with its
reason and figures, and the latest figures are in ``figures`` (typed). A failing
sample is logged and skipped: the watch never takes the engine down.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from coupa_async.log import get_logger
from coupa_async.memory.policy import Decision, MemoryPolicy, mb
from coupa_async.memory.sampler import MemorySample

log = get_logger(__name__)

WorkerMemory = Callable[[], Awaitable[dict[int, int]]]


class Sampler(Protocol):
    def sample(self) -> MemorySample: ...


class ScalableEngine(Protocol):
    """What the watch needs of the engine."""

    target: int

    @property
    def workers(self) -> dict[int, Any]: ...

    @property
    def active_workers(self) -> list[Any]: ...

    def has_work(self) -> bool: ...

    def scale_to(self, n: int, prefer: list[int] | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    """The watch's latest reading, as the progress panel and the logs show it."""

    budget_mb: int
    tree_mb: int
    pss: bool
    available_mb: int
    psi: float | None
    pressure: bool
    target: int
    actual: int  # open contexts, draining ones included


@dataclass(frozen=True, slots=True)
class Step:
    """A change of target the watch made (kept for status and benchmarks)."""

    at: float  # monotonic time of the sample that decided it
    decided_at: float  # when scale_to was called (after the per-worker reading, if any)
    pressure_since: float | None  # first sample of this pressure episode (shrinks only)
    target: int
    drain: int | None
    reason: str


class MemoryWatch:
    """Sampler + policy + the engine's ``scale_to``. ``run()`` loops until cancelled."""

    def __init__(
        self,
        engine: ScalableEngine,
        sampler: Sampler,
        policy: MemoryPolicy,
        interval_s: float,
        worker_memory: WorkerMemory | None = None,
    ) -> None:
        self.engine = engine
        self.sampler = sampler
        self.policy = policy
        self.interval_s = interval_s
        self.worker_memory = worker_memory
        self.last: MemorySample | None = None
        self.decision: Decision | None = None
        self.steps: deque[Step] = deque(maxlen=256)
        self.ticks = 0
        self.loop_cpu_s = 0.0  # CPU of the watch's own code in the event loop
        self.figures: MemoryFigures | None = None
        self._warned_minimum = False
        self._failures = 0

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except Exception as exc:  # a bad reading must not end the run
                self._failures += 1
                (log.warning if self._failures == 1 else log.debug)(
                    "memory_sample_failed", error=f"{type(exc).__name__}: {exc}"
                )
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.interval_s - elapsed))

    async def tick(self) -> Decision:
        """One sample, one decision, at most one step."""
        sample = await asyncio.to_thread(self.sampler.sample)
        if self.worker_memory is not None and self.policy.pressure_reasons(sample):
            per_worker = await self.worker_memory()  # only when a worker may have to go
            sample = replace(sample, per_worker_bytes={**sample.per_worker_bytes, **per_worker})
        cpu = time.thread_time()
        active = sorted(self.engine.active_workers, key=lambda w: w.started)
        decision = self.policy.decide(
            sample,
            now=sample.at,
            active_workers=[w.id for w in active],
            target=self.engine.target,
            work_waiting=self.engine.has_work(),
        )
        self.last, self.decision = sample, decision
        self.ticks += 1
        if decision.target != self.engine.target:
            before = self.engine.target
            prefer = [decision.drain] if decision.drain is not None else None
            self.engine.scale_to(decision.target, prefer=prefer)
            self._log_step(sample, decision, before)
        elif decision.pressure and decision.target <= self.policy.min_workers:
            if not self._warned_minimum:
                self._warned_minimum = True
                log.warning("memory_pressure_at_minimum", reason=decision.reason, **self._logged())
        elif not decision.pressure and self._warned_minimum:
            self._warned_minimum = False
            log.info("memory_pressure_eased", reason=decision.reason, **self._logged())
        self.figures = self._figures()
        self.loop_cpu_s += time.thread_time() - cpu
        return decision

    def _log_step(self, sample: MemorySample, decision: Decision, before: int) -> None:
        shrink = decision.target < before
        self.steps.append(
            Step(
                at=sample.at,
                decided_at=time.monotonic(),
                pressure_since=self.policy.pressure_since if shrink else None,
                target=self.engine.target,
                drain=decision.drain,
                reason=decision.reason,
            )
        )
        log.info(
            "memory_shrink" if shrink else "memory_grow",
            reason=decision.reason,
            workers_before=before,
            drain=decision.drain,
            drain_mb=mb(sample.per_worker_bytes[decision.drain])
            if decision.drain in sample.per_worker_bytes
            else None,
            **self._logged(),
        )

    def _figures(self) -> MemoryFigures | None:
        sample, decision = self.last, self.decision
        if sample is None:
            return None
        return MemoryFigures(
            budget_mb=mb(self.policy.budget_for(sample)),
            tree_mb=mb(sample.tree_bytes),
            pss=sample.uses_pss,
            available_mb=mb(sample.headroom_bytes),
            psi=sample.psi_some_avg10,
            pressure=bool(decision and decision.pressure),
            target=self.engine.target,
            actual=len(self.engine.workers),
        )

    def _logged(self) -> dict[str, Any]:
        figures = self._figures()
        return asdict(figures) if figures is not None else {}
