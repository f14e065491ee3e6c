"""The engine's work queue alone: order, one entry per key, put back, charge, due retries."""

from __future__ import annotations

import asyncio
import contextlib
import random

import anyio
import pytest

from coupa_async.engine import queue as queue_module
from coupa_async.engine.queue import Entry, WorkQueue, jittered_backoff


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_queue(
    *, max_attempts: int = 3, delay_s: float = 5.0, clock: FakeClock | None = None
) -> tuple[WorkQueue[str], list[int], FakeClock]:
    asked: list[int] = []

    def backoff(attempt: int) -> float:
        asked.append(attempt)
        return delay_s

    clock = clock or FakeClock()
    return WorkQueue(max_attempts=max_attempts, backoff=backoff, clock=clock), asked, clock


async def take(queue: WorkQueue[str]) -> Entry[str]:
    """The next entry, which must be ready now: a short real timeout turns a wait into a failure."""
    async with asyncio.timeout(0.5):
        return await queue.get()


async def nothing_ready(queue: WorkQueue[str]) -> bool:
    """Whether ``get()`` would wait (it is cancelled after a moment, taking nothing)."""
    try:
        async with asyncio.timeout(0.01):
            await queue.get()
    except TimeoutError:
        return True
    return False


async def take_keys(queue: WorkQueue[str], n: int) -> list[str]:
    return [(await take(queue)).key for _ in range(n)]


# ----- order ----------------------------------------------------------------------------------


async def test_lower_priority_numbers_first_and_fifo_within_one() -> None:
    queue, _, _ = make_queue()
    for key, priority in [("c1", 2), ("a1", 0), ("b1", 1), ("a2", 0), ("c2", 2), ("b2", 1)]:
        assert queue.add(key, f"item-{key}", priority)
    taken = [await take(queue) for _ in range(6)]
    assert [entry.key for entry in taken] == ["a1", "a2", "b1", "b2", "c1", "c2"]
    assert [entry.item for entry in taken] == [f"item-{e.key}" for e in taken]
    assert all(entry.attempt == 1 for entry in taken)
    assert await nothing_ready(queue)


# ----- one entry per key ----------------------------------------------------------------------


async def test_add_refuses_a_known_key_until_it_is_settled() -> None:
    queue, _, _ = make_queue()
    assert queue.add("k", "first", 1)
    assert not queue.add("k", "queued twice", 0)  # queued
    entry = await take(queue)
    assert not queue.add("k", "in flight", 0)  # in flight
    assert queue.charge(entry) is not None
    assert not queue.add("k", "waiting", 0)  # waiting to retry
    assert "k" in queue and queue.known == 1
    queue.settle("k")
    assert "k" not in queue and queue.known == 0
    assert queue.add("k", "again", 0)
    again = await take(queue)
    assert (again.item, again.attempt) == ("again", 1)


async def test_a_settled_key_in_flight_can_be_added_again() -> None:
    queue, _, _ = make_queue()
    queue.add("k", "one", 0)
    await take(queue)
    queue.settle("k")
    assert queue.in_flight == 0
    assert queue.add("k", "two", 0)


# ----- put back -------------------------------------------------------------------------------


async def test_put_back_keeps_the_attempt_and_goes_ahead_of_untouched_entries() -> None:
    queue, asked, _ = make_queue()
    for key in ("a", "b", "c"):
        queue.add(key, key, 1)
    queue.add("urgent", "urgent", 0)
    queue.settle((await take(queue)).key)
    entry = await take(queue)
    assert entry.key == "a"
    queue.put_back(entry)
    assert (queue.queued, queue.in_flight, queue.known) == (3, 0, 3)
    again = await take(queue)
    assert again is entry and again.attempt == 1
    assert asked == []  # no backoff asked: nothing charged
    queue.put_back(again)
    queue.add("late-urgent", "late-urgent", 0)
    # A put-back entry goes ahead of untouched ones of its priority, not of a more urgent one.
    assert await take_keys(queue, 4) == ["late-urgent", "a", "b", "c"]


async def test_put_back_many_times_never_charges() -> None:
    queue, asked, _ = make_queue(max_attempts=1)
    queue.add("k", "k", 0)
    for _ in range(10):
        entry = await take(queue)
        queue.put_back(entry)
    entry = await take(queue)
    assert entry.attempt == 1 and asked == []
    assert queue.charge(entry) is None  # the one attempt is still there to be used


# ----- charge and due retries -----------------------------------------------------------------


