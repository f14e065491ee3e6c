"""The engine: workers over one work queue, in two anyio task groups, scaled to a target.

``async with engine.running():`` starts one task that holds two task groups: the items' group
(workers, and follow-ups of items that left their worker) and, around it, the background group
(what ``spawn`` is given: the memory watch, outage timers). Closing is a property of that
structure: stop taking items, let the items' group end by itself within the grace period (a
deadline on its cancel scope cancels what is left), then cancel the background group.

No exception but cancellation leaves a task: each failure goes to ``fail``, which ends the run
calmly. The caller's block runs beside the engine's task, never inside a scope the engine
cancels, so the task that entered ``running()`` (the embedding application's) is never
cancelled by the engine.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from coupa_async.engine.actions import Action, Verdict, action_for
from coupa_async.engine.config import EngineConfig
from coupa_async.engine.protocol import Job, Services
from coupa_async.engine.queue import Entry, WorkQueue, jittered_backoff
from coupa_async.engine.slot import WorkerSlot, WorkerState
from coupa_async.engine.stats import RunStats
from coupa_async.engine.status import EngineStatus, WorkerStatus
from coupa_async.engine.waiting import unless_stopped
from coupa_async.errors import (
    BrowserLaunchError,
    CoupaAsyncError,
    RunStoppedError,
    SessionDoubtError,
    StorageError,
)
from coupa_async.log import error_summary, get_logger

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

SETUP_RETRY_PAUSE_S = 0.2


def _discard(work: Awaitable[Any]) -> None:
    """Close a coroutine that will never run (no 'never awaited' warning)."""
    if inspect.iscoroutine(work):
        work.close()


class Engine(Generic[T, R]):
    """Runs ``job`` on up to ``max_workers`` worker slots over one work queue."""

    def __init__(
        self,
        config: EngineConfig,
        job: Job[T, R],
        services: Services,
        on_result: Callable[[R], Awaitable[None]],
    ) -> None:
        self.config = config
        self.job = job
        self.services = services
        self._on_result = on_result
        self.contexts_opened = 0
        self._slot_services = replace(services, on_context=self._context_opened)
        self.queue: WorkQueue[T] = WorkQueue(
            max_attempts=config.max_attempts,
            backoff=lambda attempt: jittered_backoff(
                attempt, config.backoff_base_s, config.backoff_cap_s
            ),
        )
        self.stats = RunStats()
        self.slots: dict[int, WorkerSlot] = {}
        self.target = config.clamp_workers(config.workers)
        self.fatal: BaseException | None = None
        self.pending_on_stop: list[T] = []
        self.stopped = anyio.Event()  # set when the run stops taking work (stop or fatal)
        self._items: TaskGroup | None = None  # workers and follow-ups: ends within the grace
        self._background: TaskGroup | None = None  # spawned work: cancelled once items end
        self._closing = anyio.Event()
        self._grace_s = 0.0
        self._ended = anyio.Event()  # both groups are over and pending_on_stop is known
        self._following = 0  # items in their follow-up, off their worker
        self._ids = itertools.count(1)

    # ----- life cycle -------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Engine[T, R]]:
        """Start the workers; on leaving, stop (in-flight items get the grace period).

        An exception of the block is raised as itself after the engine has ended, not wrapped
        in an exception group.
        """
        error: BaseException | None = None
        async with anyio.create_task_group() as group:  # never cancelled by the engine
            await group.start(self._serve)
            try:
                yield self
            except BaseException as exc:
                error = exc
                with anyio.CancelScope(shield=True):
                    cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
                    await self.close(0 if cancelled else None)
            else:
                await self.close()
        if error is not None:
            raise error

    async def _serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The engine's task: the background group around the items' group, until closed."""
        try:
            async with anyio.create_task_group() as background:
                self._background = background
                async with anyio.create_task_group() as items:
                    self._items = items
                    self.scale_to(self.target)
                    task_status.started()
                    await self._closing.wait()
                    # Workers retire, idle ones at once; what is still running at the
                    # deadline is cancelled. The group then ends with its last task.
                    items.cancel_scope.deadline = anyio.current_time() + self._grace_s
                self._items = None
                background.cancel_scope.cancel()
        finally:
            self._items = self._background = None
            self._end()

    def _end(self) -> None:
        self.pending_on_stop.extend(self.queue.forget_all())
        self._ended.set()

    def spawn(self, work: Awaitable[Any], name: str) -> None:
        """Run ``work`` in the engine's background until it ends or the engine has stopped."""
        if self._background is None or self._closing.is_set():
            _discard(work)
            return
        self._background.start_soon(self._guarded, work, name, name=name)

    async def _guarded(self, work: Awaitable[Any], name: str) -> None:
        """Await ``work``; an exception stops the run (``fail``) instead of leaving the task."""
        try:
            await work
        except Exception as exc:
            log.exception("engine_task_failed", task=name)
            self.fail(
                exc
                if isinstance(exc, CoupaAsyncError)
                else RunStoppedError(
                    f"An internal step of the run failed ({name}: {error_summary(exc)}). "
                    "Nothing recorded so far is lost; run the same command again to resume."
                )
            )

    async def close(self, grace_s: float | None = None) -> None:
        """Take no more items; let those in flight finish within ``grace_s``; cancel the rest.

        What did not settle is in ``pending_on_stop``. A second caller returns when the first
        is done.
        """
        if not self._closing.is_set():
            grace = self.config.shutdown_grace_s if grace_s is None else grace_s
            if self.services.outage.down:
                grace = 0  # items in flight wait for a host that does not answer: to pending
            self._grace_s = grace
            self._stop_taking()
            self._closing.set()
            if self._items is None and not self._ended.is_set():
                self._end()  # never started
        await self._ended.wait()

    def fail(self, exc: BaseException) -> None:
        """A fault that ends the run: take no more items; the rest stays pending."""
        if self.fatal is None:
            self.fatal = exc
            log.error("run_stopping", reason=str(exc))
        self._stop_taking()

    def _stop_taking(self) -> None:
        self.stopped.set()
        for slot in self.slots.values():
            slot.retire()

    def _context_opened(self, context: BrowserContext) -> None:
        self.contexts_opened += 1
        self.services.on_context(context)

    # ----- work in ----------------------------------------------------------------------------

    def submit(self, item: T, priority: int) -> bool:
        """Queue ``item``; False when the same key is already queued or in flight."""
        if self._closing.is_set() or self.stopped.is_set():
            raise RuntimeError("the engine is stopping; no new work is taken")
        return self.queue.add(self.job.key(item), item, priority)

    async def join(self) -> None:
        """Until every submitted item has settled, or the run stopped."""
        await unless_stopped(self.queue.drained.wait(), self.stopped)

    # ----- scaling ----------------------------------------------------------------------------

    @property
    def max_workers(self) -> int:
        return self.config.clamp_workers(self.config.max_workers)

    @property
    def active_workers(self) -> list[WorkerSlot]:
        return [slot for slot in self.slots.values() if not slot.retiring]

    @property
    def workers(self) -> dict[int, WorkerSlot]:
        return self.slots

    def has_work(self) -> bool:
        """Whether items wait to be taken (now or after a backoff)."""
        return self.queue.has_work()

    def scale_to(self, n: int, prefer: list[int] | None = None) -> int:
        """Grow or shrink to ``n`` workers within [min_workers, max_workers]; safe at any time.

        Shrinking retires workers (each finishes its current item), preferring ``prefer``,
        then idle ones, then the oldest. Returns the new target.
        """
        self.target = self.config.clamp_workers(n)
        if self._items is None or self._closing.is_set() or self.stopped.is_set():
            return self.target
        active = self.active_workers
        for _ in range(self.target - len(active)):
            slot = WorkerSlot(
                next(self._ids),
                self._slot_services,
                recycle_after_tasks=self.config.recycle_after_tasks,
                close_timeout_s=self.config.close_timeout_s,
            )
            self.slots[slot.id] = slot
            name = f"worker-{slot.id}"
            self._items.start_soon(self._guarded, self._work(slot), name, name=name)
        excess = len(active) - self.target
        if excess > 0:
            order = {wid: i for i, wid in enumerate(prefer or [])}
            ranked = sorted(
                active,
                key=lambda w: (order.get(w.id, len(order)), w.state != WorkerState.IDLE, w.started),
            )
            for slot in ranked[:excess]:
                slot.retire()  # an idle worker stops waiting for an item at once
                log.info("worker_draining", worker=slot.id, target=self.target)
        return self.target

    # ----- status -----------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        queue = self.queue
        return EngineStatus(
            workers=tuple(
                WorkerStatus(
                    s.id,
                    s.state.value,
                    s.current,
                    s.tasks_done,
                    s.since,
                    s.activity,
                    s.activity_since,
                )
                for s in self.slots.values()
            ),
            target_workers=self.target,
            queued=queue.queued,
            waiting_retry=queue.waiting_retry,
            in_flight=queue.in_flight,
            done=self.stats.done,
            outcomes=dict(self.stats.outcomes),
            rate_per_s=self.stats.rate_per_s(),
            eta_s=self.stats.eta_s(queue.known),
            paused_s=self.services.gate.remaining_pause_s,
            session_renewals=self.services.session.renewals,
            browser_relaunches=self.services.browser.relaunches,
            following=self._following,
        )

    # ----- workers ----------------------------------------------------------------------------

    async def _work(self, slot: WorkerSlot) -> None:
        try:
            while not slot.retiring:
                try:
                    await slot.ready()
                except BrowserLaunchError as exc:
                    self.fail(exc)
                    return
                except PlaywrightError as exc:
                    log.warning("worker_setup_failed", worker=slot.id, error=error_summary(exc))
                    await slot.close_context()
                    await anyio.sleep(SETUP_RETRY_PAUSE_S)
                    continue
                entry = await self._take(slot)
                if entry is None:
                    return
                if not self._may_start(slot):
                    self.queue.untake(entry)  # the host paused, or the sign-in was renewed
                    continue
                await self._run(slot, entry)
        finally:
            with anyio.CancelScope(shield=True):
                slot.set_state(WorkerState.CLOSED)
                await slot.close_context()
            self.slots.pop(slot.id, None)
            log.debug("worker_closed", worker=slot.id)

    def _may_start(self, slot: WorkerSlot) -> bool:
        """Whether an item taken now may start: the host is open and the cookies are current."""
        services = self.services
        return services.gate.is_open and slot.cookie_generation == services.session.generation

    async def _take(self, slot: WorkerSlot) -> Entry[T] | None:
        """The next item once the host may be contacted; None when the worker is to stop."""
        if slot.retiring:  # retired while it was starting
            return None
        entry: Entry[T] | None = None
        with slot.waiting():  # retiring the slot cancels the wait
            slot.set_state(WorkerState.IDLE)
            await self.services.gate.wait()
            entry = await self.queue.get()
        if entry is not None and (slot.retiring and self.stopped.is_set()):
            self.queue.put_back(entry)  # taken as the run stopped: not started
            return None
        return entry

    async def _run(self, slot: WorkerSlot, entry: Entry[T]) -> None:
        slot.set_state(WorkerState.DRAINING if slot.retiring else WorkerState.BUSY, entry.key)
        cookie_generation = slot.cookie_generation  # the sign-in this worker's cookies carry
        final = entry.attempt >= self.config.max_attempts
        try:
            with anyio.fail_after(self.config.task_timeout_s):
                result = await self.job.run(slot, entry.item, entry.attempt, final)
        except Exception as exc:
            verdict = action_for(exc, self.config.task_timeout_s)
            await self._act(slot, entry, verdict, exc, cookie_generation)
        else:
            self.services.session.vouch(cookie_generation)
            follow_up = self.job.follow_up(entry.item, result)
            if follow_up is None:
                await self._settle(entry, result)
            elif self._closing.is_set() or self._following >= self._follow_up_limit:
                # Stopping (within the grace), or follow-ups lag behind: this worker waits.
                await self._follow(entry, result, follow_up)
            else:
                self._start_follow_up(entry, result, follow_up)
        finally:
            with anyio.CancelScope(shield=True):
                await slot.end_task()
            slot.set_state(WorkerState.DRAINING if slot.retiring else WorkerState.IDLE)

    async def _act(
        self,
        slot: WorkerSlot,
        entry: Entry[T],
        verdict: Verdict,
        exc: Exception,
        cookie_generation: int,
    ) -> None:
        key, services = entry.key, self.services
        match verdict.action:
            case Action.RENEW_SESSION if entry.session_expiries >= self.config.sign_ins_per_item:
                # The same item meets a login page again after a sign-in: no new sign-in (an
                # identity provider locks accounts that sign in without end); its own failure.
                log.warning("login_page_again", item=key, worker=slot.id, detail=verdict.reason)
                await self._charge(
                    entry,
                    f"{verdict.reason}, again after signing in: the tenant refuses it to this "
                    "session (limits.sign_ins_per_po)",
                )
            case Action.RENEW_SESSION:
                log.info("session_expired", item=key, worker=slot.id, detail=verdict.reason)
                slot.doing("signing in again")
                try:
                    await services.session.renew(cookie_generation)
                    entry.session_expiries += 1  # the item now has a working session
                except SessionDoubtError as doubt:
                    log.warning("login_page_after_sign_in", item=key, detail=str(doubt))
                    await self._charge(entry, f"{verdict.reason}: {doubt}")
                    return
                except CoupaAsyncError as error:
                    # Signing in cannot work while the host is down: wait for it, not stop.
                    if not await services.outage.confirm(str(error)):
                        self.fail(error)
                except BaseException:
                    self.queue.put_back(entry)
                    raise
                self.queue.put_back(entry)  # after the renewal: not run on old cookies
            case Action.PAUSE_HOST:
                log.warning("rate_limited", item=key, retry_after_s=verdict.retry_after_s)
                services.gate.pause_for(verdict.retry_after_s)
                self.queue.put_back(entry)
            case Action.DROP_PAGE:
                log.warning("browser_fault", item=key, worker=slot.id, error=verdict.reason)
                self.queue.put_back(entry)
                if services.browser.connected:
                    slot.discard()
                else:
                    slot.forget_context()
            case Action.CHECK_OUTAGE:
                slot.doing("checking whether the host answers")
                if await services.outage.confirm(verdict.reason):
                    log.debug("item_put_back", item=key, reason="host unreachable")
                    self.queue.put_back(entry)  # not the item's fault: no attempt charged
                else:
                    await self._charge(entry, verdict.reason)
            case Action.RETRY_NEW_PAGE:
                slot.discard()  # a page stuck mid-navigation is not reused
                await self._charge(entry, verdict.reason)
            case Action.STOP_RUN:
                self.queue.put_back(entry)  # not the item's fault: it waits for the rerun
                self.fail(exc)
            case Action.DEFECT:
                log.error("job_error", item=key, exc_info=exc)
                await self._charge(entry, verdict.reason)
            case Action.RETRY:
                await self._charge(entry, verdict.reason, verdict.retry_after_s)

    @property
    def _follow_up_limit(self) -> int:
        return self.config.follow_ups_per_worker * self.max_workers

    def _start_follow_up(self, entry: Entry[T], result: R, work: Awaitable[R]) -> None:
        """Run the item's follow-up off the worker, in the items' group; the item stays in
        flight until it settles (so ``join`` waits for it, and a stop leaves it pending)."""
        assert self._items is not None
        self._following += 1
        name = f"follow-up {entry.key}"
        self._items.start_soon(self._guarded, self._follow_off(entry, result, work), name)

    async def _follow_off(self, entry: Entry[T], result: R, work: Awaitable[R]) -> None:
        try:
            await self._follow(entry, result, work)
        finally:
            self._following -= 1

    async def _follow(self, entry: Entry[T], result: R, work: Awaitable[R]) -> None:
        try:
            result = await work
        except StorageError as exc:
            log.warning("result_not_recorded", item=entry.key, reason=str(exc.__cause__ or exc))
            self.fail(exc)  # the item stays in flight: pending for the rerun
            return
        except Exception:
            log.exception("follow_up_failed", item=entry.key)  # the result settles as it was
        await self._settle(entry, result)

    async def _charge(self, entry: Entry[T], reason: str, at_least_s: float = 0.0) -> None:
        attempt = entry.attempt
        delay = self.queue.charge(entry, min(at_least_s, self.services.gate.max_pause_s))
        if delay is None:
            await self._settle(entry, self.job.give_up(entry.item, attempt, reason))
            return
        log.info(
            "retry_later", item=entry.key, attempt=attempt, delay_s=round(delay, 2), reason=reason
        )

    async def _settle(self, entry: Entry[T], result: R) -> None:
        try:
            await self._on_result(result)
        except StorageError as exc:
            # The journal's disk is full: its sentence says all; the item stays pending.
            log.warning("result_not_recorded", item=entry.key, reason=str(exc.__cause__ or exc))
            self.fail(exc)
            return
        except Exception as exc:
            # A result that cannot be recorded for another reason ends the run cleanly too.
            log.exception("result_not_recorded", item=entry.key)
            self.fail(
                RunStoppedError(
                    f"The result of {entry.key} could not be recorded ({type(exc).__name__}: "
                    f"{exc}). Nothing recorded so far is lost; fix the cause and run the same "
                    "command again to resume."
                )
            )
            return
        self.stats.record(self.job.outcome(result))
        self.queue.settle(entry.key)
