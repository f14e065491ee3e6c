"""The gate every request to Coupa passes: closed while the host asks us to wait (429), while
the session is being renewed, or while Coupa cannot be reached, so no worker sends anything
meanwhile."""

from __future__ import annotations

import asyncio

# Loop clocks and the server's clock tick differently; arrive a little after the deadline.
RETRY_AFTER_MARGIN_S = 0.05


class HostGate:
    """Open by default; ``pause_for`` and ``close`` hold every caller of ``wait``."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._closed_for: set[str] = set()
        self._paused_until = 0.0
        self.pauses = 0

    @property
    def is_open(self) -> bool:
        return self._open.is_set() and self.remaining_pause_s == 0

    @property
    def remaining_pause_s(self) -> float:
        return max(0.0, self._paused_until - asyncio.get_running_loop().time())

    async def wait(self) -> None:
        """Return once the host may be contacted."""
        while True:
            await self._open.wait()
            delay = self.remaining_pause_s
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    def pause_for(self, seconds: float) -> None:
        """No request before ``seconds`` from now (the host's Retry-After)."""
        until = asyncio.get_running_loop().time() + seconds + RETRY_AFTER_MARGIN_S
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1

    def close(self, reason: str = "session") -> None:
        """Hold every caller until ``open`` is called with the same reason (and no other)."""
        self._closed_for.add(reason)
        self._open.clear()

    def open(self, reason: str = "session") -> None:
        self._closed_for.discard(reason)
        if not self._closed_for:
            self._open.set()

    def closed_for(self, reason: str) -> bool:
        return reason in self._closed_for
