"""Run statistics: outcomes counted, the rate over the last minute, and the ETA it gives."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable

RATE_WINDOW_S = 60.0


class RunStats:
    """Counts settled items by outcome and knows how fast they settle lately."""

    def __init__(
        self, window_s: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self.outcomes: Counter[str] = Counter()
        self.done = 0
        self._times: deque[float] = deque()

    def record(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self.done += 1
        self._times.append(self._clock())

    def rate_per_s(self) -> float:
        """Items per second over the last window: from its first settled item until now."""
        now = self._clock()
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        span = now - self._times[0] if self._times else 0.0
        return len(self._times) / span if span > 0.5 else 0.0

    def eta_s(self, remaining: int) -> float | None:
        """Seconds to settle ``remaining`` items at the current rate; None when unknown."""
        rate = self.rate_per_s()
        return remaining / rate if rate > 0 else None
