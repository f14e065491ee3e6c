"""One live run of a Downloader: what exists from ``async with`` to its end, opened in order.

``open_run`` opens, in one AsyncExitStack: Playwright and the browser (starting beside the first
contact and the sign-in check), the claim on the output folder (Coupa answers, then the folder
and its lock), the HTTP session, the sign-in, the page reader, the outage watch, the converter,
the job and the engine; then the memory watch and the metrics beside the workers. Everything is
closed in reverse, whatever happened; closing a resource is shielded from cancellation (each
close has its own deadline), so a start cancelled midway leaves no browser behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import anyio
from playwright.async_api import Browser, BrowserContext

from coupa_async.coupa.po_job import PoJob, rate_limit_watch
from coupa_async.coupa.po_steps import PoTask, page_limits, request_limiter
from coupa_async.coupa.reader import PageReader
from coupa_async.emails.service import EmailConverter
from coupa_async.engine import BrowserSupervisor, Engine, EngineConfig, Services
from coupa_async.errors import OutageGiveUpError
from coupa_async.memory.heap import PageHeaps
from coupa_async.memory.policy import MemoryPolicy
from coupa_async.memory.sampler import ProcessTreeSampler
from coupa_async.memory.watch import MemoryWatch, Sampler
from coupa_async.results.layout import OutputLayout
from coupa_async.results.out_lock import OutputFolderLock
from coupa_async.results.result import PoResult
from coupa_async.running.metrics import MetricsRecorder
from coupa_async.running.run_status import PoolStatus
from coupa_async.session.chromium import launch_browser, new_context, start_playwright
from coupa_async.session.contact import ensure_contact
from coupa_async.session.gate import HostGates
from coupa_async.session.network import open_http
from coupa_async.session.outage import OutageWatch, http_probe
from coupa_async.settings import Settings
from coupa_async.signin.keeper import SessionKeeper
from coupa_async.signin.probe import session_works_over_http
from coupa_async.signin.saved_state import load_tenant_state

T = TypeVar("T")

ResultListener = Callable[[PoResult], Awaitable[None]]
PoEngine = Engine[PoTask, PoResult]


# ----- the output folder -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputClaim:
    """Coupa answered, and this run holds the lock of ``out_dir`` (see ``claim_output``)."""

    out_dir: Path
    lock: OutputFolderLock


@contextlib.asynccontextmanager
async def claim_output(settings: Settings, out_dir: Path) -> AsyncIterator[OutputClaim]:
    """First contact with the tenant (nothing is created on disk before it answers), then the
    output folder and its lock, held until the block ends: one run at a time per folder."""
    await ensure_contact(settings)
    await anyio.to_thread.run_sync(partial(out_dir.mkdir, parents=True, exist_ok=True))
    # Not in a thread: a cancelled start must never leave the lock taken.
    with OutputFolderLock.take(out_dir) as lock:
        yield OutputClaim(out_dir, lock)


# ----- the live run ----------------------------------------------------------------------------


class LiveRun:
    """Everything a Downloader's run holds while it is open; its figures in ``status``."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: PoEngine,
        job: PoJob,
        outage: OutageWatch,
        converter: EmailConverter,
        metrics: MetricsRecorder,
        heaps: PageHeaps,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.job = job
        self.outage = outage
        self.converter = converter
        self.metrics = metrics
        self._heaps = heaps
        self.memory_watch: MemoryWatch | None = None

    def status(self) -> PoolStatus:
        """The engine's figures with the run's own: memory, discovery, reachability, bytes."""
        watch, outage, converter = self.memory_watch, self.outage, self.converter
        return PoolStatus.of(
            self.engine.status(),
            memory=watch.figures if watch is not None else None,
            discovery=self.job.reader.state,
            unreachable_since=outage.unreachable_since,
            next_probe_s=outage.next_probe_in_s,
            outages=len(outage.outages),
            bytes_received=self.job.bytes_received,
            recent_per_min=self.metrics.recent_rate_per_min(),
            emails_converted=converter.converted,
            emails_failed=converter.failed,
        )

    def start_memory_watch(
        self, sampler: Sampler | None = None, policy: MemoryPolicy | None = None
    ) -> MemoryWatch:
        """Run the memory watch beside the workers (once); it ends when the run does."""
        if self.memory_watch is not None:
            return self.memory_watch
        engine, memory = self.engine, self.settings.memory
        self.memory_watch = MemoryWatch(
            engine,
            sampler or ProcessTreeSampler(),
            policy or MemoryPolicy(memory, self.settings.min_workers, engine.max_workers),
            memory.interval_s,
            self._worker_memory,
        )
        engine.spawn(self.memory_watch.run(), "memory-watch")
        return self.memory_watch

    async def _worker_memory(self) -> dict[int, int]:
        """JS heap of each active worker's open page (CDP), for choosing which worker to drain."""
        slots = self.engine.active_workers
        return await self._heaps.measure(
            {slot.id: page for slot in slots if (page := slot.open_page) is not None}
        )


