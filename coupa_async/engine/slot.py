"""A worker slot: one browser context with the run's cookies, and a page only while needed.

The page is opened on the first ``page()`` of a task and kept while tasks use it; after a task
that did not use it, it is closed, so a worker that reads pages without rendering holds no
renderer process. The context is replaced when the browser was relaunched and after
``recycle_after_tasks`` tasks (carrying its cookies over); new cookies of a renewed sign-in
are put in before the next task.

The job says what it is doing through ``doing`` (any text: the engine only stores it); the
slot itself says ``idle`` (no item), ``starting``, ``working`` (an item, nothing said yet) or
``closed``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import anyio
from playwright.async_api import BrowserContext, Page

from coupa_async.engine.protocol import Services
from coupa_async.errors import BrowserFaultError
from coupa_async.log import get_logger

log = get_logger(__name__)


class WorkerState(StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    CLOSED = "closed"


# What a worker without an item is doing, by its state (any other state: idle).
_RESTING = {WorkerState.STARTING: "starting", WorkerState.CLOSED: "closed"}
WORKING = "working"  # an item taken, the job has not said more yet


class WorkerSlot:
    """What one worker holds: its context, its page on demand, and what it is doing."""

    def __init__(
        self, id: int, services: Services, *, recycle_after_tasks: int, close_timeout_s: float
    ) -> None:
        self.id = id
        self._services = services
        self._recycle_after = recycle_after_tasks
        self._close_timeout_s = close_timeout_s
        self.state = WorkerState.STARTING
        self.current: str | None = None
        self.since = self.started = time.time()
        self.activity = _RESTING[WorkerState.STARTING]
        self.activity_since = time.monotonic()
        self.retiring = False
        self._waiting: anyio.CancelScope | None = None  # while waiting for an item
        self.tasks_done = 0
        self.tasks_in_context = 0
        self.context: BrowserContext | None = None
        self._page: Page | None = None
        self._page_used = False
        self._discarded: list[Page] = []
        self.browser_generation = -1
        self.cookie_generation = -1
        self.pages_opened = 0

    # ----- state ------------------------------------------------------------------------------

    def set_state(self, state: WorkerState, current: str | None = None) -> None:
        new_item = current is not None and current != self.current
        self.state, self.current, self.since = state, current, time.time()
        if current is None:
            self.doing(_RESTING.get(state, "idle"))
        elif new_item:
            self.doing(WORKING)

    def doing(self, activity: str) -> None:
        """Say what the worker is doing now, for progress displays; a new text restarts the
        clock of ``activity_since``, the same text again does not."""
        if activity != self.activity:
            self.activity, self.activity_since = activity, time.monotonic()

    def retire(self) -> None:
        """Finish the current task (if any), then stop; a wait for an item ends at once."""
        self.retiring = True
        if self._waiting is not None:
            self._waiting.cancel()
        if self.state is not WorkerState.STARTING:
            self.set_state(WorkerState.DRAINING, self.current)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """The scope of a wait for an item: ``retire`` cancels it (the block then ends
        quietly); a slot already retiring does not wait at all."""
        with anyio.CancelScope() as scope:
            if self.retiring:
                scope.cancel()
            self._waiting = scope
            try:
                yield
            finally:
                self._waiting = None

    # ----- context ----------------------------------------------------------------------------

    async def ready(self) -> None:
        """A live context of the current browser, with the current sign-in's cookies.

        Raises BrowserLaunchError when the browser cannot be brought back, and Playwright's
        error when the context cannot be set up (the caller closes it and tries again).
        """
        browser, session = self._services.browser, self._services.session
        if not browser.connected:
            await browser.recover(self.browser_generation)
        if self.context is None or self.browser_generation != browser.generation:
            await self._open_context(session.state, session.generation)
        elif self.tasks_in_context >= self._recycle_after:
            state = dict(await self.context.storage_state())  # its cookies carry over
            await self._open_context(state, self.cookie_generation)
            log.debug("context_recycled", worker=self.id)
        if self.cookie_generation != session.generation:
            assert self.context is not None
            await self.context.clear_cookies()
            await self.context.add_cookies(session.cookies)  # type: ignore[arg-type]
            self.cookie_generation = session.generation
        if self.state is WorkerState.STARTING and not self.retiring:
            self.set_state(WorkerState.IDLE)

    async def _open_context(self, storage: dict[str, Any] | None, cookie_generation: int) -> None:
        await self.close_context()
        services = self._services
        assert services.browser.browser is not None
        generation = services.browser.generation
        self.context = await services.new_context(services.browser.browser, storage)
        services.on_context(self.context)
        self.browser_generation = generation
        self.cookie_generation = cookie_generation
        self.tasks_in_context = 0

    async def close_context(self) -> None:
        context, self.context, self._page = self.context, None, None
        self._discarded.clear()
        if context is not None:
            with contextlib.suppress(Exception), anyio.move_on_after(self._close_timeout_s):
                await context.close()

    def forget_context(self) -> None:
        """The browser died with it: nothing to close."""
        self.context, self._page = None, None
        self._discarded.clear()

    # ----- page -------------------------------------------------------------------------------

    async def page(self) -> Page:
        """The worker's page, opened on first use.

        Raises BrowserFaultError when the context belongs to a browser that is gone, or when no
        page opens within the close timeout (the context is then replaced before the next task).
        """
        self._page_used = True
        if self._page is not None and not self._page.is_closed():
            return self._page
        context, browser = self.context, self._services.browser
        assert context is not None, "ready() first"
        if not browser.connected or self.browser_generation != browser.generation:
            raise BrowserFaultError("the browser of this worker's context is gone")
        try:
            with anyio.fail_after(self._close_timeout_s):
                self._page = await context.new_page()
        except TimeoutError:
            log.warning("page_open_stuck", worker=self.id, timeout_s=self._close_timeout_s)
            await self.close_context()
            raise BrowserFaultError(
                f"no new page opened within {self._close_timeout_s:.0f} s; the worker's "
                "context is replaced"
            ) from None
        self.pages_opened += 1
        return self._page

    @property
    def open_page(self) -> Page | None:
        """The page if one is open now (for measuring it), without opening one."""
        return self._page if self._page is not None and not self._page.is_closed() else None

    def discard(self) -> None:
        """The page is broken or stuck: the next ``page()`` opens another (this one closes)."""
        if self._page is not None:
            self._discarded.append(self._page)
        self._page = None

    async def end_task(self) -> None:
        """After a task: close discarded pages, and the page if the task did not use it."""
        self.tasks_done += 1
        self.tasks_in_context += 1
        if not self._page_used:
            self.discard()
        self._page_used = False
        pages, self._discarded = self._discarded, []
        for page in pages:
            with contextlib.suppress(Exception), anyio.move_on_after(self._close_timeout_s):
                await page.close()
