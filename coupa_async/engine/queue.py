"""The work queue: priorities, one entry per key, due retries with jittered backoff.

Lower priority numbers go first, first in first out within one. An entry taken by a worker
stays known (in flight) until it is settled, put back (not the item's fault: no attempt
charged) or charged (an attempt used: retried after a backoff, ahead of entries not yet
started). Retries wait in a heap of due times, not in timer tasks.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


@dataclass(order=True, slots=True)
class Entry(Generic[T]):
    """One item in the queue, with its attempt number (1 for the first try)."""

    priority: int
    sequence: int
    key: str = field(compare=False)
    item: T = field(compare=False)
    attempt: int = field(default=1, compare=False)
    # Login answers this item met that were taken for an expired session (see sign_ins_per_item).
    session_expiries: int = field(default=0, compare=False)


def jittered_backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait before try ``attempt + 1``: half the ceiling plus up to half again."""
    ceiling = min(cap_s, base_s * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class WorkQueue(Generic[T]):
    """Entries by priority; each key once, whether queued, waiting to retry or in flight."""

    def __init__(
        self,
        *,
        max_attempts: int,
        backoff: Callable[[int], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_attempts = max_attempts
        self._backoff = backoff
        self._clock = clock
        self._ready: list[Entry[T]] = []
        self._waiting: list[tuple[float, int, Entry[T]]] = []  # (due, tie-break, entry)
        self._known: dict[str, Entry[T]] = {}
        self._in_flight: dict[str, Entry[T]] = {}
        self._sequence = itertools.count()
        self._changed = anyio.Event()  # set by each change; replaced once seen
        self._empty = anyio.Event()  # replaced by an unset one when a key comes
        self._empty.set()

    # ----- in ---------------------------------------------------------------------------------

    def add(self, key: str, item: T, priority: int) -> bool:
        """Queue ``item``; False when its key is already known (queued, waiting or in flight)."""
        if key in self._known:
            return False
        entry = Entry(priority, next(self._sequence), key, item)
        self._known[key] = entry
        if self._empty.is_set():
            self._empty = anyio.Event()
        self._push(entry)
        return True

    def put_back(self, entry: Entry[T]) -> None:
        """Back in, not charged: the item was not at fault. It goes ahead of untouched ones."""
        self._in_flight.pop(entry.key, None)
        entry.sequence = -next(self._sequence)
        self._push(entry)

    def untake(self, entry: Entry[T]) -> None:
        """Back in exactly where it was: taken, but not started."""
        self._in_flight.pop(entry.key, None)
        self._push(entry)

    def charge(self, entry: Entry[T], at_least_s: float = 0.0) -> float | None:
        """One attempt used: the seconds until it is retried, or None when none is left.

        With attempts left the entry waits out its backoff, then goes ahead of entries not yet
        started (at its own priority), so a run's tail is not one item's retries in a row.
        When none is left it stays known until ``settle``. ``at_least_s``: a wait the retry may
        not start before (a host's Retry-After), if longer than the backoff.
        """
        self._in_flight.pop(entry.key, None)
        if entry.attempt >= self.max_attempts:
            return None
        delay = max(self._backoff(entry.attempt), at_least_s)
        entry.attempt += 1
        entry.sequence = -next(self._sequence)
        heapq.heappush(self._waiting, (self._clock() + delay, next(self._sequence), entry))
        self._changed.set()
        return delay

    def settle(self, key: str) -> None:
        """The item is done: forget it."""
        self._known.pop(key, None)
        self._in_flight.pop(key, None)
        if not self._known:
            self._empty.set()

    # ----- out --------------------------------------------------------------------------------

    async def get(self) -> Entry[T]:
        """The next entry (now in flight); waits for one, or for a retry to fall due.

        Cancellation-safe: an entry is taken only when this returns.
        """
        while True:
            self._promote_due()
            if self._ready:
                entry = heapq.heappop(self._ready)
                self._in_flight[entry.key] = entry
                return entry
            if self._changed.is_set():
                self._changed = anyio.Event()
            with anyio.move_on_after(self._next_due_in()):
                await self._changed.wait()

    @property
    def drained(self) -> anyio.Event:
        """Set while no key is known (every item settled); a key added later does not unset
        an event already handed out (it is replaced)."""
        return self._empty

    def forget_all(self) -> list[T]:
        """Every item not settled (queued, waiting or in flight), in priority order; clears."""
        left = sorted(self._known.values())
        self._known.clear()
        self._in_flight.clear()
        self._ready.clear()
        self._waiting.clear()
        self._empty.set()
        return [entry.item for entry in left]

    # ----- figures ----------------------------------------------------------------------------

    def __contains__(self, key: str) -> bool:
        return key in self._known

    @property
    def queued(self) -> int:
        """Entries ready to be taken now (due retries included)."""
        self._promote_due()
        return len(self._ready)

    @property
    def waiting_retry(self) -> int:
        self._promote_due()
        return len(self._waiting)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def known(self) -> int:
        return len(self._known)

    def has_work(self) -> bool:
        """Whether anything is ready or waiting to be retried."""
        return bool(self._ready or self._waiting)

    # ----- inside -----------------------------------------------------------------------------

    def _push(self, entry: Entry[T]) -> None:
        heapq.heappush(self._ready, entry)
        self._changed.set()

    def _promote_due(self) -> None:
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, entry = heapq.heappop(self._waiting)
            heapq.heappush(self._ready, entry)

    def _next_due_in(self) -> float | None:
        if not self._waiting:
            return None
        return max(0.0, self._waiting[0][0] - self._clock())
