"""Benchmark of the engine's own overhead (not a test): items/s and CPU µs per item by workers.

A toy job (no browser, no network: it awaits ``--job-ms`` of sleep, default none) runs on the
real ``Engine``, ``WorkQueue``, ``WorkerSlot``s, ``BrowserSupervisor`` and ``HostGate``,
over fake browser contexts, pages, sign-in and outage check. What it measures is therefore
what the engine adds to each item: queueing, taking, the worker loop, the context and page
bookkeeping, settling and statistics. A "bare loop" row awaits the same job in a plain loop,
so the difference is the engine's (with ``--fail-every``, the engine rows also pay for the
retried runs). Then ``status()`` is timed with 8 workers and 10,000
queued items. The fakes are those of ``tests/enginekit.py``, kept here so that the script
needs nothing from the tests.

    .venv/bin/python scripts/bench_engine.py [--items 5000] [--workers 1 4 8] [--job-ms 0]
        [--fail-every 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from playwright.async_api import Browser, BrowserContext, Page

from coupa_async.engine import BrowserSupervisor, Engine, EngineConfig, Services, WorkerSlot
from coupa_async.errors import TransientError
from coupa_async.log import configure_logging
from coupa_async.session.gate import HostGate

# ----- fakes (as in tests/enginekit.py) -------------------------------------------------------


class FakePage:
    def __init__(self) -> None:
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    async def close(self) -> None:
        self.closed = True


class FakeContext:
    def __init__(self, storage: dict[str, Any] | None) -> None:
        self.cookies: list[dict[str, Any]] = list((storage or {}).get("cookies", []))

    async def close(self) -> None:
        pass

    async def clear_cookies(self) -> None:
        self.cookies = []

    async def add_cookies(self, cookies: Sequence[dict[str, Any]]) -> None:
        self.cookies.extend(cookies)

    async def storage_state(self) -> dict[str, Any]:
        return {"cookies": list(self.cookies), "origins": []}

    async def new_page(self) -> Page:
        return cast(Page, FakePage())


class FakeBrowser:
    def is_connected(self) -> bool:
        return True

    async def close(self) -> None:
        pass


async def launch() -> Browser:
    return cast(Browser, FakeBrowser())


async def new_context(browser: Browser, storage: dict[str, Any] | None) -> BrowserContext:
    return cast(BrowserContext, FakeContext(storage))


class FakeSession:
    generation = 1
    renewals = 0
    state: dict[str, Any] | None = None

    @property
    def cookies(self) -> list[dict[str, Any]]:
        return [{"name": "session", "value": "1", "url": "https://t.test"}]

    async def renew(self, seen_generation: int) -> None:
        pass


class FakeOutage:
    down = False

    async def confirm(self, reason: str) -> bool:
        return False


async def fake_services() -> Services:
    browser = BrowserSupervisor(launch)
    await browser.start()
    return Services(browser, new_context, FakeSession(), HostGate(), FakeOutage())


# ----- the toy job ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    key: str
    outcome: str


class ToyJob:
    """Opens the worker's page every fourth item (as a render would), awaits ``job_s``, and
    fails every ``fail_every``-th item once (a retry after a backoff)."""

    def __init__(self, job_s: float, fail_every: int) -> None:
        self.job_s = job_s
        self.fail_every = fail_every

    def key(self, item: int) -> str:
        return str(item)

    async def run(self, slot: WorkerSlot, item: int, attempt: int, final: bool) -> Done:
        if item % 4 == 0:
            await slot.page()
        await asyncio.sleep(self.job_s)
        if self.fail_every and attempt == 1 and item % self.fail_every == 0:
            raise TransientError("HTTP 503")
        return Done(str(item), "ok")

    def give_up(self, item: int, attempts: int, reason: str) -> Done:
        return Done(str(item), "failed")

    def outcome(self, result: Done) -> str:
        return result.outcome


# ----- measures -------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    wall_s: float
    cpu_s: float
    items: int
    contexts: int = 0

    @property
    def per_s(self) -> float:
        return self.items / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.items * 1e6


async def bare_loop(items: int, job: ToyJob) -> Row:
    """The job awaited in a plain loop on one slot: what the engine's rows are compared to."""
    slot = WorkerSlot(1, await fake_services(), recycle_after_tasks=100, close_timeout_s=1.0)
    await slot.ready()
    wall, cpu = time.perf_counter(), time.process_time()
    for item in range(items):
        await job.run(slot, item, 2, False)  # attempt 2: the bare loop never fails
        await slot.end_task()
    return Row("bare loop", time.perf_counter() - wall, time.process_time() - cpu, items)


