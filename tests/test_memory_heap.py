"""Per-page JS heap readings over CDP, and that ``close`` leaves no CDP session attached."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, CDPSession
from playwright.async_api import Error as PlaywrightError

from coupa_async.memory.heap import PageHeaps

pytestmark = pytest.mark.browser


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context()
    yield context
    await context.close()


async def _detached(session: CDPSession) -> bool:
    try:
        await session.send("Performance.getMetrics")
    except PlaywrightError:
        return True
    return False


def _sessions(heaps: PageHeaps) -> dict[int, CDPSession]:
    return {worker_id: tap.session for worker_id, tap in heaps._taps.items()}


async def test_measure_reads_every_page_and_close_detaches(context: BrowserContext) -> None:
    pages = {1: await context.new_page(), 2: await context.new_page()}
    heaps = PageHeaps(timeout_s=5)
    readings = await heaps.measure(pages)
    assert set(readings) == {1, 2} and all(value > 0 for value in readings.values())
    sessions = _sessions(heaps)
    assert set(sessions) == {1, 2}

    await heaps.close()

    assert heaps._taps == {}
    assert [await _detached(s) for s in sessions.values()] == [True, True]
    assert not any(page.is_closed() for page in pages.values())  # detached, not closed
    assert await heaps.measure({}) == {}  # the old readings are forgotten too
    assert set(await heaps.measure(pages)) == {1, 2}  # usable again after close
    await heaps.close()


async def test_a_worker_gone_from_the_pages_is_detached(context: BrowserContext) -> None:
    pages = {1: await context.new_page(), 2: await context.new_page()}
    heaps = PageHeaps(timeout_s=5)
    await heaps.measure(pages)
    first = _sessions(heaps)[1]
    assert set(await heaps.measure({2: pages[2]})) == {2}
    assert await _detached(first)
    await heaps.close()


async def test_a_new_page_for_a_worker_gets_a_new_session(context: BrowserContext) -> None:
    heaps = PageHeaps(timeout_s=5)
    old = await context.new_page()
    await heaps.measure({1: old})
    old_session = _sessions(heaps)[1]
    new = await context.new_page()
    assert set(await heaps.measure({1: new})) == {1}
    assert _sessions(heaps)[1] is not old_session
    assert await _detached(old_session)
    await heaps.close()


async def test_close_after_the_pages_are_gone_does_not_raise(browser: Browser) -> None:
    context = await browser.new_context()
    heaps = PageHeaps(timeout_s=5)
    await heaps.measure({1: await context.new_page()})
    await context.close()
    await heaps.close()
    assert heaps._taps == {}
