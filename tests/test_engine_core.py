"""The engine with a toy job and fake browser services: no Chromium, milliseconds each.

Assertions are about order, counts and states, never about durations.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import Iterator, MutableMapping
from typing import Any, cast

import anyio
import pytest
import structlog
from playwright.async_api import Error as PlaywrightError

from coupa_async.engine import WorkerSlot, WorkerState
from coupa_async.errors import (
    AuthenticationError,
    BrowserFaultError,
    HostUnreachableError,
    OutageGiveUpError,
    RateLimitedError,
    RunStoppedError,
    SessionExpiredError,
    TransientError,
    storage_error,
)

from .enginekit import (
    GONE,
    Collector,
    FakeContext,
    FakeOutage,
    FakeSession,
    ToyJob,
    ToyResult,
    idle_ids,
    make_engine,
    make_fakes,
    slow_contexts,
    wait_idle,
    wait_until,
)

Logs = list[MutableMapping[str, Any]]


@pytest.fixture(autouse=True)
def logs(unfiltered_logs: None) -> Iterator[Logs]:
    """The engine's log events, captured instead of rendered (tracebacks cost milliseconds)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def events(logs: Logs, name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


# ----- order and settling ---------------------------------------------------------------------


async def test_one_worker_runs_items_in_priority_order() -> None:
    fakes = await make_fakes()
    job = ToyJob()
    engine, collector = make_engine(job, fakes, workers=1)
    items = [("low-1", 5), ("high-1", 0), ("mid-1", 2), ("high-2", 0), ("low-2", 5), ("mid-2", 2)]
    async with engine.running():
        for key, priority in items:
            assert engine.submit(key, priority)
        await engine.join()
    expected = ["high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2"]
    assert [run.key for run in job.runs] == expected
    assert collector.keys == expected
    assert {run.worker for run in job.runs} == {1}
    assert all(run.attempt == 1 and not run.final for run in job.runs)
    assert engine.stats.done == 6 and engine.stats.outcomes == {"ok": 6}
    assert engine.pending_on_stop == [] and engine.fatal is None


async def test_a_key_already_queued_is_refused_and_nothing_is_taken_after_close() -> None:
    fakes = await make_fakes()
    hold = asyncio.Event()
    job = ToyJob(hold={"a": hold})
    engine, collector = make_engine(job, fakes)
    async with engine.running():
        assert engine.submit("a", 0)
        await wait_until(lambda: job.runs, "a to start")
        assert not engine.submit("a", 0)  # in flight
        assert engine.submit("b", 1)
        assert not engine.submit("b", 0)  # queued
        hold.set()
        await engine.join()
        assert engine.submit("a", 0)  # settled: may come again
        await engine.join()
    with pytest.raises(RuntimeError):
        engine.submit("c", 0)
    assert collector.keys == ["a", "b", "a"]


async def test_many_workers_settle_each_item_exactly_once() -> None:
    fakes = await make_fakes()
    rng = random.Random(5)
    busy = 0
    most_busy = 0

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        nonlocal busy, most_busy
        busy += 1
        most_busy = max(most_busy, busy)
        try:
            await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.001]))
        finally:
            busy -= 1

    keys = [f"po-{n:03}" for n in range(150)]
    failures: dict[str, list[BaseException | None]] = {}
    for n, key in enumerate(keys):
        if n % 7 == 0:
            failures[key] = [TransientError("HTTP 503")]
        elif n % 11 == 0:
            failures[key] = [BrowserFaultError("page crashed")]
        elif n % 13 == 0:
            failures[key] = [TransientError("HTTP 502")] * 3  # every attempt fails
    job = ToyJob(failures=failures, hook=hook)
    engine, collector = make_engine(job, fakes, workers=4, max_workers=4)
    async with engine.running():
        for n, key in enumerate(keys):
            engine.submit(key, n % 3)
        await engine.join()
    assert Counter(collector.keys) == Counter(keys)  # each once, none missing
    gave_up = {key for key, script in failures.items() if len(script) == 3}
    assert {r.key for r in collector.results if r.outcome == "gave_up"} == gave_up
    assert engine.stats.done == len(keys)
    assert engine.stats.outcomes == {"ok": len(keys) - len(gave_up), "gave_up": len(gave_up)}
    assert {run.worker for run in job.runs} == {1, 2, 3, 4}
    assert most_busy == 4
    assert engine.queue.known == 0 and engine.pending_on_stop == []


# ----- failures: charged ----------------------------------------------------------------------


async def test_a_transient_error_is_retried_up_to_max_attempts_then_given_up(logs: Logs) -> None:
    fakes = await make_fakes()
    job = ToyJob(
        failures={
            "bad": [TransientError("HTTP 503 from the PO page")] * 3,
            "flaky": [TransientError("HTTP 502"), None],
            "buggy": [ValueError("no such column")] * 3,
        }
    )
    engine, collector = make_engine(job, fakes, max_attempts=3)
    async with engine.running():
        for key in ("bad", "flaky", "buggy", "good"):
            engine.submit(key, 0)
        await engine.join()
    bad = job.runs_of("bad")
    assert [(run.attempt, run.final) for run in bad] == [(1, False), (2, False), (3, True)]
    assert [run.attempt for run in job.runs_of("flaky")] == [1, 2]
    assert sorted(job.gave_up) == [  # the order of the two depends on the jitter
        ("bad", 3, "HTTP 503 from the PO page"),
        ("buggy", 3, "unexpected error: ValueError: no such column"),
    ]
    results = collector.by_key()
    assert results["bad"].outcome == "gave_up" and results["bad"].attempts == 3
    assert results["flaky"].outcome == "ok" and results["flaky"].attempts == 2
    assert results["good"].attempts == 1
    assert len(collector.results) == 4
    assert engine.stats.outcomes == {"ok": 2, "gave_up": 2}
    retries = [(e["item"], e["attempt"]) for e in events(logs, "retry_later")]
    assert sorted(retries) == [("bad", 1), ("bad", 2), ("buggy", 1), ("buggy", 2), ("flaky", 1)]
    defects = events(logs, "job_error")  # a bug, logged with its traceback
    assert [e["item"] for e in defects] == ["buggy"] * 3
    assert all(isinstance(e["exc_info"], ValueError) for e in defects)


