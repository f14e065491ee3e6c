"""Shared fixtures: settings isolated from the machine, the real simulator, a real Chromium."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

import aiohttp
import pytest
import structlog
from playwright.async_api import Browser, Playwright

from coupa_async.session.chromium import launch_browser, start_playwright
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.catalog import RECIPES

from .clikit import BROWSER_PATH_VAR, FORBIDDEN_BROWSER
from .runkit import for_simulator, make_settings

# Tests that start Chromium carry the ``browser`` marker, so that ``-m "not browser"`` (the fast
# lane, ``scripts/test --fast``) leaves out every one of them. The guard below enforces it: an
# unmarked test that launches Chromium in this process fails, and a command-line child of an
# unmarked test gets a browser path that does not exist (an environment variable the tool
# already honours), so it cannot launch one either.
UNMARKED = "this test starts Chromium: mark it `browser` (pytest.mark.browser)"
_current: pytest.Item | None = None
_violations: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: starts a real Chromium (in the test, through a fixture or the Downloader, or in "
        "a command-line child); scripts/test --fast leaves these out",
    )
    _guard_chromium_launches()


# Fixtures that start Chromium (a module adds its own in ``BROWSER_FIXTURES``): a test using
# one is marked ``browser`` here.
BROWSER_FIXTURES = frozenset({"browser", "playwright"})


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        own = getattr(getattr(item, "module", None), "BROWSER_FIXTURES", ())
        uses = set(getattr(item, "fixturenames", ()))
        if uses & (BROWSER_FIXTURES | set(own)) and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)
    items.sort(key=_start_order)


def _start_order(item: pytest.Item) -> int:
    """Long tests first, then the other browser tests, the quick ones last.

    scripts/test hands each process the next test in this order whenever it has at most two
    left (xdist's ``loadgroup``); a long test that started last would keep the suite waiting
    on one process while the others idle. The sort is stable: a module keeps its order.
    """
    if item.get_closest_marker("long") is not None:
        return 0
    return 1 if item.get_closest_marker("browser") is not None else 2


def _guard_chromium_launches() -> None:
    from playwright.async_api import BrowserType as AsyncBrowserType
    from playwright.sync_api import BrowserType as SyncBrowserType

    for browser_type in (AsyncBrowserType, SyncBrowserType):
        for name in ("launch", "launch_persistent_context"):
            method = getattr(browser_type, name)
            if not getattr(method, "_guarded", False):
                setattr(browser_type, name, _marked_only(method))


def _marked_only(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        item = _current
        if item is not None and item.get_closest_marker("browser") is None:
            _violations[item.nodeid] = UNMARKED
            raise UnmarkedBrowserTest(f"{item.nodeid}: {UNMARKED}")
        return method(*args, **kwargs)

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


class UnmarkedBrowserTest(BaseException):
    """Not an ``Exception``: no retry or error handling of the code under test swallows it."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator:
    global _current
    _current = item
    marked = item.get_closest_marker("browser") is not None
    saved = os.environ.get(BROWSER_PATH_VAR)
    if not marked:
        os.environ[BROWSER_PATH_VAR] = FORBIDDEN_BROWSER
    try:
        return (yield)
    finally:
        _current = None
        if saved is None:
            os.environ.pop(BROWSER_PATH_VAR, None)
        else:
            os.environ[BROWSER_PATH_VAR] = saved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    """A launch refused by the guard fails the test even if the code under test caught it."""
    report = yield
    reason = _violations.pop(item.nodeid, None)
    if reason is not None and report.passed:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: {reason}"
    elif reason is not None:
        report.sections.append(("browser marker", reason))
    return report


@pytest.fixture
def unfiltered_logs() -> Iterator[None]:
    """structlog's defaults around the test: ``capture_logs`` replaces the processors but not a
    level filter that an earlier test of this process configured (info events would be lost)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("settings")
    return make_settings(tmp, storage_state=str(tmp / "state.json"))


@pytest.fixture(scope="session")
async def sim() -> AsyncIterator[Simulator]:
    """One varied catalog for the whole session (read-only: tests must not change faults)."""
    async with Simulator(SimConfig(seed=11, pos=len(RECIPES))) as simulator:
        yield simulator


@pytest.fixture(scope="session")
def sim_settings(base_settings: Settings, sim: Simulator) -> Settings:
    return for_simulator(base_settings, sim)


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with start_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
async def browser(playwright: Playwright, base_settings: Settings) -> AsyncIterator[Browser]:
    chromium = await launch_browser(playwright, base_settings)
    yield chromium
    await chromium.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session
