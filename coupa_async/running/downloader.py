"""The library entry point: ``async with Downloader(settings) as d: async for r in d.run(pos)``.

It works inside an application that runs its own event loop and its own signal handling: it
installs no signal handlers and starts nothing outside its own task group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from playwright.async_api import Browser, BrowserContext

from coupa_async.coupa.bounded import BodyLimits
from coupa_async.coupa.numbers import InvalidPoNumber, parse_po_number
from coupa_async.coupa.po_job import PoJob, rate_limit_watch
from coupa_async.coupa.po_steps import PoTask, request_limiter
from coupa_async.coupa.reader import PageReader
from coupa_async.emails.service import EmailConverter
from coupa_async.engine import BrowserSupervisor, Engine, EngineConfig, Services
from coupa_async.engine.waiting import unless_stopped
from coupa_async.errors import OutageGiveUpError, missing_base_url
from coupa_async.log import ensure_logging, get_logger, public_text
from coupa_async.memory.heap import PageHeaps
from coupa_async.memory.policy import MemoryPolicy
from coupa_async.memory.sampler import ProcessTreeSampler
from coupa_async.memory.watch import MemoryWatch, Sampler
from coupa_async.results.layout import OutputLayout
from coupa_async.results.out_lock import OutputFolderLock
from coupa_async.results.result import Outcome, PoResult
from coupa_async.running.metrics import MetricsRecorder
from coupa_async.running.priority import parse_priority
from coupa_async.running.run_status import PoolStatus
from coupa_async.session.chromium import launch_browser, new_context, start_playwright
from coupa_async.session.contact import ensure_contact
from coupa_async.session.gate import HostGate, HostGates
from coupa_async.session.network import open_http
from coupa_async.session.outage import Outage, OutageWatch, http_probe
from coupa_async.settings import Settings
from coupa_async.signin.keeper import SessionKeeper
from coupa_async.signin.probe import session_works_over_http
from coupa_async.signin.saved_state import load_tenant_state

log = get_logger(__name__)

METRICS_INTERVAL_S = 1.0

ResultListener = Callable[[PoResult], Awaitable[None]]


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


class Downloader:
    """Downloads PO attachments with a pool of browser contexts. Use with ``async with``."""

    def __init__(
        self,
        settings: Settings,
        *,
        out: Path | None = None,
        check_contact: bool = True,
        lock_out: bool = True,
    ) -> None:
        if not settings.base_url:
            raise missing_base_url()
        self._check_contact = check_contact  # False: the caller has just checked
        # One run at a time on an output folder (False: the caller holds the lock already).
        self._lock_out = lock_out
        self.settings = settings
        self.layout = OutputLayout(out or settings.out)
        self.gates = HostGates(settings.base_url, max_pause_s=settings.limits.retry_after_max_s)
        self.gate: HostGate = self.gates.tenant
        self._lifespan: AbstractAsyncContextManager[None] | None = None
        self._engine: Engine[PoTask, PoResult] | None = None
        self._reader: PageReader | None = None
        self._outage: OutageWatch | None = None
        self._memory_watch: MemoryWatch | None = None
        self._heaps = PageHeaps()
        convert = settings.convert
        self._converter = EmailConverter(
            convert.emails,
            font_files=convert.font_files,
            processes=convert.processes,
            timeout_s=convert.timeout_s,
        )
        self._listeners: list[ResultListener] = []
        # One sample of the run a second: recent rates for status(), the report's charts.
        self.metrics = MetricsRecorder()

    # ----- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        ensure_logging()
        lifespan = self._running()
        await lifespan.__aenter__()
        self._lifespan = lifespan
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.__aexit__(exc_type, exc, tb)
        fatal = self._engine.fatal if self._engine is not None else None
        if fatal is not None and exc is None:
            raise fatal

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """First contact, browser, HTTP session, sign-in, then the engine; closed in reverse."""
        settings = self.settings
        async with start_playwright() as playwright:
            browser = BrowserSupervisor(
                lambda: launch_browser(playwright, settings),
                close_timeout_s=settings.timeouts.close_s,
            )
            # The browser starts while the tenant is asked whether it answers (nothing is
            # created on disk before it does) and whether the saved sign-in still works.
            starting = asyncio.create_task(browser.start())
            try:
                if self._check_contact:
                    await ensure_contact(settings)
                await asyncio.to_thread(self.layout.out_dir.mkdir, parents=True, exist_ok=True)
                async with contextlib.AsyncExitStack() as held:
                    if self._lock_out:
                        # Not in a thread: a cancelled start must never leave the lock taken.
                        held.enter_context(OutputFolderLock.take(self.layout.out_dir))
                    async with await open_http(settings) as http:  # proxy, CA bundle
                        state = await asyncio.to_thread(load_tenant_state, settings)
                        works = state is not None and await session_works_over_http(
                            http, settings.base_url or "", state, settings.markers
                        )
                        await starting
                        engine = await self._start_engine(browser, http, state, works)
                        async with engine.running():
                            if settings.memory.enabled:
                                self.start_memory_watch()
                            engine.spawn(self._record_metrics(), "metrics")
                            yield
            finally:
                if not starting.done():
                    starting.cancel()
                await asyncio.wait([starting])
                if not starting.cancelled():
                    starting.exception()  # told already, or the error told is another one
                await self._heaps.close()
                await self._converter.aclose()
                await browser.close()

    async def _start_engine(
        self,
        browser: BrowserSupervisor,
        http: Any,
        state: dict[str, Any] | None,
        saved_state_works: bool,
    ) -> Engine[PoTask, PoResult]:
        settings = self.settings

        async def context_in(live: Browser, storage: dict[str, Any] | None) -> BrowserContext:
            return await new_context(live, settings, storage)

        async def context_for(storage: dict[str, Any] | None) -> BrowserContext:
            # A browser that died (under a sign-in, say) is relaunched first.
            return await browser.context(lambda live: context_in(live, storage))

        async def relaunch_stuck_browser() -> None:
            await browser.recover(browser.generation)

        keeper = SessionKeeper(
            settings, context_for, self.gate, state, browser_stuck=relaunch_stuck_browser
        )
        await keeper.ensure_signed_in(saved_state_works)
        self._reader = PageReader(
            settings.markers,
            settings.mode,
            navigation_timeout_s=settings.timeouts.navigation_s,
            settle_s=settings.timeouts.settle_s,
            file_hosts=tuple(settings.network.file_hosts),
            gate=self.gate,
            page_limits=page_limits(settings),
        )
        engine: Engine[PoTask, PoResult] | None = None

        def give_up(message: str) -> None:
            assert engine is not None
            engine.fail(
                OutageGiveUpError(
                    f"{message}, longer than network.outage_give_up_s allows. Nothing is lost: "
                    "the POs not done yet are pending. When the network (VPN) is back, run the "
                    "same command again to resume."
                )
            )

        def spawn(work: Awaitable[None], name: str) -> None:
            assert engine is not None
            engine.spawn(work, name)

        self._outage = OutageWatch(
            self.gate,
            http_probe(http, settings.base_url or ""),
            spawn,
            give_up,
            give_up_s=settings.network.outage_give_up_s,
        )
        job = PoJob(
            settings,
            reader=self._reader,
            http=http,
            layout=self.layout,
            gate=self.gate,
            outage=self._outage,
            requests=request_limiter(settings),
            converter=self._converter,
            gates=self.gates,
        )
        services = Services(
            browser=browser,
            new_context=context_in,
            session=keeper,
            gate=self.gate,
            outage=self._outage,
            on_context=rate_limit_watch(self.gates),
        )
        engine = Engine(engine_config(settings), job, services, self._deliver)
        self._engine = engine
        return engine

    async def _deliver(self, result: PoResult) -> None:
        # Messages end up in the journal and the report, which people send on: no secrets.
        result.message = public_text(result.message)
        for listener in list(self._listeners):
            await listener(result)

    async def _record_metrics(self) -> None:
        while True:
            self.metrics.take(self.status())
            await asyncio.sleep(METRICS_INTERVAL_S)

    def start_memory_watch(
        self, sampler: Sampler | None = None, policy: MemoryPolicy | None = None
    ) -> MemoryWatch:
        """Run the memory watch beside the workers (once); it ends when the run does."""
        if self._memory_watch is not None:
            return self._memory_watch
        engine, memory = self._require_engine(), self.settings.memory
        self._memory_watch = MemoryWatch(
            engine,
            sampler or ProcessTreeSampler(),
            policy or MemoryPolicy(memory, self.settings.min_workers, engine.max_workers),
            memory.interval_s,
            self._worker_memory,
        )
        engine.spawn(self._memory_watch.run(), "memory-watch")
        return self._memory_watch

    async def _worker_memory(self) -> dict[int, int]:
        """JS heap of each active worker's open page (CDP), for choosing which worker to drain."""
        slots = self._require_engine().active_workers
        return await self._heaps.measure(
            {slot.id: page for slot in slots if (page := slot.open_page) is not None}
        )

    def _require_engine(self) -> Engine[PoTask, PoResult]:
        if self._engine is None:
            raise RuntimeError("use the Downloader inside `async with`")
        return self._engine

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
        task = po if isinstance(po, PoTask) else PoTask(parse_po_number(po), supplier)
        return self._require_engine().submit(task, parse_priority(priority))

    async def join(self) -> None:
        """Wait until every submitted PO has settled, or the run stopped."""
        await self._require_engine().join()

    async def run(
        self, pos: Iterable[str | int | PoTask], priority: int | str = "NORMAL"
    ) -> AsyncIterator[PoResult]:
        """Process ``pos`` and yield each result as it settles (invalid numbers first)."""
        engine = self._require_engine()
        results: asyncio.Queue[PoResult] = asyncio.Queue()
        wanted: set[str] = set()

        async def collect(result: PoResult) -> None:
            if result.po_number in wanted:
                await results.put(result)

        self._listeners.append(collect)
        try:
            for po in pos:
                try:
                    task = po if isinstance(po, PoTask) else PoTask(parse_po_number(po))
                except InvalidPoNumber as exc:
                    yield invalid_result(po, exc.reason)
                    continue
                if task.po.label in wanted:
                    continue
                wanted.add(task.po.label)
                engine.submit(task, parse_priority(priority))
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
        engine = self._require_engine()
        outage, watch, reader = self._outage, self._memory_watch, self._reader
        return PoolStatus.of(
            engine.status(),
            memory=watch.figures if watch is not None else None,
            discovery=reader.state if reader is not None else "render",
            unreachable_since=outage.unreachable_since if outage else None,
            next_probe_s=outage.next_probe_in_s if outage else None,
            outages=len(outage.outages) if outage else 0,
            bytes_received=engine.job.bytes_received if isinstance(engine.job, PoJob) else 0,
            recent_per_min=self.metrics.recent_rate_per_min(),
            emails_converted=self._converter.converted,
            emails_failed=self._converter.failed,
        )

    @property
    def pending(self) -> list[PoTask]:
        """The POs left unsettled when the run stopped (empty while it runs)."""
        return list(self._engine.pending_on_stop) if self._engine is not None else []

    @property
    def engine(self) -> Engine[PoTask, PoResult]:
        """The run's engine (workers, queue, contexts), for scaling and inspection."""
        return self._require_engine()

    @property
    def outages(self) -> list[Outage]:
        """Each time Coupa could not be reached during the run: since when, until when, probes."""
        return list(self._outage.outages) if self._outage is not None else []

    def scale_to(self, workers: int) -> int:
        """Grow or shrink the pool; returns the new target."""
        return self._require_engine().scale_to(workers)

    async def stop(self, grace_s: float | None = None) -> list[PoTask]:
        """Stop taking work, let in-flight POs finish within ``grace_s``; returns the pending."""
        engine = self._require_engine()
        await engine.close(grace_s)
        return list(engine.pending_on_stop)


def page_limits(settings: Settings) -> BodyLimits:
    """The bounds of a page read or rendered (limits.page_max_mb, compression_ratio_max)."""
    limits = settings.limits
    return BodyLimits(limits.page_max_bytes, limits.compression_ratio_max)


def engine_config(settings: Settings) -> EngineConfig:
    """The engine's part of the run's settings."""
    return EngineConfig(
        workers=settings.workers,
        min_workers=settings.min_workers,
        max_workers=max(1, settings.min_workers, settings.effective_max_workers),
        max_attempts=settings.max_attempts,
        backoff_base_s=settings.backoff_base_s,
        backoff_cap_s=settings.backoff_cap_s,
        task_timeout_s=settings.timeouts.task_s,
        shutdown_grace_s=settings.timeouts.shutdown_s,
        close_timeout_s=settings.timeouts.close_s,
        recycle_after_tasks=settings.recycle_after_tasks,
        sign_ins_per_item=settings.limits.sign_ins_per_po,
    )