async def test_with_one_attempt_the_first_run_is_final_and_a_failure_gives_up() -> None:
    fakes = await make_fakes()
    job = ToyJob(failures={"x": [TransientError("HTTP 500")]})
    engine, collector = make_engine(job, fakes, max_attempts=1)
    async with engine.running():
        engine.submit("x", 0)
        await engine.join()
    assert [(run.attempt, run.final) for run in job.runs] == [(1, True)]
    assert collector.results[0].outcome == "gave_up"
    assert job.gave_up == [("x", 1, "HTTP 500")]


async def test_a_task_over_its_timeout_is_charged_and_its_page_is_not_reused() -> None:
    fakes = await make_fakes()

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        if index == 0:
            await asyncio.Event().wait()  # stuck until the task timeout cancels it

    job = ToyJob(hook=hook, use_page=True)
    engine, collector = make_engine(job, fakes, task_timeout_s=0.02)
    async with engine.running():
        engine.submit("stuck", 0)
        await engine.join()
    assert [run.attempt for run in job.runs] == [1, 2]
    (_, first), (_, second) = job.pages
    assert first is not second and first.closed and not second.closed
    assert collector.results[0].outcome == "ok" and collector.results[0].attempts == 2
    assert job.cancelled == ["stuck"]


# ----- failures: put back, not charged --------------------------------------------------------


async def test_session_expiry_renews_once_for_all_workers_and_charges_nothing() -> None:
    fakes = await make_fakes(session_generation=1)
    started = 0
    all_started = asyncio.Event()

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        nonlocal started
        if index == 0:  # the three first runs are in flight together with generation-1 cookies
            started += 1
            if started == 3:
                all_started.set()
            await all_started.wait()

    expired = SessionExpiredError("Coupa answered with its sign-in page")
    job = ToyJob(hook=hook, failures={key: [expired] for key in "abc"})
    engine, collector = make_engine(job, fakes, workers=3, max_workers=3)
    async with engine.running():
        for key in "abc":
            engine.submit(key, 0)
        await engine.join()
    session = fakes.session
    assert session.seen == [1, 1, 1]  # each worker passed the generation its cookies carried
    assert session.renewals == 1 and session.generation == 2
    assert sorted(collector.keys) == ["a", "b", "c"]
    assert all(result.attempts == 1 for result in collector.results)  # nothing charged
    for key in "abc":
        first, second = job.runs_of(key)
        assert (first.attempt, first.cookie_generation) == (1, 1)
        assert (second.attempt, second.cookie_generation) == (1, 2)
    assert len(fakes.contexts) == 3  # the cookies were replaced in place, not a new context
    for context in fakes.contexts:
        assert context.cookie_loads == 1
        assert [cookie["value"] for cookie in context.cookies] == ["gen-2"]
    assert engine.status().session_renewals == 1


async def test_a_worker_that_sees_the_expiry_after_the_renewal_does_not_sign_in_again() -> None:
    fakes = await make_fakes(session_generation=1)
    both_started = asyncio.Event()

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        if index > 0:
            return
        if len(job.runs) == 2:
            both_started.set()
        await both_started.wait()
        if item == "late":  # its request went out with generation 1, its answer comes late
            await wait_until(lambda: fakes.session.renewals == 1, "the first renewal")
        raise SessionExpiredError("Coupa answered with its sign-in page")

    job = ToyJob(hook=hook)
    engine, collector = make_engine(job, fakes, workers=2, max_workers=2)
    async with engine.running():
        engine.submit("early", 0)
        engine.submit("late", 1)
        await engine.join()
    assert fakes.session.seen == [1, 1]  # the generation its cookies carried, not the current one
    assert fakes.session.renewals == 1
    assert sorted(collector.keys) == ["early", "late"]


async def test_a_rate_limit_pauses_the_gate_and_puts_the_item_back_uncharged() -> None:
    fakes = await make_fakes()
    loop = asyncio.get_running_loop()
    raised_at: list[float] = []
    started_at: list[float] = []

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        started_at.append(loop.time())
        if item == "limited" and index == 0:
            raised_at.append(loop.time())
            raise RateLimitedError("429 Too Many Requests", retry_after_s=0.02)

    job = ToyJob(hook=hook)
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("limited", 0)
        engine.submit("other", 1)
        await wait_until(lambda: fakes.gate.pauses == 1, "the gate to pause")
        assert fakes.gate.remaining_pause_s > 0
        assert not fakes.gate.is_open
        assert engine.status().paused_s > 0
        assert (engine.queue.queued, engine.queue.in_flight) == (2, 0)  # put back
        await engine.join()
    assert [run.key for run in job.runs] == ["limited", "limited", "other"]  # still first
    assert [run.attempt for run in job.runs] == [1, 1, 1]
    assert collector.by_key()["limited"].attempts == 1
    assert all(t >= raised_at[0] + 0.02 for t in started_at[1:])  # nothing while paused


