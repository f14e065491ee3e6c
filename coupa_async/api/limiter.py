"""One rate limiter for every API request of a run: a token bucket, and a pause after a 429.

Coupa allows a client ``api.requests_per_s`` (25) with a burst of ``api.burst`` (20) and answers
429 past that. The bucket here holds a little less than the burst: requests leave it spaced as
the server's own bucket refills, and the margin absorbs the jitter between sending a request
and the server counting it. So no second holds more than rate + burst requests, and a
Retry-After is rare; when one comes, ``pause`` holds every caller until it is over.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import anyio

from coupa_async.log import get_logger
from coupa_async.session.gate import PauseCap

log = get_logger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
# Sent a little after the server's Retry-After ends, never on its edge.
PAUSE_MARGIN_S = 0.05
_EPSILON = 1e-6


def bucket_size(burst: int) -> int:
    """Requests the client lets out at once: the burst less a tenth (at least one less, when it
    can), so a request counted late by the server still finds a token there."""
    return max(1, burst - max(1, burst // 10))


class RateLimiter:
    """A token bucket (``rate`` a second, ``bucket_size(burst)`` at once) with pauses.

    Callers are served in turn (first come, first served); ``acquire`` returns when the caller
    may send one request. ``pause`` holds every caller, also one already waiting for a token.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_pause_s: float = 300.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if not (rate > 0 and burst >= 1 and max_pause_s > 0):
            raise ValueError("rate and max_pause_s must be > 0 and burst >= 1")
        self.rate = rate
        self.capacity = bucket_size(burst)
        self.max_pause_s = max_pause_s
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.capacity)
        self._updated = clock()
        self._paused_until = -math.inf
        self._turn = asyncio.Lock()
        self.granted = 0
        self.pauses = 0
        self._cap = PauseCap(
            max_pause_s, "api_retry_after_capped", "Coupa's API asked to wait longer than"
        )

    @property
    def paused_for_s(self) -> float:
        """Seconds left of the current pause (0 when none)."""
        return max(0.0, self._paused_until - self._clock())

    async def acquire(self) -> None:
        """Wait for the pause to end and for a token; take it."""
        async with self._turn:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1 - _EPSILON:  # not a wait of nothing for a rounding error
                    self._tokens = max(0.0, self._tokens - 1)
                    self.granted += 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)

    def pause(self, seconds: float) -> float:
        """Hold every caller ``seconds`` from now (a Retry-After), at most ``max_pause_s``;
        returns the pause applied. The bucket starts empty again after it."""
        seconds = self._cap.bound(seconds)
        now = self._clock()
        until = now + seconds + PAUSE_MARGIN_S
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1
            self._refill(now)
            self._tokens = min(self._tokens, 0.0)
        return seconds

    def _refill(self, now: float) -> None:
        # No tokens come back during a pause: they come back after it, from empty.
        since = max(self._updated, min(now, self._paused_until))
        self._tokens = min(self.capacity, self._tokens + max(0.0, now - since) * self.rate)
        self._updated = now
