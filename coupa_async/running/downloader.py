"""The library entry point: ``async with Downloader(settings) as d: async for r in d.run(pos)``.

It works inside an application that runs its own event loop and its own signal handling: it
installs no signal handlers and starts nothing outside its own task groups. Everything a run
holds (browser, HTTP session, sign-in, engine...) is one ``LiveRun``, opened on ``async with``
(see ``running/live_run.py``); a Downloader runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Self

from coupa_async.coupa.numbers import InvalidPoNumber, parse_po_number
from coupa_async.coupa.po_steps import PoTask
from coupa_async.engine.waiting import unless_stopped
from coupa_async.errors import missing_base_url
from coupa_async.log import ensure_logging, get_logger
from coupa_async.memory.policy import MemoryPolicy
from coupa_async.memory.watch import MemoryWatch, Sampler
from coupa_async.results.layout import OutputLayout
from coupa_async.results.result import Outcome, PoResult
from coupa_async.running.live_run import LiveRun, OutputClaim, PoEngine, ResultListener, open_run
from coupa_async.running.metrics import MetricsRecorder, MetricsSaver
from coupa_async.running.priority import parse_priority
from coupa_async.running.run_status import PoolStatus
from coupa_async.session.gate import HostGate, HostGates
from coupa_async.session.outage import Outage
from coupa_async.settings import Settings

log = get_logger(__name__)

__all__ = ["Downloader", "ResultListener", "as_task", "invalid_result"]


def as_task(po: str | int | PoTask, supplier: str | None = None) -> PoTask:
    """The task of one PO (number or task); InvalidPoNumber for a value that is not one."""
    return po if isinstance(po, PoTask) else PoTask(parse_po_number(po), supplier)


def invalid_result(raw: object, reason: str) -> PoResult:
    """The result of an input row that is not a PO number: never sent to the site."""
    now = datetime.now(UTC)
    return PoResult(
        po_number=str(raw if raw is not None else ""),
        outcome=Outcome.INVALID,
        message=reason,
        started_at=now,
        finished_at=now,
        attempts=0,
    )


class _State(Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class Downloader:
    """Downloads PO attachments with browser contexts side by side; ``async with``, once."""

    def __init__(
        self,
        settings: Settings,
        *,
        out: Path | None = None,
        claim: OutputClaim | None = None,
        save_metrics: MetricsSaver | None = None,
    ) -> None:
        """``claim``: the output folder as the caller claimed it already (``claim_output``:
        first contact, lock), else the run claims it; ``save_metrics``: where the run's metric
        samples go every few seconds and at its end (``run_table`` gives the journal)."""
        if not settings.base_url:
            raise missing_base_url()
        self.settings = settings
        self.layout = OutputLayout(claim.out_dir if claim is not None else out or settings.out)
        self.gates = HostGates(settings.base_url, max_pause_s=settings.limits.retry_after_max_s)
        self.gate: HostGate = self.gates.tenant
        # One sample of the run a second: recent rates for status(), the report's charts.
        self.metrics = MetricsRecorder(save=save_metrics)
        self._listeners: list[ResultListener] = []
        self._state = _State.UNOPENED
        # Opened on ``async with`` (nothing is started before): the run, once it is open.
        self._opening = open_run(
            settings, self.layout, self.gates, self._deliver, self.metrics, claim
        )
        self._run: LiveRun | None = None

    # ----- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("A Downloader runs once: create a new one for another run.")
        self._state = _State.OPEN
        ensure_logging()
        try:
            self._run = await self._opening.__aenter__()
        except BaseException:
            self._state = _State.CLOSED
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = _State.CLOSED
        await self._opening.__aexit__(exc_type, exc, tb)
        fatal = self._run.engine.fatal if self._run is not None else None
        if fatal is not None and exc is None:
            raise fatal

    def _live(self) -> LiveRun:
        """The run, while it is open; else a sentence saying why there is none."""
        if self._state is _State.CLOSED:
            raise RuntimeError("This Downloader's run has ended: create a new one for another.")
        return self._opened()

    def _opened(self) -> LiveRun:
        """The run, open or ended (for readings, and for a stop or join that finds it over)."""
        if self._run is None:
            raise RuntimeError("Use the Downloader inside `async with`.")
        return self._run

    async def _deliver(self, result: PoResult) -> None:
        for listener in list(self._listeners):
            await listener(result)

    # ----- work ------------------------------------------------------------------------------

    def add_listener(self, listener: ResultListener) -> None:
        """Call ``await listener(result)`` for every settled PO, before ``run`` yields it."""
        self._listeners.append(listener)

    def submit(
        self, po: str | int | PoTask, priority: int | str = "NORMAL", supplier: str | None = None
    ) -> bool:
        """Queue one PO (number or task). False when it is already queued or in flight.

        Raises InvalidPoNumber for a value that is not a PO number.
        """
        return self._live().engine.submit(as_task(po, supplier), parse_priority(priority))

    async def join(self) -> None:
        """Wait until every submitted PO has settled, or the run stopped."""
        await self._opened().engine.join()

    async def run(
        self, pos: Iterable[str | int | PoTask], priority: int | str = "NORMAL"
    ) -> AsyncIterator[PoResult]:
        """Process ``pos`` and yield each result as it settles (invalid numbers first)."""
        engine = self._live().engine
        results: asyncio.Queue[PoResult] = asyncio.Queue()
        wanted: set[str] = set()

        async def collect(result: PoResult) -> None:
            if result.po_number in wanted:
                await results.put(result)

        self._listeners.append(collect)
        try:
            for po in pos:
                try:
                    task = as_task(po)
                except InvalidPoNumber as exc:
                    yield invalid_result(po, exc.reason)
                    continue
                if task.po.label not in wanted:
                    wanted.add(task.po.label)
                    self.submit(task, priority)
            for _ in range(len(wanted)):
                result = await unless_stopped(results.get(), engine.stopped)
                if result is None:
                    # Stopped: POs in flight settle within the grace period or stay pending;
                    # each one that settled is still yielded, so none is lost from sight.
                    await engine.close()
                    while not results.empty():
                        yield results.get_nowait()
                    return
                yield result
        finally:
            with contextlib.suppress(ValueError):
                self._listeners.remove(collect)

    def status(self) -> PoolStatus:
        """A snapshot: workers, queue, outcomes, rate, ETA, memory, reachability, bytes."""
        return self._opened().status()

    @property
    def engine(self) -> PoEngine:
        """The run's engine (workers, queue, contexts), for scaling and inspection."""
        return self._opened().engine

    @property
    def outages(self) -> list[Outage]:
        """Each time Coupa could not be reached during the run: since when, until when, probes."""
        return list(self._run.outage.outages) if self._run is not None else []

    @property
    def pending(self) -> list[PoTask]:
        """The POs left unsettled when the run stopped (empty while it runs)."""
        return list(self._run.engine.pending_on_stop) if self._run is not None else []

    def start_memory_watch(
        self, sampler: Sampler | None = None, policy: MemoryPolicy | None = None
    ) -> MemoryWatch:
        """Run the memory watch beside the workers (once); it ends when the run does."""
        return self._live().start_memory_watch(sampler, policy)

    def scale_to(self, workers: int) -> int:
        """Grow or shrink the engine; returns the new target."""
        return self._live().engine.scale_to(workers)

    async def stop(self, grace_s: float | None = None) -> list[PoTask]:
        """Stop taking work, let in-flight POs finish within ``grace_s``; returns the pending."""
        engine = self._opened().engine
        await engine.close(grace_s)
        return list(engine.pending_on_stop)