async def test_a_dead_page_is_put_back_uncharged_and_replaced() -> None:
    fakes = await make_fakes()
    job = ToyJob(failures={"a": [BrowserFaultError("page crashed")]}, use_page=True)
    engine, collector = make_engine(job, fakes)
    async with engine.running():
        engine.submit("a", 0)
        await engine.join()
    assert [run.attempt for run in job.runs] == [1, 1]
    (_, first), (_, second) = job.pages
    assert first is not second and first.closed
    assert first.context is second.context  # the browser is alive: only the page is replaced
    assert fakes.browser.relaunches == 0
    assert collector.results[0].attempts == 1


async def test_a_dead_browser_is_relaunched_and_the_item_put_back_uncharged() -> None:
    fakes = await make_fakes()

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        if index == 0:
            fakes.launcher.browsers[-1].connected = False  # the browser dies under the task
            raise PlaywrightError(GONE)

    job = ToyJob(hook=hook, use_page=True)
    engine, collector = make_engine(job, fakes, workers=2, max_workers=2)
    async with engine.running():
        engine.submit("a", 0)
        await engine.join()
    assert [run.attempt for run in job.runs] == [1, 1]
    assert len(fakes.launcher.browsers) == 2 and fakes.browser.relaunches == 1
    assert fakes.browser.generation == 1 and fakes.browser.connected
    (_, first), (_, second) = job.pages
    assert first.context.browser.number == 1 and second.context.browser.number == 2
    assert collector.results[0].outcome == "ok"
    assert engine.status().browser_relaunches == 1


@pytest.mark.parametrize(("down", "attempts"), [(True, [1, 1]), (False, [1, 2])])
async def test_an_unreachable_host_is_checked_before_the_item_is_charged(
    down: bool, attempts: list[int]
) -> None:
    fakes = await make_fakes()
    confirmed = 0

    class FlickeringOutage(FakeOutage):
        async def confirm(self, reason: str) -> bool:
            nonlocal confirmed
            confirmed += 1
            answer = await super().confirm(reason)
            self.is_down = False  # the host is back for the next try (and for close)
            return answer

    outage = FlickeringOutage(down)
    fakes.services = dataclasses.replace(fakes.services, outage=outage)
    job = ToyJob(failures={"a": [HostUnreachableError("connection refused")]})
    engine, collector = make_engine(job, fakes)
    async with engine.running():
        engine.submit("a", 0)
        await engine.join()
    assert outage.reasons == ["connection refused"]
    assert [run.attempt for run in job.runs] == attempts
    assert collector.results[0].attempts == attempts[-1]


# ----- the run stops --------------------------------------------------------------------------


async def test_a_failed_renewal_with_the_host_up_stops_the_run() -> None:
    fakes = await make_fakes()
    refused = AuthenticationError("The sign-in was refused: wrong password.")
    fakes.session.error = refused
    job = ToyJob(failures={"b": [SessionExpiredError("sign-in page")]})
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        for priority, key in enumerate("abcd"):
            engine.submit(key, priority)
        await asyncio.wait_for(engine.join(), 2)  # returns when the run stops
        assert engine.fatal is refused
        assert engine.stopped.is_set()
        assert fakes.outage.reasons == [str(refused)]
        with pytest.raises(RuntimeError):
            engine.submit("e", 0)
    assert collector.keys == ["a"]
    assert [run.key for run in job.runs] == ["a", "b"]
    assert engine.pending_on_stop == ["b", "c", "d"]


async def test_a_full_disk_stops_the_run_and_leaves_the_item_pending_uncharged() -> None:
    fakes = await make_fakes()
    full = storage_error("a file into out/Acme", OSError(28, "No space left on device"))
    job = ToyJob(failures={"b": [full]})
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        for priority, key in enumerate("abc"):
            engine.submit(key, priority)
        await asyncio.wait_for(engine.join(), 2)
        assert engine.fatal is full
    assert collector.keys == ["a"]
    assert [run.key for run in job.runs] == ["a", "b"]
    assert engine.pending_on_stop == ["b", "c"]


async def test_a_failed_renewal_while_the_host_is_down_waits_instead_of_stopping() -> None:
    fakes = await make_fakes()
    fakes.session.error = AuthenticationError("no answer from the identity provider")

    class BackSoon(FakeOutage):
        async def confirm(self, reason: str) -> bool:
            self.reasons.append(reason)
            fakes.session.error = None  # the host comes back: the next renewal works
            return True

    outage = BackSoon()
    fakes.services = dataclasses.replace(fakes.services, outage=outage)
    job = ToyJob(failures={"b": [SessionExpiredError("sign-in page")] * 2})
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        for priority, key in enumerate("abc"):
            engine.submit(key, priority)
        await engine.join()
    assert engine.fatal is None
    assert collector.keys == ["a", "b", "c"]
    assert [run.attempt for run in job.runs_of("b")] == [1, 1, 1]
    assert fakes.session.renewals == 1 and len(outage.reasons) == 1


