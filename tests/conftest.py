"""Shared fixtures: settings isolated from the machine, the real simulator, a real Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import structlog
from playwright.async_api import Browser, Playwright

from coupa_async.session.chromium import launch_browser, start_playwright
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.catalog import RECIPES

from .runkit import for_simulator, make_settings


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
