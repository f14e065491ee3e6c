"""Per-worker memory: the JS heap of each worker's page, read through CDP.

It is a part of what a context costs (the renderer's own code and images are not in it), but it
is what grows when a page leaks, and it tells the workers apart. One CDP session per page is
kept and reused; all reads together are bounded by a timeout, and a page that does not answer in
time is left out. A busy machine answers slowly: when no page answered in time, the bound doubles
for the next read (up to ``MAX_TIMEOUT_S``), and comes back once every page answers.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import anyio
from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

MAX_TIMEOUT_S = 2.0


@dataclass(slots=True)
class _Tap:
    """The CDP session kept open on one worker's page."""

    page: Page
    session: CDPSession
    enabled: bool = False  # Performance.enable answered


class PageHeaps:
    """``measure({worker_id: page})`` -> ``{worker_id: JSHeapUsedSize}``; ``close()`` at the end."""

    def __init__(self, timeout_s: float = 0.2, stale_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.stale_s = stale_s
        self._bound_s = timeout_s  # the bound of the next read
        self._taps: dict[int, _Tap] = {}
        self._last: dict[int, tuple[float, int]] = {}  # worker id -> (monotonic, bytes)

    async def measure(self, pages: dict[int, Page]) -> dict[int, int]:
        """The JS heap of each page, in bytes.

        A page that does not answer within the bound keeps its last reading for ``stale_s``,
        then is left out. Sessions of workers no longer in ``pages`` are detached.
        """
        for worker_id in set(self._taps) - set(pages):
            await self._forget(worker_id)
        ids = list(pages)
        read: dict[int, int] = {}  # worker id -> bytes, of the pages that answered in time
        bound_s = self._bound_s

        async def read_one(worker_id: int) -> None:
            with contextlib.suppress(Exception), anyio.fail_after(bound_s):
                read[worker_id] = await self._heap(worker_id, pages[worker_id])

        async with anyio.create_task_group() as group:
            for worker_id in ids:
                group.start_soon(read_one, worker_id)
        answered = len(read)
        if ids and not answered:
            self._bound_s = min(self._bound_s * 2, max(MAX_TIMEOUT_S, self.timeout_s))
        elif answered == len(ids):
            self._bound_s = self.timeout_s
        now = time.monotonic()
        self._last = {
            w: v for w, v in self._last.items() if w in pages and now - v[0] < self.stale_s
        }
        for worker_id in ids:
            if worker_id in read:
                self._last[worker_id] = (now, read[worker_id])
        return {worker_id: value for worker_id, (_, value) in self._last.items()}

    async def _heap(self, worker_id: int, page: Page) -> int:
        tap = self._taps.get(worker_id)
        if tap is None or tap.page is not page:
            await self._forget(worker_id)
            # Kept before it is enabled: a read cut short by the timeout still leaves the
            # session where close() will detach it.
            tap = _Tap(page, await page.context.new_cdp_session(page))
            self._taps[worker_id] = tap
        try:
            if not tap.enabled:
                await tap.session.send("Performance.enable")
                tap.enabled = True
            answer = await tap.session.send("Performance.getMetrics")
        except PlaywrightError:
            await self._forget(worker_id)
            raise
        for metric in answer.get("metrics", []):
            if metric.get("name") == "JSHeapUsedSize":
                return int(metric["value"])
        raise LookupError("no JSHeapUsedSize")

    async def _forget(self, worker_id: int) -> None:
        """Detach the session of ``worker_id``, if any; one whose page is closed is gone already."""
        tap = self._taps.pop(worker_id, None)
        if tap is not None and not tap.page.is_closed():
            with (
                contextlib.suppress(PlaywrightError, TimeoutError),
                anyio.fail_after(self.timeout_s),
            ):
                await tap.session.detach()

    async def close(self) -> None:
        """Detach every CDP session, all at once, each within ``timeout_s``; forget the readings.

        Never raises for a page or browser that is gone. ``measure`` may be called again after.
        """
        ids = list(self._taps)
        async with anyio.create_task_group() as group:
            for worker_id in ids:
                group.start_soon(self._forget, worker_id)
        self._last.clear()