async def test_an_exception_in_a_spawned_task_stops_the_run_without_cancelling_its_owner() -> None:
    fakes = await make_fakes()
    job = ToyJob()
    engine, _ = make_engine(job, fakes, workers=2, max_workers=2)
    host = asyncio.current_task()
    assert host is not None
    ticks = 0
    sibling_cancelled = asyncio.Event()

    async def sibling() -> None:
        nonlocal ticks
        try:
            while True:
                ticks += 1
                await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise

    async def broken() -> None:
        await asyncio.sleep(0.002)
        raise KeyError("rss")

    async with engine.running():
        engine.submit("a", 0)
        engine.spawn(sibling(), "sibling")
        engine.spawn(broken(), "memory-watch")
        await asyncio.wait_for(engine.stopped.wait(), 2)
        assert isinstance(engine.fatal, RunStoppedError)
        assert "memory-watch" in str(engine.fatal) and "rss" in str(engine.fatal)
        seen = ticks
        await wait_until(lambda: ticks >= seen + 3, "the sibling task to keep running")
        assert host.cancelling() == 0
        assert not sibling_cancelled.is_set()
        await engine.join()  # returns: the run has stopped
    assert host.cancelling() == 0  # the owner leaves running() normally, not cancelled
    assert sibling_cancelled.is_set()  # stopping cancelled the background task


async def test_a_coupa_error_from_a_spawned_task_is_the_fatal_error_itself() -> None:
    fakes = await make_fakes()
    engine, _ = make_engine(ToyJob(), fakes)
    error = OutageGiveUpError("Coupa stayed unreachable")

    async def outage_watch() -> None:
        raise error

    async with engine.running():
        engine.spawn(outage_watch(), "outage-watch")
        await asyncio.wait_for(engine.stopped.wait(), 2)
    assert engine.fatal is error


async def test_an_exception_escaping_a_worker_stops_the_run() -> None:
    fakes = await make_fakes()

    class BrokenSession(FakeSession):
        async def renew(self, seen_generation: int) -> None:
            raise RuntimeError("renewal bug")

    fakes.services = dataclasses.replace(fakes.services, session=BrokenSession())
    job = ToyJob(failures={"a": [SessionExpiredError("sign-in page")]})
    engine, collector = make_engine(job, fakes)
    host = asyncio.current_task()
    assert host is not None
    async with engine.running():
        engine.submit("a", 0)
        engine.submit("b", 1)
        await asyncio.wait_for(engine.join(), 2)
    assert isinstance(engine.fatal, RunStoppedError)
    assert "worker-1" in str(engine.fatal) and "renewal bug" in str(engine.fatal)
    assert host.cancelling() == 0
    assert collector.results == [] and engine.pending_on_stop == ["a", "b"]


async def test_a_result_that_cannot_be_recorded_stops_the_run_and_stays_pending() -> None:
    fakes = await make_fakes()
    job = ToyJob()
    engine, collector = make_engine(job, fakes, Collector(fail_on="b"))
    async with engine.running():
        for priority, key in enumerate("abc"):
            engine.submit(key, priority)
        await asyncio.wait_for(engine.join(), 2)
        assert engine.stopped.is_set()
    assert isinstance(engine.fatal, RunStoppedError)
    assert "b" in str(engine.fatal) and "No space left" in str(engine.fatal)
    assert collector.keys == ["a"]
    assert job.finished == ["a", "b"]  # b ran; its result was not recorded
    assert engine.stats.done == 1
    assert engine.pending_on_stop == ["b", "c"]


# ----- scaling --------------------------------------------------------------------------------


async def test_scale_to_grows_and_shrinks_within_the_bounds() -> None:
    fakes = await make_fakes()
    engine, _ = make_engine(ToyJob(), fakes, workers=2, min_workers=2, max_workers=4)
    async with engine.running():
        await wait_until(lambda: len(idle_ids(engine)) == 2, "two idle workers")
        assert engine.scale_to(10) == 4
        assert engine.target == 4 == engine.max_workers
        await wait_until(lambda: idle_ids(engine) == {1, 2, 3, 4}, "four idle workers")
        assert engine.scale_to(0) == 2
        await wait_until(lambda: len(engine.slots) == 2, "two workers to retire")
        assert set(engine.slots) == {3, 4}  # all idle: the oldest retire first
        assert engine.scale_to(3) == 3
        await wait_until(lambda: len(idle_ids(engine)) == 3, "a new worker")
        assert set(engine.slots) == {3, 4, 5}  # ids are never reused
        assert engine.status().target_workers == 3
        assert len(engine.status().workers) == 3
    assert engine.slots == {}