@contextlib.asynccontextmanager
async def open_run(
    settings: Settings,
    layout: OutputLayout,
    gates: HostGates,
    deliver: ResultListener,
    metrics: MetricsRecorder,
    claim: OutputClaim | None = None,
) -> AsyncIterator[LiveRun]:
    """The run, open: engine running, memory watch and metrics beside it; closed on leaving.

    ``claim``: the caller claimed the output folder already (first contact, lock); else the run
    claims it. ``deliver`` hears every settled result.
    """
    async with AsyncExitStack() as stack:
        local = await _open_local(stack, settings)
        http, signed_in = await _connect(stack, settings, layout, local.browser, claim)
        keeper = SessionKeeper(
            settings,
            partial(_context_for, local.browser, settings),
            gates.tenant,
            signed_in.state,
            browser_stuck=partial(_relaunch_stuck, local.browser),
        )
        await keeper.ensure_signed_in(signed_in.works)
        engine, job, outage = _engine_for(settings, layout, gates, local, http, keeper, deliver)
        run = LiveRun(
            settings,
            engine=engine,
            job=job,
            outage=outage,
            converter=local.converter,
            metrics=metrics,
            heaps=local.heaps,
        )
        stack.push_async_callback(metrics.finish, run.status)  # once the engine has stopped
        await stack.enter_async_context(engine.running())
        if settings.memory.enabled:
            run.start_memory_watch()
        engine.spawn(metrics.keep_sampling(run.status), "metrics")
        yield run


@dataclass(frozen=True, slots=True)
class _Local:
    """What the run keeps on this machine: the browser, the e-mail converter, the page heaps."""

    browser: BrowserSupervisor
    converter: EmailConverter
    heaps: PageHeaps


async def _open_local(stack: AsyncExitStack, settings: Settings) -> _Local:
    """Playwright's driver and the (not yet started) browser, the converter, the page heaps;
    each closed on ``stack``, shielded from cancellation."""
    playwright = await _enter_closing_shielded(stack, start_playwright())
    browser = BrowserSupervisor(
        lambda: launch_browser(playwright, settings),
        close_timeout_s=settings.timeouts.close_s,
    )
    stack.push_async_callback(_shielded, browser.close)
    converter = _converter(settings)
    stack.push_async_callback(_shielded, converter.aclose)
    heaps = PageHeaps()
    stack.push_async_callback(_shielded, heaps.close)
    return _Local(browser, converter, heaps)


def _engine_for(
    settings: Settings,
    layout: OutputLayout,
    gates: HostGates,
    local: _Local,
    http: aiohttp.ClientSession,
    keeper: SessionKeeper,
    deliver: ResultListener,
) -> tuple[PoEngine, PoJob, OutageWatch]:
    """The engine over the PO job, with the outage watch that both of them use."""
    link = _EngineLink()
    outage = OutageWatch(
        gates.tenant,
        http_probe(http, settings.base_url or ""),
        link.spawn,
        link.give_up,
        give_up_s=settings.network.outage_give_up_s,
    )
    job = _po_job(settings, layout, gates, http, outage, local.converter)
    services = Services(
        browser=local.browser,
        new_context=partial(_context_in, settings),
        session=keeper,
        gate=gates.tenant,
        outage=outage,
        on_context=rate_limit_watch(gates),
    )
    link.engine = Engine(engine_config(settings), job, services, deliver)
    return link.engine, job, outage


@dataclass(frozen=True, slots=True)
class _SavedSignIn:
    """The saved sign-in (None: none saved) and whether it still opens the tenant's pages."""

    state: dict[str, Any] | None
    works: bool


