"""The worker pool: one browser, N long-lived contexts pulling POs from one priority queue.

Every coroutine the pool starts lives in its task group. A worker that fails puts its task back;
browser faults are never charged to the PO. Results reach listeners in the order they settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page, Playwright, Response
from playwright.async_api import Error as PlaywrightError

from coupa_async.auth import SessionKeeper
from coupa_async.browser import launch_browser, new_context
from coupa_async.coupa.job import JobEnv, PoTask, process_po
from coupa_async.coupa.pages import retry_after_seconds
from coupa_async.coupa.reader import PageReader, browser_fault
from coupa_async.errors import (
    BrowserFaultError,
    BrowserLaunchError,
    CoupaAsyncError,
    HostUnreachableError,
    OutageGiveUpError,
    RateLimitedError,
    RunStoppedError,
    SessionExpiredError,
    TransientError,
)
from coupa_async.gate import HostGate
from coupa_async.layout import OutputLayout
from coupa_async.log import error_summary, get_logger, public_text
from coupa_async.memory.heap import PageHeaps
from coupa_async.memory.policy import MemoryPolicy
from coupa_async.memory.sampler import ProcessTreeSampler
from coupa_async.memory.watch import MemoryWatch, Sampler
from coupa_async.outage import OUTAGE_STATUSES, OutageWatch
from coupa_async.result import Outcome, PoResult
from coupa_async.settings import Settings

log = get_logger("pool")

ResultListener = Callable[[PoResult], Awaitable[None]]
MAX_RELAUNCHES = 3
RATE_WINDOW_S = 60.0
PROBE_TIMEOUT_S = 10.0


class WorkerState(StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    CLOSED = "closed"


@dataclass(order=True)
class QueueItem:
    """An entry of the priority queue: lower priority first, first in first out within one."""

    priority: int
    sequence: int
    task: PoTask = field(compare=False)
    attempt: int = field(default=1, compare=False)
    first_priority: int = field(default=0, compare=False)


@dataclass
class Worker:
    """One browser context and its page."""

    id: int
    state: WorkerState = WorkerState.STARTING
    current: str | None = None
    tasks_done: int = 0
    tasks_in_context: int = 0
    since: float = field(default_factory=time.time)
    started: float = field(default_factory=time.time)
    retiring: bool = False
    context: BrowserContext | None = None
    page: Page | None = None
    browser_generation: int = -1
    cookie_generation: int = -1
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def set_state(self, state: WorkerState, current: str | None = None) -> None:
        self.state, self.current, self.since = state, current, time.time()


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    id: int
    state: str
    current_po: str | None
    tasks_done: int
    since: float


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """A snapshot of the pool, cheap enough to take many times a second."""

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
    extra: dict[str, Any] = field(default_factory=dict)
    # How pages are read now: "render", "fast", or "checking" (auto, not yet trusting fast).
    discovery: str = "render"
    # Set while Coupa cannot be reached: since when, and seconds to the next check.
    unreachable_since: datetime | None = None
    next_probe_s: float | None = None
    outages: int = 0


class BrowserHolder:
    """The one browser; relaunched (single flight, with backoff) when it dies."""

    def __init__(self, playwright: Playwright, settings: Settings) -> None:
        self._playwright = playwright
        self._settings = settings
        self.browser: Browser | None = None
        self.generation = 0
        self.relaunches = 0
        self._relaunching: asyncio.Future[None] | None = None

    async def start(self) -> Browser:
        self.browser = await launch_browser(self._playwright, self._settings)
        return self.browser

    @property
    def connected(self) -> bool:
        return self.browser is not None and self.browser.is_connected()

    async def recover(self, seen_generation: int) -> None:
        """Relaunch the browser unless someone already did since ``seen_generation``."""
        if seen_generation != self.generation and self.connected:
            return
        if self._relaunching is not None:
            await asyncio.shield(self._relaunching)
            return
        self._relaunching = asyncio.get_running_loop().create_future()
        try:
            await self._relaunch()
            self._relaunching.set_result(None)
        except BaseException as exc:
            self._relaunching.set_exception(exc)
            self._relaunching.exception()
            raise
        finally:
            self._relaunching = None

    async def _relaunch(self) -> None:
        old = self.browser
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), self._settings.timeouts.close_s)
        last_error: Exception | None = None
        for attempt in range(MAX_RELAUNCHES):
            if attempt:
                await asyncio.sleep(2 ** (attempt - 1))
            try:
                self.browser = await launch_browser(self._playwright, self._settings)
            except BrowserLaunchError as exc:
                last_error = exc
                log.warning("browser_relaunch_failed", attempt=attempt + 1, error=str(exc))
                continue
            self.generation += 1
            self.relaunches += 1
            log.warning("browser_relaunched", generation=self.generation)
            return
        raise BrowserLaunchError(
            f"The browser died and could not be started again after {MAX_RELAUNCHES} tries "
            f"({last_error}). Check memory and the browser installation, then rerun: the run "
            "resumes where it stopped."
        )

    async def close(self) -> None:
        if self.browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.browser.close(), self._settings.timeouts.close_s)


class Pool:
    """N workers over one priority queue. Use inside ``async with`` or call start/close."""

    def __init__(
        self,
        settings: Settings,
        browser: BrowserHolder,
        keeper: SessionKeeper,
        gate: HostGate,
        http: aiohttp.ClientSession,
        layout: OutputLayout,
    ) -> None:
        self.settings = settings
        self.browser = browser
        self.keeper = keeper
        self.gate = gate
        self.http = http
        self.layout = layout
        self.reader = PageReader(
            settings.markers,
            settings.mode,
            navigation_timeout_s=settings.timeouts.navigation_s,
            settle_s=settings.timeouts.settle_s,
            gate=gate,
        )
        self.outage = OutageWatch(
            gate,
            self._probe_tenant,
            self._spawn,
            self._give_up,
            give_up_s=settings.network.outage_give_up_s,
        )
        self.queue: asyncio.PriorityQueue[QueueItem] = asyncio.PriorityQueue()
        self.workers: dict[int, Worker] = {}
        self.target = 0
        self.listeners: list[ResultListener] = []
        self.fatal: BaseException | None = None
        self.stopping = False
        self.pending_on_stop: list[PoTask] = []
        self.status_extra: dict[str, Any] = {}
        self._sequence = itertools.count()
        self._worker_ids = itertools.count(1)
        self._active: dict[str, QueueItem] = {}  # queued, waiting to retry, or in flight
        self._in_flight: dict[str, QueueItem] = {}
        self._delayed = 0
        self._outcomes: Counter[str] = Counter()
        self._done_times: deque[float] = deque()
        self._done = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.contexts_opened = 0
        self._tg: asyncio.TaskGroup | None = None
        self._worker_tasks: set[asyncio.Task[Any]] = set()
        self._timer_tasks: set[asyncio.Task[Any]] = set()
        self.memory_watch: MemoryWatch | None = None
        self._heaps = PageHeaps()

    # ----- lifecycle -------------------------------------------------------------------------

    async def start(self, workers: int) -> None:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self.scale_to(workers)
        if self.settings.memory.enabled:
            self.start_memory_watch()

    def start_memory_watch(
        self, sampler: Sampler | None = None, policy: MemoryPolicy | None = None
    ) -> MemoryWatch:
        """Run the memory watch in the pool's task group (once); it ends when the pool closes."""
        if self.memory_watch is not None:
            return self.memory_watch
        memory = self.settings.memory
        self.memory_watch = MemoryWatch(
            self,
            sampler or ProcessTreeSampler(),
            policy or MemoryPolicy(memory, self.settings.min_workers, self.max_workers),
            memory.interval_s,
            self.worker_memory,
        )
        self._spawn(self.memory_watch.run(), "memory-watch")
        return self.memory_watch

    async def worker_memory(self) -> dict[int, int]:
        """JS heap of each active worker's page (CDP), for choosing which worker to drain."""
        pages = {w.id: w.page for w in self.active_workers if w.page is not None}
        return await self._heaps.measure(pages)

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking tasks, let in-flight ones finish within ``grace_s``, then cancel the rest.

        Tasks not finished are left pending (``pending_on_stop``); contexts, then the browser
        close with deadlines.
        """
        if self._tg is None:
            return
        self.stopping = True
        for worker in self.workers.values():
            worker.wake.set()
        grace = self.settings.timeouts.shutdown_s if grace_s is None else grace_s
        if self.outage.down:
            grace = 0  # the POs in flight wait for a host that does not answer: back to pending
        for timer in list(self._timer_tasks):
            timer.cancel()
        workers = [task for task in self._worker_tasks if not task.done()]
        if workers and grace > 0:
            await asyncio.wait(workers, timeout=grace)
        for task in workers:
            task.cancel()
        tg, self._tg = self._tg, None
        try:
            await tg.__aexit__(None, None, None)
        finally:
            self.pending_on_stop.extend(item.task for item in self._active.values())
            self._active.clear()
            self._idle.set()

    async def _guarded(self, coro: Awaitable[Any], name: str) -> None:
        """Run one of the pool's tasks; its failure ends the run here, never in the task group.

        A task group cancels the task that entered it when a child fails, and that task belongs
        to whoever embeds the pool: no exception but cancellation leaves this wrapper.
        """
        try:
            await coro
        except Exception as exc:
            log.exception("pool_task_failed", task=name)
            self._fail(
                exc
                if isinstance(exc, CoupaAsyncError)
                else RunStoppedError(
                    f"An internal step of the run failed ({name}: {error_summary(exc)}). "
                    "Nothing recorded so far is lost; run the same command again to resume."
                )
            )

    async def abort(self) -> None:
        """Cancel everything now (second Ctrl+C)."""
        await self.close(grace_s=0)

    def _spawn(self, coro: Awaitable[Any], name: str, *, worker: bool = False) -> None:
        assert self._tg is not None
        task = self._tg.create_task(self._guarded(coro, name), name=name)
        tasks = self._worker_tasks if worker else self._timer_tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # ----- work in -----------------------------------------------------------------------------

    def submit(self, task: PoTask, priority: int = 2) -> bool:
        """Queue a PO; False when the same PO is already queued or in flight."""
        if self.stopping:
            raise RuntimeError("the pool is stopping; no new work is taken")
        label = task.po.label
        if label in self._active:
            return False
        item = QueueItem(priority, next(self._sequence), task, 1, priority)
        self._active[label] = item
        self._idle.clear()
        self.queue.put_nowait(item)
        return True

    async def join(self) -> None:
        """Wait until every submitted PO has settled (or the pool stopped)."""
        while self._active and not self.stopping and self.fatal is None:
            self._idle.clear()
            await self._idle.wait()

    def _settled(self, label: str) -> None:
        self._active.pop(label, None)
        self._in_flight.pop(label, None)
        if not self._active:
            self._idle.set()

    # ----- scaling -----------------------------------------------------------------------------

    @property
    def max_workers(self) -> int:
        return max(1, self.settings.min_workers, self.settings.effective_max_workers)

    @property
    def active_workers(self) -> list[Worker]:
        return [w for w in self.workers.values() if not w.retiring]

    def scale_to(self, n: int, prefer: list[int] | None = None) -> int:
        """Grow or shrink to ``n`` workers within [min_workers, max_workers]; safe at any time.

        Shrinking drains workers (each finishes its current task), preferring ``prefer``, then
        idle ones, then the oldest. Returns the new target.
        """
        low = max(1, self.settings.min_workers)
        high = self.max_workers
        self.target = max(low, min(high, n))
        if self._tg is None or self.stopping:
            return self.target
        active = self.active_workers
        for _ in range(self.target - len(active)):
            worker = Worker(next(self._worker_ids))
            self.workers[worker.id] = worker
            self._spawn(self._run_worker(worker), f"worker-{worker.id}", worker=True)
        excess = len(active) - self.target
        if excess > 0:
            order = {wid: i for i, wid in enumerate(prefer or [])}
            ranked = sorted(
                active,
                key=lambda w: (order.get(w.id, len(order)), w.state != WorkerState.IDLE, w.started),
            )
            for worker in ranked[:excess]:
                worker.retiring = True
                if worker.state is not WorkerState.STARTING:
                    worker.set_state(WorkerState.DRAINING, worker.current)
                worker.wake.set()
                log.info("worker_draining", worker=worker.id, target=self.target)
        return self.target

    # ----- status ------------------------------------------------------------------------------

    def status(self) -> PoolStatus:
        now = time.monotonic()
        while self._done_times and now - self._done_times[0] > RATE_WINDOW_S:
            self._done_times.popleft()
        window = min(RATE_WINDOW_S, now - self._done_times[0]) if self._done_times else 0.0
        rate = len(self._done_times) / window if window > 0.5 else 0.0
        remaining = len(self._active)
        return PoolStatus(
            workers=tuple(
                WorkerStatus(w.id, w.state.value, w.current, w.tasks_done, w.since)
                for w in self.workers.values()
            ),
            target_workers=self.target,
            queued=self.queue.qsize(),
            waiting_retry=self._delayed,
            in_flight=len(self._in_flight),
            done=self._done,
            outcomes=dict(self._outcomes),
            rate_per_s=rate,
            eta_s=(remaining / rate) if rate > 0 else None,
            paused_s=self.gate.remaining_pause_s,
            session_renewals=self.keeper.renewals,
            browser_relaunches=self.browser.relaunches,
            extra=dict(self.status_extra),
            discovery=self.reader.state,
            unreachable_since=self.outage.unreachable_since,
            next_probe_s=self.outage.next_probe_in_s,
            outages=len(self.outage.outages),
        )

    # ----- workers -----------------------------------------------------------------------------

    async def _run_worker(self, worker: Worker) -> None:
        try:
            while not (worker.retiring or self.stopping or self.fatal):
                if not await self._ready(worker):
                    continue
                item = await self._next_item(worker)
                if item is None:
                    break
                await self._run_item(worker, item)
        except asyncio.CancelledError:
            raise
        finally:
            worker.set_state(WorkerState.CLOSED)
            await self._close_context(worker)
            self.workers.pop(worker.id, None)
            log.debug("worker_closed", worker=worker.id)

    async def _ready(self, worker: Worker) -> bool:
        """Make sure the worker has a live context and page with the current cookies."""
        try:
            if not self.browser.connected:
                await self.browser.recover(worker.browser_generation)
            if worker.context is None or worker.browser_generation != self.browser.generation:
                await self._open_context(worker)
            elif worker.tasks_in_context >= self.settings.recycle_after_tasks:
                await self._recycle_context(worker)
            if worker.cookie_generation != self.keeper.generation:
                assert worker.context is not None
                await worker.context.clear_cookies()
                await worker.context.add_cookies((self.keeper.state or {}).get("cookies", []))
                worker.cookie_generation = self.keeper.generation
            if worker.page is None or worker.page.is_closed():
                assert worker.context is not None
                worker.page = await worker.context.new_page()
            return True
        except BrowserLaunchError as exc:
            self._fail(exc)
            return False
        except PlaywrightError as exc:
            log.warning("worker_setup_failed", worker=worker.id, error=str(exc).splitlines()[0])
            await self._close_context(worker)
            await asyncio.sleep(0.2)
            return False

    async def _open_context(self, worker: Worker) -> None:
        await self._close_context(worker)
        assert self.browser.browser is not None
        generation = self.browser.generation
        worker.context = await new_context(self.browser.browser, self.settings, self.keeper.state)
        self._watch(worker.context)
        worker.browser_generation = generation
        worker.cookie_generation = self.keeper.generation
        worker.tasks_in_context = 0
        worker.page = await worker.context.new_page()
        if worker.state is WorkerState.STARTING:
            worker.set_state(WorkerState.IDLE)

    async def _recycle_context(self, worker: Worker) -> None:
        """Replace a context after K tasks to cap its memory, carrying its cookies over."""
        assert worker.context is not None
        state = await worker.context.storage_state()
        await self._close_context(worker)
        assert self.browser.browser is not None
        worker.context = await new_context(self.browser.browser, self.settings, dict(state))
        self._watch(worker.context)
        worker.browser_generation = self.browser.generation
        worker.tasks_in_context = 0
        worker.page = await worker.context.new_page()
        log.debug("context_recycled", worker=worker.id)

    def _watch(self, context: BrowserContext) -> None:
        """Close the host gate on the first 429 the browser sees, whatever asked for it."""
        self.contexts_opened += 1

        def on_response(response: Response) -> None:
            if response.status == 429:
                self.gate.pause_for(retry_after_seconds(response.headers.get("retry-after")))

        context.on("response", on_response)

    async def _close_context(self, worker: Worker) -> None:
        context, worker.context, worker.page = worker.context, None, None
        if context is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.close(), self.settings.timeouts.close_s)

    async def _next_item(self, worker: Worker) -> QueueItem | None:
        """The next task, or None when the worker is to stop. The host gate is respected."""
        while True:
            if worker.retiring or self.stopping or self.fatal:
                return None
            if not self.gate.is_open:
                await self._wait_or_wake(worker, self.gate.wait())
                continue
            worker.set_state(WorkerState.IDLE)
            getter = asyncio.ensure_future(self.queue.get())
            woken = asyncio.ensure_future(worker.wake.wait())
            try:
                await asyncio.wait({getter, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
                if not getter.done():
                    getter.cancel()
            worker.wake.clear()
            if getter.done() and not getter.cancelled():
                item = getter.result()
                if worker.retiring or self.stopping or self.fatal:
                    self.queue.put_nowait(item)
                    return None
                return item

    async def _wait_or_wake(self, worker: Worker, awaitable: Awaitable[Any]) -> None:
        waiter = asyncio.ensure_future(awaitable)
        woken = asyncio.ensure_future(worker.wake.wait())
        try:
            await asyncio.wait({waiter, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            woken.cancel()
        worker.wake.clear()

    async def _run_item(self, worker: Worker, item: QueueItem) -> None:
        label = item.task.po.label
        self._in_flight[label] = item
        worker.set_state(WorkerState.DRAINING if worker.retiring else WorkerState.BUSY, label)
        assert worker.context is not None and worker.page is not None
        env = JobEnv(
            self.settings,
            worker.context,
            worker.page,
            self.http,
            self.layout,
            self.reader,
            self.gate,
            self.outage,
        )
        final_attempt = item.attempt >= self.settings.max_attempts
        cookie_generation = worker.cookie_generation  # the sign-in this worker's cookies carry
        try:
            async with asyncio.timeout(self.settings.timeouts.task_s):
                result = await process_po(env, item.task, final_attempt=final_attempt)
        except SessionExpiredError as exc:
            log.info("session_expired", po=label, worker=worker.id, detail=str(exc))
            self._put_back(item)
            try:
                await self.keeper.renew(cookie_generation)
            except CoupaAsyncError as sign_in_error:
                # Signing in cannot work while Coupa is down: wait for it instead of stopping.
                if not await self.outage.confirm(str(sign_in_error)):
                    self._fail(sign_in_error)
        except RateLimitedError as exc:
            log.warning("rate_limited", po=label, retry_after_s=exc.retry_after_s)
            self.gate.pause_for(exc.retry_after_s)
            self._put_back(item)
        except (BrowserFaultError, PlaywrightError) as exc:
            await self._after_browser_fault(worker, item, exc)
        except HostUnreachableError as exc:
            if await self.outage.confirm(str(exc)):
                log.debug("po_put_back", po=label, reason="Coupa unreachable")
                self._put_back(item)  # not the PO's fault: no attempt charged
            else:
                await self._retry_or_fail(item, str(exc))
        except (TransientError, TimeoutError) as exc:
            reason = str(exc) or f"no result within {self.settings.timeouts.task_s:.0f} s"
            if isinstance(exc, TimeoutError):
                worker.page = None  # a page stuck mid-navigation is not reused
            await self._retry_or_fail(item, reason)
        except asyncio.CancelledError:
            self._in_flight.pop(label, None)
            raise
        except Exception as exc:  # a defect: charge the PO so it cannot loop for ever
            log.exception("po_job_error", po=label)
            await self._retry_or_fail(item, f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            result.attempts = item.attempt
            await self._announce(result)
        finally:
            worker.tasks_done += 1
            worker.tasks_in_context += 1
            self._in_flight.pop(label, None)
            worker.set_state(WorkerState.DRAINING if worker.retiring else WorkerState.IDLE)

    async def _after_browser_fault(
        self, worker: Worker, item: QueueItem, exc: BaseException
    ) -> None:
        label = item.task.po.label
        if isinstance(exc, PlaywrightError) and not browser_fault(exc):
            await self._retry_or_fail(item, str(exc).splitlines()[0])
            return
        log.warning("browser_fault", po=label, worker=worker.id, error=str(exc).splitlines()[0])
        self._put_back(item)
        page, worker.page = worker.page, None  # _ready opens a new one, or a new context
        if page is not None and self.browser.connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(page.close(), self.settings.timeouts.close_s)
        if not self.browser.connected:
            worker.context = None

    def _put_back(self, item: QueueItem) -> None:
        """Back into the queue, not charged: the PO was not at fault."""
        label = item.task.po.label
        self._in_flight.pop(label, None)
        if self.stopping or self.fatal:
            return  # stays in _active: reported pending on close
        again = QueueItem(item.priority, next(self._sequence), item.task, item.attempt)
        again.first_priority = item.first_priority
        self._active[label] = again
        self.queue.put_nowait(again)

    async def _retry_or_fail(self, item: QueueItem, reason: str) -> None:
        label = item.task.po.label
        self._in_flight.pop(label, None)
        if item.attempt >= self.settings.max_attempts:
            result = PoResult(
                po_number=label,
                outcome=Outcome.FAILED,
                supplier=item.task.supplier_hint or "",
                message=f"failed after {item.attempt} attempts: {reason}",
                po_url=item.task.po.order_url(self.settings.base_url or ""),
                attempts=item.attempt,
                finished_at=datetime.now(UTC),
            )
            await self._announce(result)
            return
        delay = self._backoff(item.attempt)
        log.info(
            "retry_later", po=label, attempt=item.attempt, delay_s=round(delay, 2), reason=reason
        )
        # Same priority as before: once its backoff has run, a retry goes ahead of the POs not
        # yet started (see _requeue_after), so a run's tail is not its retries one after another.
        again = QueueItem(item.priority, 0, item.task, item.attempt + 1, item.first_priority)
        self._active[label] = again
        self._delayed += 1
        self._spawn(self._requeue_after(again, delay), f"retry-{label}")

    def _backoff(self, attempt: int) -> float:
        ceiling = min(
            self.settings.backoff_cap_s, self.settings.backoff_base_s * 2 ** (attempt - 1)
        )
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _requeue_after(self, item: QueueItem, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            self._delayed -= 1
        if self.stopping or self.fatal:
            return
        item.sequence = -next(self._sequence)
        self.queue.put_nowait(item)

    async def _announce(self, result: PoResult) -> None:
        # Messages end up in the journal and the report, which people send on: no secrets.
        result.message = public_text(result.message)
        for listener in self.listeners:
            try:
                await listener(result)
            except Exception as exc:
                # A result that cannot be recorded (the journal's disk is full, say) ends the
                # run cleanly; the PO stays pending for the next run.
                log.exception("result_not_recorded", po=result.po_number)
                self._in_flight.pop(result.po_number, None)
                self._fail(
                    RunStoppedError(
                        f"The result of {result.po_number} could not be recorded "
                        f"({type(exc).__name__}: {exc}). Nothing recorded so far is lost; "
                        "fix the cause and run the same command again to resume."
                    )
                )
                return
        self._outcomes[result.outcome.value] += 1
        self._done += 1
        self._done_times.append(time.monotonic())
        self._settled(result.po_number)

    async def _probe_tenant(self) -> str | None:
        """One light request to the tenant, past the gate: None when it answers, else why not."""
        url = self.settings.base_url or ""
        try:
            async with (
                asyncio.timeout(PROBE_TIMEOUT_S),
                self.http.get(url, allow_redirects=False) as response,
            ):
                if response.status in OUTAGE_STATUSES:
                    return f"HTTP {response.status}"
                return None
        except TimeoutError:
            return f"no answer within {PROBE_TIMEOUT_S:.0f} s"
        except (aiohttp.ClientError, OSError) as exc:
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def _give_up(self, message: str) -> None:
        self._fail(
            OutageGiveUpError(
                f"{message}, longer than network.outage_give_up_s allows. Nothing is lost: the "
                "POs not done yet are pending. When the network (VPN) is back, run the same "
                "command again to resume."
            )
        )

    def _fail(self, exc: BaseException) -> None:
        """A fault that ends the run: stop taking tasks; the rest stays pending."""
        if self.fatal is None:
            self.fatal = exc
            log.error("run_stopping", reason=str(exc))
        for worker in self.workers.values():
            worker.wake.set()
        self._idle.set()
