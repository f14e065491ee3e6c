"""Fakes for testing the engine without a browser: browser, contexts, pages, sign-in, outage check,
and a toy job whose failures are scripted per item. Everything runs in microseconds."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from playwright.async_api import Browser, BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from coupa_async.engine import (
    BrowserSupervisor,
    Engine,
    EngineConfig,
    Services,
    WorkerSlot,
    WorkerState,
)
from coupa_async.session.gate import HostGate

GONE = "Target page, context or browser has been closed"

# ----- browser --------------------------------------------------------------------------------


class FakePage:
    _numbers = itertools.count(1)

    def __init__(self, context: FakeContext) -> None:
        self.number = next(self._numbers)
        self.context = context
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed or self.context.closed

    async def close(self) -> None:
        self.closed = True


class FakeContext:
    """What a worker slot uses of a BrowserContext."""

    def __init__(self, browser: FakeBrowser, storage: dict[str, Any] | None) -> None:
        self.browser = browser
        self.storage = storage
        self.closed = False
        self.cookies: list[dict[str, Any]] = list((storage or {}).get("cookies", []))
        self.cookie_loads = 0
        self.pages: list[FakePage] = []

    async def close(self) -> None:
        self.closed = True

    async def clear_cookies(self) -> None:
        self.cookies = []

    async def add_cookies(self, cookies: Sequence[dict[str, Any]]) -> None:
        self.cookies.extend(dict(cookie) for cookie in cookies)
        self.cookie_loads += 1

    async def storage_state(self) -> dict[str, Any]:
        return {"cookies": [dict(cookie) for cookie in self.cookies], "origins": []}

    async def new_page(self) -> Page:
        if self.closed or not self.browser.connected:
            raise PlaywrightError(GONE)
        page = FakePage(self)
        self.pages.append(page)
        return cast(Page, page)


class FakeBrowser:
    def __init__(self, number: int) -> None:
        self.number = number
        self.connected = True
        self.contexts: list[FakeContext] = []

    def is_connected(self) -> bool:
        return self.connected

    async def close(self) -> None:
        self.connected = False


class FakeLauncher:
    """``launch`` for a real BrowserSupervisor: a new fake browser each call."""

    def __init__(self) -> None:
        self.browsers: list[FakeBrowser] = []

    async def __call__(self) -> Browser:
        browser = FakeBrowser(len(self.browsers) + 1)
        self.browsers.append(browser)
        return cast(Browser, browser)


async def new_fake_context(browser: Browser, storage: dict[str, Any] | None) -> BrowserContext:
    fake = cast(FakeBrowser, browser)
    if not fake.connected:
        raise PlaywrightError(GONE)
    context = FakeContext(fake, storage)
    fake.contexts.append(context)
    return cast(BrowserContext, context)


# ----- sign-in and outage ---------------------------------------------------------------------


class FakeSession:
    """Cookies of a generation; ``renew`` is single-flight, as the real SessionKeeper's."""

    def __init__(self, generation: int = 1) -> None:
        self.generation = generation
        self.renewals = 0
        self.state: dict[str, Any] | None = None
        self.seen: list[int] = []  # the generation each caller of renew said it saw
        self.error: BaseException | None = None  # raised by every renew when set
        self.vouched: list[int] = []  # the generation of each item that settled
        self._lock = asyncio.Lock()

    @property
    def cookies(self) -> list[dict[str, Any]]:
        return [{"name": "session", "value": f"gen-{self.generation}", "url": "https://t.test"}]

    async def renew(self, seen_generation: int) -> None:
        self.seen.append(seen_generation)
        async with self._lock:
            if self.error is not None:
                raise self.error
            if seen_generation != self.generation:
                return
            await asyncio.sleep(0.001)
            self.generation += 1
            self.renewals += 1

    def vouch(self, generation: int) -> None:
        self.vouched.append(generation)


class FakeOutage:
    def __init__(self, down: bool = False) -> None:
        self.is_down = down
        self.reasons: list[str] = []

    @property
    def down(self) -> bool:
        return self.is_down

    async def confirm(self, reason: str) -> bool:
        self.reasons.append(reason)
        return self.is_down


@dataclass
class Fakes:
    launcher: FakeLauncher
    browser: BrowserSupervisor
    session: FakeSession
    gate: HostGate
    outage: FakeOutage
    services: Services
    contexts: list[FakeContext] = field(default_factory=list)  # every context opened, in order


def slow_contexts(fakes: Fakes, opened: asyncio.Event) -> None:
    """New contexts wait for ``opened``: workers stay STARTING until it is set."""
    new_context = fakes.services.new_context

    async def slow(browser: Browser, storage: dict[str, Any] | None) -> BrowserContext:
        await opened.wait()
        return await new_context(browser, storage)

    fakes.services = dataclasses.replace(fakes.services, new_context=slow)


