"""Per-worker memory: the JS heap of each worker's page, read through CDP.

It is a part of what a context costs (the renderer's own code and images are not in it), but it
is what grows when a page leaks, and it tells the workers apart. One CDP session per page is
kept and reused; all reads together are bounded by a timeout, and a page that does not answer in
time is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError


class PageHeaps:
    """``measure({worker_id: page})`` -> ``{worker_id: JSHeapUsedSize}``."""

    def __init__(self, timeout_s: float = 0.2, stale_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.stale_s = stale_s
        self._sessions: dict[int, tuple[Page, CDPSession]] = {}
        self._last: dict[int, tuple[float, int]] = {}  # worker id -> (monotonic, bytes)

    async def measure(self, pages: dict[int, Page]) -> dict[int, int]:
        for worker_id in set(self._sessions) - set(pages):
            await self._forget(worker_id)
        ids = list(pages)
        reads = [asyncio.wait_for(self._heap(w, pages[w]), self.timeout_s) for w in ids]
        answers = await asyncio.gather(*reads, return_exceptions=True)
        now = time.monotonic()
        self._last = {
            w: v for w, v in self._last.items() if w in pages and now - v[0] < self.stale_s
        }
        for worker_id, answer in zip(ids, answers, strict=True):
            if isinstance(answer, int):
                self._last[worker_id] = (now, answer)
        return {worker_id: value for worker_id, (_, value) in self._last.items()}

    async def _heap(self, worker_id: int, page: Page) -> int:
        cached = self._sessions.get(worker_id)
        if cached is None or cached[0] is not page:
            await self._forget(worker_id)
            session = await page.context.new_cdp_session(page)
            await session.send("Performance.enable")
            self._sessions[worker_id] = (page, session)
            cached = (page, session)
        try:
            answer = await cached[1].send("Performance.getMetrics")
        except PlaywrightError:
            self._sessions.pop(worker_id, None)
            raise
        for metric in answer.get("metrics", []):
            if metric.get("name") == "JSHeapUsedSize":
                return int(metric["value"])
        raise LookupError("no JSHeapUsedSize")

    async def _forget(self, worker_id: int) -> None:
        cached = self._sessions.pop(worker_id, None)
        if cached is not None and not cached[0].is_closed():
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await asyncio.wait_for(cached[1].detach(), self.timeout_s)

    async def close(self) -> None:
        for worker_id in list(self._sessions):
            await self._forget(worker_id)