async def test_charge_uses_an_attempt_and_waits_out_the_backoff() -> None:
    queue, asked, clock = make_queue(delay_s=5.0)
    queue.add("k", "k", 0)
    entry = await take(queue)
    assert queue.charge(entry) == 5.0
    assert asked == [1]  # the backoff is asked about the attempt just used
    assert entry.attempt == 2
    assert (queue.queued, queue.waiting_retry, queue.in_flight, queue.known) == (0, 1, 0, 1)
    assert queue.has_work()
    clock.advance(4.9)
    assert await nothing_ready(queue)
    assert queue.waiting_retry == 1
    clock.advance(0.1)
    retried = await take(queue)
    assert retried is entry and retried.attempt == 2
    assert (queue.queued, queue.waiting_retry, queue.in_flight) == (0, 0, 1)
    assert queue.charge(retried) == 5.0
    assert asked == [1, 2] and retried.attempt == 3


async def test_a_waiting_retry_does_not_hold_up_other_entries() -> None:
    queue, _, clock = make_queue(delay_s=5.0)
    queue.add("r", "r", 0)
    queue.charge(await take(queue))
    queue.add("x", "x", 5)
    assert (await take(queue)).key == "x"
    assert await nothing_ready(queue)
    clock.advance(5)
    assert (await take(queue)).key == "r"


async def test_a_due_retry_goes_ahead_of_untouched_entries_but_not_of_a_more_urgent_one() -> None:
    queue, _, clock = make_queue(delay_s=1.0)
    queue.add("r", "r", 1)
    queue.charge(await take(queue))
    queue.add("y", "y", 1)
    queue.add("z", "z", 1)
    queue.add("later", "later", 2)
    queue.add("urgent", "urgent", 0)
    clock.advance(1.0)
    assert await take_keys(queue, 5) == ["urgent", "r", "y", "z", "later"]


async def test_retries_fall_due_in_the_order_of_their_due_times() -> None:
    delays = iter([3.0, 1.0, 2.0])
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(
        max_attempts=3, backoff=lambda attempt: next(delays), clock=clock
    )
    for key in ("a", "b", "c"):
        queue.add(key, key, 0)
    for entry in [await take(queue) for _ in range(3)]:
        queue.charge(entry)
    clock.advance(1.0)
    assert await take_keys(queue, 1) == ["b"]
    assert await nothing_ready(queue)
    clock.advance(1.0)
    assert await take_keys(queue, 1) == ["c"]
    clock.advance(1.0)
    assert await take_keys(queue, 1) == ["a"]


async def test_a_waiting_get_wakes_when_a_retry_falls_due() -> None:
    queue: WorkQueue[str] = WorkQueue(max_attempts=3, backoff=lambda attempt: 0.01)
    queue.add("k", "k", 0)
    queue.charge(await queue.get())
    async with asyncio.timeout(1.0):  # woken by the due time, not by an add
        entry = await queue.get()
    assert (entry.key, entry.attempt) == ("k", 2)


async def test_a_waiting_get_wakes_on_add_and_on_put_back() -> None:
    queue, _, _ = make_queue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add("k", "k", 0)
    entry = await asyncio.wait_for(waiter, 0.5)
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.put_back(entry)
    assert (await asyncio.wait_for(waiter, 0.5)) is entry


async def test_a_get_waiting_for_a_retry_is_woken_by_an_add() -> None:
    queue: WorkQueue[str] = WorkQueue(max_attempts=3, backoff=lambda attempt: 60.0)
    queue.add("slow", "slow", 0)
    queue.charge(await queue.get())
    waiter = asyncio.create_task(queue.get())
    await anyio.wait_all_tasks_blocked()
    assert not waiter.done()
    queue.add("new", "new", 9)
    assert (await asyncio.wait_for(waiter, 0.5)).key == "new"


async def test_charge_at_max_attempts_returns_none_and_keeps_the_key_until_settled() -> None:
    queue, asked, clock = make_queue(max_attempts=2, delay_s=1.0)
    queue.add("k", "k", 0)
    assert queue.charge(await take(queue)) == 1.0
    clock.advance(1.0)
    last = await take(queue)
    assert last.attempt == 2
    assert queue.charge(last) is None
    assert asked == [1]  # no backoff for a retry that will not happen
    assert last.attempt == 2
    assert (queue.queued, queue.waiting_retry, queue.in_flight, queue.known) == (0, 0, 0, 1)
    assert "k" in queue and not queue.add("k", "k", 0)
    assert not queue.drained.is_set()
    assert not queue.has_work()
    queue.settle("k")
    assert queue.known == 0 and queue.drained.is_set()


# ----- cancellation, forgetting, figures --------------------------------------------------------


async def test_a_cancelled_get_loses_nothing() -> None:
    queue, _, _ = make_queue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("k", "k", 0)
    waiter.cancel()  # woken, but cancelled before it could take the entry
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    assert waiter.cancelled()
    assert (queue.queued, queue.in_flight, queue.known) == (1, 0, 1)
    assert (await take(queue)).key == "k"


