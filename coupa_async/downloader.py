"""The library entry point: ``async with Downloader(settings) as d: async for r in d.run(pos)``.

It works inside an application that runs its own event loop and its own signal handling: it
installs no signal handlers and starts nothing outside its own task group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from playwright.async_api import BrowserContext, async_playwright

from coupa_async.auth import SessionKeeper, load_tenant_state
from coupa_async.browser import new_context
from coupa_async.contact import ensure_contact
from coupa_async.coupa.job import PoTask
from coupa_async.coupa.numbers import InvalidPoNumber, parse_po_number
from coupa_async.errors import ConfigurationError
from coupa_async.gate import HostGate
from coupa_async.layout import OutputLayout
from coupa_async.log import ensure_logging, get_logger
from coupa_async.network import open_http
from coupa_async.pool import BrowserHolder, Pool, PoolStatus, ResultListener
from coupa_async.result import Outcome, PoResult
from coupa_async.settings import Settings

log = get_logger("downloader")

PRIORITIES = {"URGENT": 0, "HIGH": 1, "NORMAL": 2, "LOW": 3}


def priority_value(priority: int | str) -> int:
    """An integer priority (lower first) from a number or URGENT / HIGH / NORMAL / LOW."""
    if isinstance(priority, int):
        return priority
    key = str(priority).strip().upper()
    if key in PRIORITIES:
        return PRIORITIES[key]
    try:
        return int(key)
    except ValueError:
        raise ValueError(
            f"priority {priority!r} is not a number nor one of {', '.join(PRIORITIES)}"
        ) from None


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
        self, settings: Settings, *, out: Path | None = None, check_contact: bool = True
    ) -> None:
        if not settings.base_url:
            raise ConfigurationError(
                "No Coupa address is set. Set COUPA_BASE_URL=https://<tenant>.coupahost.com "
                "(or pass --base-url), or try `python -m coupa_async demo` first."
            )
        self._check_contact = check_contact  # False: the caller has just checked
        self.settings = settings
        self.layout = OutputLayout(out or settings.out)
        self.gate = HostGate()
        self._stack: AsyncExitStack | None = None
        self._pool: Pool | None = None
        self._listeners: list[ResultListener] = []

    # ----- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        ensure_logging()
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def _start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        if self._check_contact:  # before anything is created: TenantUnreachableError
            await ensure_contact(settings)
        await asyncio.to_thread(self.layout.out_dir.mkdir, parents=True, exist_ok=True)
        playwright = await stack.enter_async_context(async_playwright())
        holder = BrowserHolder(playwright, settings)
        await holder.start()
        stack.push_async_callback(holder.close)
        http = await stack.enter_async_context(await open_http(settings))  # proxy, CA bundle
        state = await asyncio.to_thread(load_tenant_state, settings)

        async def make_context(storage: dict[str, Any] | None) -> BrowserContext:
            assert holder.browser is not None
            return await new_context(holder.browser, settings, storage)

        keeper = SessionKeeper(settings, make_context, self.gate, state)
        probe = await make_context(state)
        try:
            await keeper.ensure_signed_in(probe)
        finally:
            await probe.close()
        pool = Pool(settings, holder, keeper, self.gate, http, self.layout)
        pool.listeners.extend(self._listeners)
        await pool.start(settings.workers)
        self._pool = pool

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._pool is not None:
                grace = 0 if exc_type is asyncio.CancelledError else None
                await self._pool.close(grace_s=grace)
        finally:
            if self._stack is not None:
                await self._stack.aclose()
        fatal = self._pool.fatal if self._pool is not None else None
        if fatal is not None and exc is None:
            raise fatal

    # ----- work ------------------------------------------------------------------------------

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("use the Downloader inside `async with`")
        return self._pool

    def add_listener(self, listener: ResultListener) -> None:
        """Call ``await listener(result)`` for every settled PO, before ``run`` yields it."""
        self._listeners.append(listener)
        if self._pool is not None:
            self._pool.listeners.append(listener)

    def submit(
        self, po: str | int | PoTask, priority: int | str = "NORMAL", supplier: str | None = None
    ) -> bool:
        """Queue one PO (number or task). False when it is already queued or in flight.

        Raises InvalidPoNumber for a value that is not a PO number.
        """
        task = po if isinstance(po, PoTask) else PoTask(parse_po_number(po), supplier)
        return self.pool.submit(task, priority_value(priority))

    async def run(
        self, pos: Iterable[str | int | PoTask], priority: int | str = "NORMAL"
    ) -> AsyncIterator[PoResult]:
        """Process ``pos`` and yield each result as it settles (invalid numbers first)."""
        results: asyncio.Queue[PoResult] = asyncio.Queue()
        wanted: set[str] = set()

        async def collect(result: PoResult) -> None:
            if result.po_number in wanted:
                await results.put(result)

        pool = self.pool
        pool.listeners.append(collect)
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
                pool.submit(task, priority_value(priority))
            remaining = len(wanted)
            while remaining:
                getter = asyncio.ensure_future(results.get())
                stopper = asyncio.ensure_future(pool.join())
                try:
                    await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopper.cancel()
                    if not getter.done():
                        getter.cancel()
                if getter.done() and not getter.cancelled():
                    remaining -= 1
                    yield getter.result()
                elif pool.stopping or pool.fatal is not None:
                    return
        finally:
            with contextlib.suppress(ValueError):
                pool.listeners.remove(collect)

    def status(self) -> PoolStatus:
        """A snapshot: workers, queue, outcomes, rate, ETA."""
        return self.pool.status()

    def scale_to(self, workers: int) -> int:
        """Grow or shrink the pool; returns the new target."""
        return self.pool.scale_to(workers)

    async def stop(self, grace_s: float | None = None) -> list[PoTask]:
        """Stop taking work, let in-flight POs finish within ``grace_s``; returns the pending."""
        await self.pool.close(grace_s)
        return list(self.pool.pending_on_stop)
