"""Browser discovery and launch, and signing in to the simulator with the real browser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from coupa_async.coupa.discover import read_page
from coupa_async.engine import BrowserSupervisor
from coupa_async.errors import AuthenticationError, BrowserLaunchError, BrowserNotFoundError
from coupa_async.session.chromium import (
    QUIET_FLAGS,
    find_browser,
    launch_browser,
    launch_flags,
    new_context,
)
from coupa_async.settings import Settings
from coupa_async.signin.form import sign_in
from coupa_async.signin.saved_state import save_storage_state
from coupa_async.sim import SimConfig, Simulator

from .runkit import browser_main_processes, make_settings


def test_launch_flags_keep_chromium_quiet_and_add_the_users_own(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{"browser.args": ["--lang=de", "--no-first-run"]})
    flags = launch_flags(settings)
    assert all(flag in flags for flag in QUIET_FLAGS)
    assert flags.count("--no-first-run") == 1 and "--lang=de" in flags
    assert ("--no-sandbox" in flags) == (os.geteuid() == 0)
    assert "--disable-gpu" in flags  # headless by default: no GPU work
    windowed = make_settings(tmp_path, **{"browser.headless": False})
    assert "--disable-gpu" not in launch_flags(windowed)


def test_a_configured_executable_that_is_missing_is_named(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{"browser.executable_path": str(tmp_path / "nope")})
    with pytest.raises(BrowserNotFoundError, match="nope"):
        find_browser(settings, tmp_path / "bundled")


def test_unknown_channel_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{"browser.channel": "netscape"})
    with pytest.raises(BrowserNotFoundError, match="msedge"):
        find_browser(settings, tmp_path / "bundled")


def test_without_any_browser_the_message_says_what_was_tried(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    settings = make_settings(tmp_path)
    with pytest.raises(BrowserNotFoundError) as caught:
        find_browser(settings, tmp_path / "not-installed" / "chrome")
    message = str(caught.value)
    assert "Playwright's Chromium" in message and "on PATH" in message
    assert "COUPA_BROWSER__EXECUTABLE_PATH" in message


@pytest.mark.browser
def test_browser_command_names_the_browser_it_found() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coupa_async", "browser"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("browser: ")


async def test_smoke_sign_in_open_a_po_and_see_its_attachments(
    browser: Browser, sim: Simulator, sim_settings: Settings, tmp_path: Path
) -> None:
    context = await new_context(browser, sim_settings)
    try:
        await sign_in(
            context, sim.base_url, sim.username, sim.password, markers=sim_settings.markers
        )
        page = await context.new_page()
        po = next(p for p in sim.catalog.pos if p.expected_outcome == "COMPLETED" and p.files)
        await page.goto(f"{sim.base_url}/order_headers/{po.number}")
        await page.wait_for_load_state("load")
        await page.wait_for_timeout(500)  # lists filled in by script
        facts = read_page(await page.content(), page.url, sim_settings.markers)
        assert len(facts.attachments) == len({f.id for f in po.files})
        state_path = tmp_path / "private" / "state.json"
        state = await save_storage_state(context, state_path)
        assert state["cookies"] and state_path.stat().st_mode & 0o777 == 0o600
    finally:
        await context.close()


async def test_sign_in_through_an_identity_provider(browser: Browser, tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=4, pos=30, sso=True)) as sso:
        settings = make_settings(tmp_path, base_url=sso.base_url)
        context = await new_context(browser, settings)
        try:
            await sign_in(
                context, sso.base_url, sso.username, sso.password, markers=settings.markers
            )
            response = await context.request.get(f"{sso.base_url}/order_headers")
            assert response.ok and "/order_headers" in response.url
        finally:
            await context.close()


async def test_wrong_password_is_reported(browser: Browser, sim: Simulator, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, base_url=sim.base_url)
    context = await new_context(browser, settings)
    try:
        with pytest.raises(AuthenticationError, match="refused"):
            await sign_in(context, sim.base_url, sim.username, "wrong", markers=settings.markers)
    finally:
        await context.close()


def _browser_that_dies(tmp_path: Path, bundled: Path, times: int) -> Path:
    """A browser executable that is killed the first ``times`` starts, then is Chromium."""
    real = find_browser(make_settings(tmp_path), bundled).executable_path
    counter = tmp_path / "starts"
    script = tmp_path / "dying-browser"
    script.write_text(
        "#!/bin/sh\n"
        f'echo x >> "{counter}"\n'
        f'if [ "$(wc -l < "{counter}")" -le {times} ]; then kill -9 $$; fi\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.browser
@pytest.mark.parametrize("deaths", [2, 3])
async def test_a_browser_killed_while_starting_is_launched_again_up_to_three_times(
    tmp_path: Path, deaths: int
) -> None:
    async with async_playwright() as playwright:
        bundled = Path(playwright.chromium.executable_path)
        dying = _browser_that_dies(tmp_path, bundled, deaths)
        settings = make_settings(tmp_path, **{"browser.executable_path": str(dying)})
        supervisor = BrowserSupervisor(lambda: launch_browser(playwright, settings))
        if deaths < 3:
            browser = await supervisor.start()
            assert browser.is_connected() and browser.version
            await supervisor.close()
        else:
            with pytest.raises(BrowserLaunchError, match="Could not start"):
                await supervisor.start()
    assert (tmp_path / "starts").read_text().count("x") == 3


@pytest.mark.browser
async def test_a_context_asked_of_a_browser_killed_a_moment_ago_comes_from_a_relaunched_one(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    others = {process.pid for process in browser_main_processes()}  # the session's browser
    async with async_playwright() as playwright:
        supervisor = BrowserSupervisor(lambda: launch_browser(playwright, settings))
        await supervisor.start()
        # SIGKILL of this browser's main process, as the OOM killer would.
        (mine,) = [p for p in browser_main_processes() if p.pid not in others]
        mine.send_signal(signal.SIGKILL)
        context = await supervisor.context(lambda live: live.new_context())
        page = await context.new_page()
        await page.set_content("<p>alive</p>")
        assert await page.text_content("p") == "alive"
        assert supervisor.relaunches == 1
        await supervisor.close()