async def test_a_get_cancelled_while_waiting_for_a_retry_loses_nothing() -> None:
    # The retry is due after 0.3 s: a loaded machine still cancels the get well before.
    queue: WorkQueue[str] = WorkQueue(max_attempts=3, backoff=lambda attempt: 0.3)
    queue.add("k", "k", 0)
    queue.charge(await queue.get())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.001):
            await queue.get()
    assert (queue.waiting_retry, queue.in_flight, queue.known) == (1, 0, 1)
    async with asyncio.timeout(5.0):
        assert (await queue.get()).attempt == 2


async def test_forget_all_returns_everything_unsettled_in_priority_order() -> None:
    queue, _, _ = make_queue(delay_s=60.0)
    queue.add("done", "done", 0)
    queue.add("flying", "flying", 1)
    queue.add("retrying", "retrying", 2)
    queue.add("queued-late", "queued-late", 3)
    queue.add("queued", "queued", 1)
    queue.settle((await take(queue)).key)
    assert (await take(queue)).key == "flying"
    queue.charge(await take(queue))  # "queued" now waits to be retried
    assert (queue.queued, queue.waiting_retry, queue.in_flight) == (2, 1, 1)
    assert not queue.drained.is_set()
    left = queue.forget_all()
    assert left == ["queued", "flying", "retrying", "queued-late"]  # a retry is ahead in its rank
    assert (queue.queued, queue.waiting_retry, queue.in_flight, queue.known) == (0, 0, 0, 0)
    assert queue.drained.is_set() and not queue.has_work()
    assert queue.add("flying", "flying", 0)  # nothing of the old entries is left


async def test_counters_follow_every_step() -> None:
    queue, _, clock = make_queue(delay_s=1.0)
    figures = lambda: (queue.queued, queue.waiting_retry, queue.in_flight, queue.known)  # noqa: E731
    assert figures() == (0, 0, 0, 0)
    queue.add("a", "a", 0)
    queue.add("b", "b", 0)
    assert figures() == (2, 0, 0, 2)
    a = await take(queue)
    assert figures() == (1, 0, 1, 2)
    queue.charge(a)
    assert figures() == (1, 1, 0, 2)
    b = await take(queue)
    assert figures() == (0, 1, 1, 2)
    queue.put_back(b)
    assert figures() == (1, 1, 0, 2)
    clock.advance(1.0)
    assert sorted([(await take(queue)).key, (await take(queue)).key]) == ["a", "b"]
    assert figures() == (0, 0, 2, 2)
    queue.settle("a")
    assert figures() == (0, 0, 1, 1)
    queue.settle("b")
    assert figures() == (0, 0, 0, 0)


async def test_drained_is_set_only_while_no_key_is_known() -> None:
    queue, _, _ = make_queue()
    assert queue.drained.is_set()
    queue.add("a", "a", 0)
    queue.add("b", "b", 0)
    assert not queue.drained.is_set()
    waiter = asyncio.create_task(queue.drained.wait())
    queue.settle((await take(queue)).key)
    await asyncio.sleep(0)
    assert not waiter.done() and not queue.drained.is_set()
    entry = await take(queue)
    queue.put_back(entry)
    assert not queue.drained.is_set()
    queue.settle("b")
    await asyncio.wait_for(waiter, 0.5)
    assert queue.drained.is_set()
    queue.settle("b")  # settling twice is harmless
    assert queue.drained.is_set() and queue.known == 0


# ----- backoff --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 30.0), (7, 30.0), (20, 30.0)],
)
def test_jittered_backoff_stays_between_half_the_ceiling_and_the_ceiling(
    attempt: int, ceiling: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [jittered_backoff(attempt, 1.0, 30.0) for _ in range(200)]
    assert all(ceiling / 2 <= s <= ceiling for s in samples), (min(samples), max(samples))
    assert max(samples) - min(samples) > 0  # jittered, not fixed
    monkeypatch.setattr(queue_module.random, "uniform", lambda low, high: high)
    assert jittered_backoff(attempt, 1.0, 30.0) == pytest.approx(ceiling)
    monkeypatch.setattr(queue_module.random, "uniform", lambda low, high: low)
    assert jittered_backoff(attempt, 1.0, 30.0) == pytest.approx(ceiling / 2)


def test_jittered_backoff_ceiling_doubles_up_to_the_cap() -> None:
    random.seed(7)
    highs = []
    for attempt in range(1, 10):
        samples = [jittered_backoff(attempt, 0.25, 10.0) for _ in range(300)]
        highs.append(max(samples))
    ceilings = [min(10.0, 0.25 * 2 ** (n - 1)) for n in range(1, 10)]
    assert ceilings[:7] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    for high, ceiling in zip(highs, ceilings, strict=True):
        assert ceiling * 0.9 <= high <= ceiling  # the top of the range is reached, not passed