async def test_shrinking_retires_preferred_workers_then_idle_ones() -> None:
    fakes = await make_fakes()
    holds = {"b1": asyncio.Event(), "b2": asyncio.Event()}
    job = ToyJob(hold=holds)
    engine, collector = make_engine(job, fakes, workers=4, max_workers=4)
    async with engine.running():
        await wait_until(lambda: len(idle_ids(engine)) == 4, "four idle workers")
        engine.submit("b1", 0)
        engine.submit("b2", 1)
        await wait_until(lambda: len(job.runs) == 2, "two busy workers")
        busy = [run.worker for run in job.runs]
        idle = sorted(set(engine.slots) - set(busy))
        # One busy worker named in prefer, then an idle one (before the other busy worker).
        assert engine.scale_to(2, prefer=[busy[0]]) == 2
        retiring = {slot.id for slot in engine.slots.values() if slot.retiring}
        assert busy[0] in retiring and busy[1] not in retiring
        assert len(retiring & set(idle)) == 1
        (retired_idle,) = retiring & set(idle)
        await wait_until(lambda: retired_idle not in engine.slots, "the idle one to go")
        assert engine.slots[busy[0]].state is WorkerState.DRAINING
        assert {s.id for s in engine.active_workers} == {busy[1], *(set(idle) - retiring)}
        for hold in holds.values():
            hold.set()
        await engine.join()
        await wait_until(lambda: busy[0] not in engine.slots, "the busy one to finish")
        # Without prefer, an idle worker goes before a busy one.
        holds["b3"] = asyncio.Event()
        engine.submit("b3", 0)
        await wait_until(lambda: len(job.runs) == 3, "one busy worker")
        third = job.runs[-1].worker
        assert engine.scale_to(1) == 1
        assert [s.id for s in engine.slots.values() if not s.retiring] == [third]
        holds["b3"].set()
        await engine.join()
    assert sorted(collector.keys) == ["b1", "b2", "b3"]  # the draining workers finished them
    assert job.cancelled == []


# ----- stopping -------------------------------------------------------------------------------


async def test_close_lets_an_item_in_flight_finish_within_the_grace() -> None:
    fakes = await make_fakes()
    release = asyncio.Event()

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        await asyncio.sleep(0.005)
        release.set()

    job = ToyJob(hook=hook)
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("slow", 0)
        engine.submit("next", 1)
        await wait_until(lambda: job.runs, "slow to start")
        await engine.close(5.0)
        assert release.is_set()
    assert collector.keys == ["slow"]
    assert job.cancelled == []
    assert engine.pending_on_stop == ["next"]  # queued, never started
    assert engine.slots == {}


async def test_close_cancels_an_item_in_flight_past_the_grace() -> None:
    fakes = await make_fakes()
    job = ToyJob(hold={"stuck": asyncio.Event()})  # never set
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("stuck", 0)
        engine.submit("next", 1)
        await wait_until(lambda: job.runs, "stuck to start")
        await engine.close(0.01)
    assert job.cancelled == ["stuck"]
    assert collector.results == []
    assert engine.pending_on_stop == ["stuck", "next"]
    assert fakes.contexts and all(context.closed for context in fakes.contexts)


async def test_close_while_the_host_is_down_gives_no_grace() -> None:
    fakes = await make_fakes()
    job = ToyJob(hold={"stuck": asyncio.Event()})
    engine, _ = make_engine(job, fakes, shutdown_grace_s=60.0)
    async with engine.running():
        engine.submit("stuck", 0)
        await wait_until(lambda: job.runs, "stuck to start")
        fakes.outage.is_down = True
        await asyncio.wait_for(engine.close(), 2)  # not 60 s
    assert engine.pending_on_stop == ["stuck"]


