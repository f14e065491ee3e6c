"""Shared fixtures: settings isolated from the machine, the real simulator, a real Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest
import structlog
from playwright.async_api import Browser, Playwright
from pydantic import SecretStr

from coupa_async.session.chromium import launch_browser, start_playwright
from coupa_async.settings import Settings, load_settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.catalog import RECIPES


def browser_main_processes() -> list[psutil.Process]:
    """The live Chromium main processes below this process (not their renderers or helpers)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            alive = child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            continue
        if alive and "--remote-debugging-pipe" in cmdline and "--type=" not in cmdline:
            found.append(child)
    return found


@pytest.fixture
def unfiltered_logs() -> Iterator[None]:
    """structlog's defaults around the test: ``capture_logs`` replaces the processors but not a
    level filter that an earlier test of this process configured (info events would be lost)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings from defaults and ``overrides`` only: no environment, .env or config file."""
    config = tmp / "empty.config"
    config.write_text("")
    return load_settings(
        overrides, config_file=config, env_file=tmp / "absent.env", environ={}
    ).settings


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("settings")
    return make_settings(tmp, storage_state=str(tmp / "state.json"))


@pytest.fixture(scope="session")
async def sim() -> AsyncIterator[Simulator]:
    """One varied catalog for the whole session (read-only: tests must not change faults)."""
    async with Simulator(SimConfig(seed=11, pos=len(RECIPES))) as simulator:
        yield simulator


def for_simulator(settings: Settings, sim: Simulator) -> Settings:
    """``settings`` pointed at ``sim``, with its credentials."""
    return settings.model_copy(
        update={
            "base_url": sim.base_url,
            "username": sim.username,
            "password": SecretStr(sim.password),
        }
    )


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
