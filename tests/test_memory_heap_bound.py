"""The bound of a heap read grows on a machine too busy to answer in time (no browser)."""

from __future__ import annotations

import asyncio
from typing import Any

from coupa_async.memory.heap import MAX_TIMEOUT_S, PageHeaps


class _SlowSession:
    """A CDP session whose metrics take ``delay_s`` to come (a renderer on a busy machine)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def send(self, method: str, params: Any = None) -> dict[str, Any]:
        if method == "Performance.getMetrics":
            await asyncio.sleep(self.delay_s)
            return {"metrics": [{"name": "JSHeapUsedSize", "value": 4096}]}
        return {}

    async def detach(self) -> None:
        return None


class _Page:
    def __init__(self, session: _SlowSession) -> None:
        self.session = session
        self.context = self

    async def new_cdp_session(self, page: object) -> _SlowSession:
        return self.session

    def is_closed(self) -> bool:
        return False


async def test_a_page_slower_than_the_bound_is_read_once_the_bound_has_grown() -> None:
    session = _SlowSession(delay_s=0.3)
    page = _Page(session)
    heaps = PageHeaps(timeout_s=0.01, stale_s=0.0)  # no earlier reading stands in for a miss
    readings: dict[int, int] = {}
    reads = 0
    # With a fixed bound of 10 ms this page would never be read; the bound doubles per miss
    # (10, 20, 40 … ms, at most MAX_TIMEOUT_S), so it is read within a few reads.
    while not readings and reads < 12:
        readings = await heaps.measure({1: page})  # type: ignore[dict-item]
        reads += 1
    assert readings == {1: 4096}, f"no reading after {reads} reads"
    assert reads > 1  # the first read, at 10 ms, could not have answered
    # Once every page answers in time, the bound is the configured one again: the slow page is
    # missed again at the next read.
    session.delay_s = 0.0
    assert await heaps.measure({1: page}) == {1: 4096}  # type: ignore[dict-item]
    session.delay_s = MAX_TIMEOUT_S
    assert await heaps.measure({1: page}) == {}  # type: ignore[dict-item]
    await heaps.close()