async def make_fakes(*, session_generation: int = 1) -> Fakes:
    """Fake services around a real BrowserSupervisor (started) and a real HostGate."""
    launcher = FakeLauncher()
    browser = BrowserSupervisor(launcher, close_timeout_s=0.1)
    await browser.start()
    session, gate, outage = FakeSession(session_generation), HostGate(), FakeOutage()
    contexts: list[FakeContext] = []
    services = Services(
        browser=browser,
        new_context=new_fake_context,
        session=session,
        gate=gate,
        outage=outage,
        on_context=lambda context: contexts.append(cast(FakeContext, context)),
    )
    return Fakes(launcher, browser, session, gate, outage, services, contexts)


# ----- the toy job ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    key: str
    attempt: int
    final: bool
    worker: int
    cookie_generation: int


@dataclass(frozen=True)
class ToyResult:
    key: str
    outcome: str
    attempts: int
    reason: str = ""


Hook = Callable[[WorkerSlot, str, int], Awaitable[None]]


class ToyJob:
    """Items are their own keys. Each run records itself, then (in order) opens the page if
    ``use_page``, awaits ``hook(slot, item, run_index)``, waits for ``hold[item]``, sleeps
    ``sleep_s``, and raises ``failures[item][run_index]`` when there is one (None: succeed)."""

    def __init__(
        self,
        *,
        failures: Mapping[str, Sequence[BaseException | None]] | None = None,
        hold: Mapping[str, asyncio.Event] | None = None,
        sleep_s: float = 0.0,
        use_page: bool = False,
        hook: Hook | None = None,
        follow: Callable[[str, ToyResult], Awaitable[ToyResult]] | None = None,
    ) -> None:
        self.follow = follow
        self.failures = failures or {}
        self.hold = hold or {}
        self.sleep_s = sleep_s
        self.use_page = use_page
        self.hook = hook
        self.runs: list[Run] = []
        self.tries: Counter[str] = Counter()
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.gave_up: list[tuple[str, int, str]] = []
        self.pages: list[tuple[str, FakePage]] = []

    def key(self, item: str) -> str:
        return item

    async def run(self, slot: WorkerSlot, item: str, attempt: int, final: bool) -> ToyResult:
        index = self.tries[item]
        self.tries[item] += 1
        self.runs.append(Run(item, attempt, final, slot.id, slot.cookie_generation))
        try:
            if self.use_page:
                self.pages.append((item, cast(FakePage, await slot.page())))
            if self.hook is not None:
                await self.hook(slot, item, index)
            if item in self.hold:
                await self.hold[item].wait()
            await asyncio.sleep(self.sleep_s)
        except asyncio.CancelledError:
            self.cancelled.append(item)
            raise
        script = self.failures.get(item, ())
        if index < len(script) and (error := script[index]) is not None:
            raise error
        self.finished.append(item)
        return ToyResult(item, "ok", attempt)

    def follow_up(self, item: str, result: ToyResult) -> Awaitable[ToyResult] | None:
        return None if self.follow is None else self.follow(item, result)

    def give_up(self, item: str, attempts: int, reason: str) -> ToyResult:
        self.gave_up.append((item, attempts, reason))
        return ToyResult(item, "gave_up", attempts, reason)

    def outcome(self, result: ToyResult) -> str:
        return result.outcome

    def runs_of(self, key: str) -> list[Run]:
        return [run for run in self.runs if run.key == key]


class Collector:
    """``on_result``: keeps each result; raises for the key ``fail_on``."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.results: list[ToyResult] = []
        self.fail_on = fail_on

    async def __call__(self, result: ToyResult) -> None:
        if result.key == self.fail_on:
            raise OSError(28, "No space left on device")
        self.results.append(result)

    @property
    def keys(self) -> list[str]:
        return [result.key for result in self.results]

    def by_key(self) -> dict[str, ToyResult]:
        return {result.key: result for result in self.results}


FAST = {
    "workers": 1,
    "min_workers": 1,
    "max_workers": 8,
    "max_attempts": 3,
    "backoff_base_s": 0.002,
    "backoff_cap_s": 0.01,
    "task_timeout_s": 5.0,
    "shutdown_grace_s": 2.0,
    "close_timeout_s": 0.5,
}


def make_engine(
    job: ToyJob, fakes: Fakes, collector: Collector | None = None, **config: Any
) -> tuple[Engine[str, ToyResult], Collector]:
    collector = collector or Collector()
    engine_config = EngineConfig(**{**FAST, **config})
    return Engine(engine_config, job, fakes.services, collector), collector


async def wait_until(
    predicate: Callable[[], bool], what: str = "the condition", timeout_s: float = 2.0
) -> None:
    """Poll ``predicate`` each millisecond; fail the test when it stays false too long."""
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.001)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def idle_ids(engine: Engine[str, ToyResult]) -> set[int]:
    return {s.id for s in engine.slots.values() if s.state is WorkerState.IDLE}


async def wait_idle(engine: Engine[str, ToyResult], n: int) -> None:
    await wait_until(lambda: len(idle_ids(engine)) == n, f"{n} idle workers")