async def _connect(
    stack: AsyncExitStack,
    settings: Settings,
    layout: OutputLayout,
    browser: BrowserSupervisor,
    claim: OutputClaim | None,
) -> tuple[aiohttp.ClientSession, _SavedSignIn]:
    """The browser starts while the tenant is asked whether it answers (nothing is created on
    disk before it does) and whether the saved sign-in still works; the HTTP session is open."""
    launch = _Launch(browser)
    with raised_as_itself():
        async with anyio.create_task_group() as starting:
            starting.start_soon(launch.run)
            if claim is None:
                await stack.enter_async_context(claim_output(settings, layout.out_dir))
            http = await _enter_closing_shielded(stack, await open_http(settings))
            state = await anyio.to_thread.run_sync(load_tenant_state, settings)
            works = state is not None and await session_works_over_http(
                http, settings.base_url or "", state, settings.markers
            )
            await launch.wait()
    return http, _SavedSignIn(state, works)


class _Launch:
    """The browser's start in a task of its own: its error raised where it is awaited."""

    def __init__(self, browser: BrowserSupervisor) -> None:
        self._browser = browser
        self._ended = anyio.Event()
        self._error: Exception | None = None

    async def run(self) -> None:
        try:
            await self._browser.start()
        except Exception as exc:
            self._error = exc
        finally:
            self._ended.set()

    async def wait(self) -> None:
        await self._ended.wait()
        if self._error is not None:
            raise self._error


class _EngineLink:
    """The engine, for the outage watch made before it (the engine needs the watch)."""

    engine: PoEngine | None = None

    def spawn(self, work: Awaitable[None], name: str) -> None:
        assert self.engine is not None, "the outage watch acts only once the engine runs"
        self.engine.spawn(work, name)

    def give_up(self, message: str) -> None:
        assert self.engine is not None, "the outage watch acts only once the engine runs"
        self.engine.fail(
            OutageGiveUpError(
                f"{message}, longer than network.outage_give_up_s allows. Nothing is lost: "
                "the POs not done yet are pending. When the network (VPN) is back, run the "
                "same command again to resume."
            )
        )


async def _context_in(
    settings: Settings, live: Browser, storage: dict[str, Any] | None
) -> BrowserContext:
    return await new_context(live, settings, storage)


async def _context_for(
    browser: BrowserSupervisor, settings: Settings, storage: dict[str, Any] | None
) -> BrowserContext:
    # A browser that died (under a sign-in, say) is relaunched first.
    return await browser.context(partial(_context_in, settings, storage=storage))


async def _relaunch_stuck(browser: BrowserSupervisor) -> None:
    await browser.recover(browser.generation)


def _converter(settings: Settings) -> EmailConverter:
    convert = settings.convert
    return EmailConverter(
        convert.emails,
        font_files=convert.font_files,
        processes=convert.processes,
        timeout_s=convert.timeout_s,
    )


def _po_job(
    settings: Settings,
    layout: OutputLayout,
    gates: HostGates,
    http: aiohttp.ClientSession,
    outage: OutageWatch,
    converter: EmailConverter,
) -> PoJob:
    reader = PageReader(
        settings.markers,
        settings.mode,
        navigation_timeout_s=settings.timeouts.navigation_s,
        settle_s=settings.timeouts.settle_s,
        file_hosts=tuple(settings.network.file_hosts),
        gate=gates.tenant,
        page_limits=page_limits(settings),
    )
    return PoJob(
        settings,
        reader=reader,
        http=http,
        layout=layout,
        gate=gates.tenant,
        outage=outage,
        requests=request_limiter(settings),
        converter=converter,
        gates=gates,
    )


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


# ----- closing and errors ----------------------------------------------------------------------


async def _shielded(close: Callable[[], Awaitable[object]]) -> None:
    """``close()``, even while the run is being cancelled (it has its own deadline)."""
    with anyio.CancelScope(shield=True):
        await close()


async def _enter_closing_shielded(
    stack: AsyncExitStack, resource: AbstractAsyncContextManager[T]
) -> T:
    """Enter ``resource`` on ``stack``; its exit is shielded from cancellation."""
    value = await resource.__aenter__()

    async def leave(*exc_info: Any) -> bool | None:
        with anyio.CancelScope(shield=True):
            handled = await resource.__aexit__(*exc_info)
        return handled

    stack.push_async_exit(leave)
    return value


@contextlib.contextmanager
def raised_as_itself() -> Iterator[None]:
    """A task group's one error raised as itself: anyio wraps even a lone error in a group."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        error = group.exceptions[0]
        raise error from error.__cause__


__all__ = [
    "LiveRun",
    "OutputClaim",
    "claim_output",
    "engine_config",
    "open_run",
]
