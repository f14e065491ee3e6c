"""The pages' scripts in a real Chromium: lazy attachments, the covering toolbar, click-only
downloads."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from coupa_async.sim import SimConfig, Simulator

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.browser
@pytest.mark.timeout(60)
async def test_scripts_in_chromium() -> None:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine")
    async with Simulator(SimConfig(seed=7, pos=30)) as sim, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(accept_downloads=True)
            page = await context.new_page()
            po = next(p for p in sim.catalog.pos if p.recipe == "all_traits")
            await page.goto(sim.base_url + po.url_path)
            assert "/sessions/new" in page.url
            await page.fill("#user_login", sim.username)
            await page.fill("input[name='user[password]']", sim.password)
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            assert page.url == sim.base_url + po.url_path

            await page.wait_for_selector("#attachments:not([data-loading])", timeout=5000)
            assert await page.locator("#attachments [data-file-id], #attachments a").count() == 3
            with pytest.raises(PlaywrightError):  # the floating toolbar takes the click
                await page.click("#attachments a", timeout=800)

            for element in await page.query_selector_all("[data-file-id]"):
                f = sim.catalog.file(int(await element.get_attribute("data-file-id") or 0))
                async with page.expect_download(timeout=10_000) as info:
                    await element.dispatch_event("click")
                download = await info.value
                assert download.suggested_filename == f.name
                data = await asyncio.to_thread(Path(await download.path()).read_bytes)
                assert hashlib.sha256(data).hexdigest() == f.sha256
            assert page.url == sim.base_url + po.url_path  # downloads do not navigate away
        finally:
            await browser.close()