async def engine_run(items: int, workers: int, job: ToyJob) -> Row:
    config = EngineConfig(
        workers=workers,
        max_workers=workers,
        backoff_base_s=0.001,
        backoff_cap_s=0.005,
        shutdown_grace_s=5.0,
    )
    settled = 0

    async def on_result(result: Done) -> None:
        nonlocal settled
        settled += 1

    engine: Engine[int, Done] = Engine(config, job, await fake_services(), on_result)
    wall, cpu = time.perf_counter(), time.process_time()
    async with engine.running():
        for item in range(items):
            engine.submit(item, item % 3)
        await engine.join()
    row = Row(
        f"{workers} worker{'s' if workers > 1 else ''}",
        time.perf_counter() - wall,
        time.process_time() - cpu,
        items,
        engine.contexts_opened,
    )
    if settled != items or engine.fatal is not None:
        raise SystemExit(f"{row.label}: {settled} of {items} settled, fatal={engine.fatal}")
    return row


async def time_status(queued: int, workers: int) -> float:
    """Mean µs of Engine.status() with ``workers`` idle workers and ``queued`` items."""
    config = EngineConfig(workers=workers, max_workers=workers)
    job = ToyJob(0.0, 0)

    async def on_result(result: Done) -> None:
        pass

    engine: Engine[int, Done] = Engine(config, job, await fake_services(), on_result)
    async with engine.running():
        while len([s for s in engine.slots.values() if s.state.value == "idle"]) < workers:
            await asyncio.sleep(0.001)
        # Nothing below awaits until close(): the workers take none of the items meanwhile.
        for item in range(queued):
            engine.submit(item, item % 3)
        rounds = 2000
        started = time.perf_counter()
        for _ in range(rounds):
            engine.status()
        micros = (time.perf_counter() - started) / rounds * 1e6
        await engine.close(0)
    return micros


async def bench(args: argparse.Namespace) -> None:
    job = ToyJob(args.job_ms / 1000, args.fail_every)
    rows: list[Row] = []
    for label, measure in [("bare", None), *((str(w), w) for w in args.workers)]:
        best: Row | None = None
        for _ in range(args.repeat):
            gc.collect()
            if measure is None:
                row = await bare_loop(args.items, job)
            else:
                row = await engine_run(args.items, measure, job)
            if best is None or row.wall_s < best.wall_s:
                best = row
        assert best is not None, label
        rows.append(best)
    base = rows[0]
    print(
        f"{args.items:,} items, job {args.job_ms:g} ms, a failure every "
        f"{args.fail_every or 'never'}; best of {args.repeat}"
    )
    print(
        f"{'':<11} {'wall s':>8} {'items/s':>10} {'CPU µs/item':>12} {'engine µs':>10} {'ctx':>4}"
    )
    for row in rows:
        extra = f"{row.cpu_us - base.cpu_us:>10.1f}" if row is not base else f"{'':>10}"
        print(
            f"{row.label:<11} {row.wall_s:>8.3f} {row.per_s:>10,.0f} {row.cpu_us:>12.1f} "
            f"{extra} {row.contexts or '':>4}"
        )
    micros = await time_status(10_000, 8)
    print(f"status() with 8 workers and 10,000 queued items: {micros:.1f} µs per call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--job-ms", type=float, default=0.0, help="what each item awaits")
    parser.add_argument("--fail-every", type=int, default=0, help="every Nth item fails once")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best is shown")
    args = parser.parse_args()
    configure_logging("console", "warning")  # the engine's info lines would be measured too
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