async def test_cancelling_the_task_inside_running_closes_with_no_grace() -> None:
    fakes = await make_fakes()
    job = ToyJob(hold={"stuck": asyncio.Event()})
    engine, collector = make_engine(job, fakes, shutdown_grace_s=60.0)
    graces: list[float | None] = []
    close = engine.close

    async def spy(grace_s: float | None = None) -> None:
        graces.append(grace_s)
        await close(grace_s)

    engine.close = spy  # type: ignore[method-assign]

    async def owner() -> None:
        async with engine.running():
            engine.submit("stuck", 0)
            engine.submit("next", 1)
            await asyncio.Event().wait()

    task = asyncio.create_task(owner())
    await wait_until(lambda: job.runs, "stuck to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert graces == [0]
    assert job.cancelled == ["stuck"]
    assert engine.pending_on_stop == ["stuck", "next"]
    assert collector.results == []


async def test_an_error_inside_running_closes_with_the_grace_and_propagates() -> None:
    fakes = await make_fakes()

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        await asyncio.sleep(0.005)

    job = ToyJob(hook=hook)
    engine, collector = make_engine(job, fakes)
    with pytest.raises(Exception) as caught:
        async with engine.running():
            engine.submit("a", 0)
            engine.submit("b", 1)
            await wait_until(lambda: job.runs, "a to start")
            raise LookupError("the caller's own bug")
    error = caught.value  # anyio's task group may wrap it in an ExceptionGroup
    assert isinstance(error, LookupError) or (
        isinstance(error, ExceptionGroup) and error.subgroup(LookupError) is not None
    )
    assert collector.keys == ["a"]  # finished within the grace
    assert engine.pending_on_stop == ["b"]


# ----- contexts -------------------------------------------------------------------------------


async def test_a_context_is_recycled_after_its_tasks_and_keeps_its_cookies() -> None:
    fakes = await make_fakes()
    fakes.session.state = {"cookies": fakes.session.cookies, "origins": []}

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        context = cast(FakeContext, slot.context)
        context.cookies.append({"name": f"seen-{item}", "value": "1", "url": "https://t.test"})

    job = ToyJob(hook=hook, use_page=True)
    engine, collector = make_engine(job, fakes, recycle_after_tasks=2)
    async with engine.running():
        for n in range(5):
            engine.submit(f"po-{n}", n)
        await engine.join()
    assert len(collector.results) == 5
    assert engine.contexts_opened == 3 == len(fakes.contexts)  # tasks 1-2, 3-4, 5
    first, second, third = fakes.contexts
    assert all(context.closed for context in fakes.contexts)  # the worker closed the last one
    assert first.storage == fakes.session.state  # a new context starts from the sign-in
    names = lambda context: [c["name"] for c in context.cookies]  # noqa: E731
    assert names(first) == ["session", "seen-po-0", "seen-po-1"]
    assert names(second) == ["session", "seen-po-0", "seen-po-1", "seen-po-2", "seen-po-3"]
    assert names(third)[:5] == names(second)  # carried over, not signed in afresh
    assert [context.cookie_loads for context in fakes.contexts] == [0, 0, 0]
    assert [len(context.pages) for context in fakes.contexts] == [1, 1, 1]  # kept between tasks


async def test_a_page_not_used_by_a_task_is_closed_after_it() -> None:
    fakes = await make_fakes()
    open_at_start: list[tuple[str, object]] = []

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        open_at_start.append((item, slot.open_page))
        if item.startswith("render"):
            await slot.page()

    job = ToyJob(hook=hook)
    engine, collector = make_engine(job, fakes)
    async with engine.running():
        for n, key in enumerate(["render-1", "render-2", "read-3", "render-4"]):
            engine.submit(key, n)
        await engine.join()
    assert len(collector.results) == 4
    (context,) = fakes.contexts
    first, second = context.pages  # one page for tasks 1-2 (read-3 closed it), one for task 4
    assert open_at_start == [
        ("render-1", None),
        ("render-2", first),  # kept from the task before
        ("read-3", first),  # still open: closed only after a task that did not use it
        ("render-4", None),
    ]
    assert first.closed and not second.closed


# ----- status ---------------------------------------------------------------------------------


async def test_status_figures() -> None:
    fakes = await make_fakes()
    holds = {"blockA": asyncio.Event(), "blockB": asyncio.Event()}
    job = ToyJob(hold=holds, failures={"r": [TransientError("HTTP 503")]})
    engine, collector = make_engine(
        job, fakes, workers=2, max_workers=2, backoff_base_s=30.0, backoff_cap_s=30.0
    )
    async with engine.running():
        status = engine.status()
        assert (status.queued, status.in_flight, status.waiting_retry, status.done) == (0, 0, 0, 0)
        for key, priority in [
            ("ok1", 0),
            ("r", 0),
            ("blockA", 1),
            ("blockB", 1),
            ("q1", 2),
            ("q2", 2),
            ("q3", 3),
        ]:
            engine.submit(key, priority)
        assert engine.status().queued == 7
        await wait_until(
            lambda: len(job.runs) == 4 and engine.stats.done == 1,
            "both workers blocked",
        )
        status = engine.status()
        assert status.queued == 3
        assert status.in_flight == 2
        assert status.waiting_retry == 1
        assert status.done == 1
        assert status.outcomes == {"ok": 1}
        assert status.target_workers == 2
        assert sorted((w.state, w.current_key) for w in status.workers) == [
            ("busy", "blockA"),
            ("busy", "blockB"),
        ]
        assert sum(w.tasks_done for w in status.workers) == 2
        assert status.paused_s == 0
        assert (status.session_renewals, status.browser_relaunches) == (0, 0)
        await engine.close(0)
    assert collector.keys == ["ok1"]
    assert engine.pending_on_stop == ["r", "blockA", "blockB", "q1", "q2", "q3"]


async def test_status_shows_what_each_worker_is_doing_and_idle_after() -> None:
    fakes = await make_fakes()
    steps = {key: [asyncio.Event(), asyncio.Event()] for key in ("a", "b")}
    said_again: dict[str, tuple[float, float]] = {}

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        slot.doing(f"fetching {item}")
        await steps[item][0].wait()
        before = slot.activity_since
        slot.doing(f"fetching {item}")  # the same activity again: its clock keeps running
        said_again[item] = (before, slot.activity_since)
        slot.doing(f"filing {item}")
        await steps[item][1].wait()

    job = ToyJob(hook=hook)
    engine, _ = make_engine(job, fakes, workers=2, max_workers=2)

    def doing() -> dict[str | None, str]:
        return {w.current_key: w.activity for w in engine.status().workers}

    async with engine.running():
        await wait_idle(engine, 2)
        assert [w.activity for w in engine.status().workers] == ["idle", "idle"]
        engine.submit("a", 0)
        engine.submit("b", 0)
        await wait_until(lambda: doing() == {"a": "fetching a", "b": "fetching b"}, "fetching")
        fetching_since = {w.current_key: w.activity_since for w in engine.status().workers}
        steps["a"][0].set()
        await wait_until(lambda: doing() == {"a": "filing a", "b": "fetching b"}, "a filing")
        status = {w.current_key: w for w in engine.status().workers}
        assert status["a"].activity_since >= fetching_since["a"]  # a new activity, a new clock
        assert status["b"].activity_since == fetching_since["b"]
        assert said_again["a"][0] == said_again["a"][1]
        for events in steps.values():
            for event in events:
                event.set()
        await engine.join()
        await wait_idle(engine, 2)
        workers = engine.status().workers
        assert [(w.current_key, w.activity) for w in workers] == [(None, "idle"), (None, "idle")]
        await engine.close()
    assert sorted(job.finished) == ["a", "b"]


async def test_a_worker_renewing_the_session_says_so() -> None:
    fakes = await make_fakes()
    seen_during_renewal: list[str] = []
    renew = fakes.session.renew

    async def noted_renew(seen_generation: int) -> None:
        seen_during_renewal.extend(w.activity for w in engine.status().workers)
        await renew(seen_generation)

    fakes.session.renew = noted_renew  # type: ignore[method-assign]
    expired = SessionExpiredError("Coupa answered with its sign-in page")
    job = ToyJob(failures={"a": [expired]})
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("a", 0)
        await engine.join()
    assert seen_during_renewal == ["signing in again"]
    assert collector.keys == ["a"]


# ----- regressions: engine bugs found by these tests -------------------------------------------


async def test_an_idle_worker_takes_no_item_while_the_host_is_paused() -> None:
    fakes = await make_fakes()
    gate_open_at_start: list[tuple[str, int, bool]] = []

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        gate_open_at_start.append((item, index, fakes.gate.is_open))
        if index == 0:
            await asyncio.sleep(0.001)
            raise RateLimitedError("429 Too Many Requests", retry_after_s=0.02)

    job = ToyJob(hook=hook)
    engine, _ = make_engine(job, fakes, workers=2, max_workers=2)
    async with engine.running():
        await wait_idle(engine, 2)
        engine.submit("limited", 0)
        await engine.join()
    assert gate_open_at_start == [("limited", 0, True), ("limited", 1, True)]


async def test_an_item_put_back_for_a_renewal_is_not_run_on_the_expired_cookies() -> None:
    fakes = await make_fakes(session_generation=1)

    async def hook(slot: WorkerSlot, item: str, index: int) -> None:
        await asyncio.sleep(0.002)
        if slot.cookie_generation == 1:  # generation 1 has expired
            raise SessionExpiredError("Coupa answered with its sign-in page")

    job = ToyJob(hook=hook)
    engine, collector = make_engine(job, fakes, workers=2, max_workers=2)
    async with engine.running():
        await wait_idle(engine, 2)
        engine.submit("a", 0)
        await engine.join()
    assert collector.keys == ["a"]
    assert [run.cookie_generation for run in job.runs] == [1, 2]
    assert fakes.session.seen == [1]


async def test_close_cancels_a_task_spawned_just_before() -> None:
    fakes = await make_fakes()
    engine, _ = make_engine(ToyJob(), fakes)

    async def forever() -> None:
        await asyncio.Event().wait()

    async with asyncio.timeout(10):  # a hang fails; not a measure
        async with engine.running():
            await wait_idle(engine, 1)
            engine.spawn(forever(), "watch")
            await engine.close(0)


async def test_a_worker_retired_while_starting_takes_no_item() -> None:
    fakes = await make_fakes()
    opened = asyncio.Event()
    slow_contexts(fakes, opened)
    job = ToyJob()
    engine, _ = make_engine(job, fakes, workers=2, max_workers=2)
    async with engine.running():
        await wait_until(lambda: len(engine.slots) == 2, "two workers")
        await asyncio.sleep(0.001)
        assert all(s.state is WorkerState.STARTING for s in engine.slots.values())
        engine.scale_to(1)
        (retired,) = [s.id for s in engine.slots.values() if s.retiring]
        opened.set()
        try:
            await wait_until(lambda: retired not in engine.slots, "the retired one", 0.1)
        except AssertionError:
            states = {s.id: s.state for s in engine.slots.values()}
        else:
            states = {}
        for n in range(4):
            engine.submit(f"po-{n}", 0)
        await engine.join()
    assert states == {}, f"the retired worker {retired} is still there: {states}"
    assert retired not in {run.worker for run in job.runs}


async def test_closing_while_workers_start_does_not_wait_the_grace() -> None:
    fakes = await make_fakes()
    opened = asyncio.Event()
    slow_contexts(fakes, opened)
    engine, _ = make_engine(ToyJob(), fakes, workers=2, shutdown_grace_s=60.0)
    async with asyncio.timeout(10):  # a hang fails; not a measure
        async with engine.running():
            await wait_until(lambda: len(engine.slots) == 2, "two workers")
            await asyncio.sleep(0.001)
            opened.set()  # the contexts open while the run is closing
    assert engine.slots == {}


async def test_a_journal_on_a_full_disk_stops_the_run_with_its_own_sentence() -> None:
    full = storage_error("the journal", OSError(28, "No space left on device"))

    class FullJournal(Collector):
        async def __call__(self, result: ToyResult) -> None:
            if result.key == "b":
                raise full
            await super().__call__(result)

    fakes = await make_fakes()
    engine, collector = make_engine(ToyJob(), fakes, FullJournal())
    async with engine.running():
        for priority, key in enumerate("abc"):
            engine.submit(key, priority)
        await asyncio.wait_for(engine.join(), 2)
    assert engine.fatal is full  # exit code 6 and the disk's sentence, not a wrapper
    assert collector.keys == ["a"]
    assert engine.pending_on_stop == ["b", "c"]


# ----- follow-ups: work after the worker, before the result settles ----------------------------


async def test_a_follow_up_frees_the_worker_and_the_item_settles_only_when_it_ends() -> None:
    fakes = await make_fakes()
    gates = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def follow(item: str, result: ToyResult) -> ToyResult:
        await gates[item].wait()
        return dataclasses.replace(result, reason=f"followed {item}")

    job = ToyJob(follow=lambda item, result: follow(item, result) if item in gates else None)
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        for key in ("a", "b", "c"):
            engine.submit(key, 0)
        # One worker ran all three while a and b were still in their follow-ups.
        await wait_until(lambda: job.finished == ["a", "b", "c"], "the worker to run all three")
        assert collector.keys == ["c"]
        assert engine.status().following == 2
        assert engine.status().in_flight == 2
        joined = asyncio.create_task(engine.join())
        await anyio.wait_all_tasks_blocked()
        assert not joined.done()  # join waits for the follow-ups
        gates["b"].set()
        await wait_until(lambda: collector.keys == ["c", "b"], "b to settle")
        gates["a"].set()
        await joined
    assert collector.keys == ["c", "b", "a"]
    assert collector.by_key()["a"].reason == "followed a"
    assert engine.stats.done == 3 and engine.status().following == 0
    assert engine.pending_on_stop == []


async def test_close_lets_a_follow_up_finish_within_the_grace() -> None:
    fakes = await make_fakes()

    async def follow(item: str, result: ToyResult) -> ToyResult:
        await asyncio.sleep(0.02)
        return dataclasses.replace(result, reason="followed")

    job = ToyJob(follow=follow)
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("a", 0)
        await wait_until(lambda: engine.status().following == 1, "the follow-up")
        await engine.close(5.0)
    assert collector.keys == ["a"] and collector.results[0].reason == "followed"
    assert engine.pending_on_stop == []


async def test_a_follow_up_past_the_grace_is_cancelled_and_its_item_stays_pending() -> None:
    fakes = await make_fakes()
    cancelled: list[str] = []

    async def follow(item: str, result: ToyResult) -> ToyResult:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return result

    job = ToyJob(follow=follow)
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("a", 0)
        engine.submit("b", 1)
        await wait_until(lambda: engine.status().following == 2, "two follow-ups")
        await engine.close(0.01)
    assert sorted(cancelled) == ["a", "b"]
    assert collector.results == []
    assert engine.pending_on_stop == ["a", "b"]


async def test_a_failing_follow_up_settles_the_result_as_it_was(logs: Logs) -> None:
    fakes = await make_fakes()

    async def follow(item: str, result: ToyResult) -> ToyResult:
        raise ValueError("a defect in the follow-up")

    job = ToyJob(follow=follow)
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("a", 0)
        await engine.join()
    assert collector.keys == ["a"] and collector.results[0].outcome == "ok"
    assert engine.fatal is None
    assert [entry["item"] for entry in events(logs, "follow_up_failed")] == ["a"]


async def test_a_full_disk_in_a_follow_up_stops_the_run_and_leaves_the_item_pending() -> None:
    fakes = await make_fakes()

    async def follow(item: str, result: ToyResult) -> ToyResult:
        raise storage_error("the output folder", OSError(28, "No space left on device"))

    job = ToyJob(follow=follow)
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        engine.submit("a", 0)
        engine.submit("b", 1)
        await engine.join()
    assert collector.results == []
    assert engine.fatal is not None and "space" in str(engine.fatal).lower()
    assert "a" in engine.pending_on_stop


async def test_past_its_share_of_follow_ups_a_worker_waits_for_its_own() -> None:
    fakes = await make_fakes()
    gate = asyncio.Event()

    async def follow(item: str, result: ToyResult) -> ToyResult:
        await gate.wait()
        return result

    job = ToyJob(follow=follow)
    # One worker, one follow-up off it: the second item's follow-up holds the worker.
    engine, collector = make_engine(job, fakes, workers=1, max_workers=1, follow_ups_per_worker=1)
    async with engine.running():
        for key in ("a", "b", "c"):
            engine.submit(key, 0)
        await wait_until(lambda: job.finished == ["a", "b"], "a and b to run")
        await anyio.wait_all_tasks_blocked()
        assert job.finished == ["a", "b"]  # c waits: the worker is busy with b's follow-up
        assert engine.status().following == 1
        gate.set()
        await engine.join()
    assert sorted(collector.keys) == ["a", "b", "c"]


async def test_an_item_that_meets_a_login_page_after_signing_in_fails_on_its_own() -> None:
    """A login page is a session expiry once per item; after that the item is charged, so a
    page that always answers with a login form cannot make the run sign in without end."""
    fakes = await make_fakes()
    job = ToyJob(failures={"b": [SessionExpiredError("a login page came back")] * 10})
    engine, collector = make_engine(job, fakes, workers=1)
    async with engine.running():
        for priority, key in enumerate("abc"):
            engine.submit(key, priority)
        await engine.join()
    assert engine.fatal is None
    assert fakes.session.renewals == 1
    assert sorted(collector.keys) == ["a", "b", "c"]
    assert [(item, attempts) for item, attempts, _ in job.gave_up] == [("b", 3)]
    assert "again after signing in" in job.gave_up[0][2]
    # one uncharged try for the expiry, then the three charged ones
    assert [run.attempt for run in job.runs_of("b")] == [1, 1, 2, 3]


async def test_a_429_from_another_host_delays_its_item_only_and_charges_it() -> None:
    fakes = await make_fakes()
    busy = RateLimitedError("files.example asks to wait", 0.05, other_host="files.example")
    job = ToyJob(failures={"a": [busy]})
    engine, collector = make_engine(job, fakes, workers=1, max_attempts=2)
    async with engine.running():
        engine.submit("a", 0)
        engine.submit("b", 1)
        await engine.join()
    assert collector.keys == ["b", "a"]  # b went on while a waited out the other host's pause
    assert fakes.services.gate.is_open and fakes.services.gate.pauses == 0
    assert [run.attempt for run in job.runs_of("a")] == [1, 2]
