"""The pages' scripts in a real Chromium: lazy and late attachment lists, the covering toolbar,
click-only downloads."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError
from sim_testkit import LATE_RECIPES

from coupa_async.sim import SimConfig, SimFile, Simulator
from coupa_async.sim.catalog import LateFill
from coupa_async.sim.pages import attachment_html

LatePage = tuple[str, tuple[SimFile, ...], LateFill]  # (page path, files, late list)

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
    config = SimConfig(seed=7, pos=2, recipes=("plain_links", "all_traits"))
    async with Simulator(config) as sim, async_playwright() as pw:
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


# Records, from the page's first script on: the list's element count at DOMContentLoaded, then
# each change of the list with its time since navigation start.
_WATCH_LIST = """
window.__late = {dcl: null, dclText: null, fills: []};
document.addEventListener('DOMContentLoaded', function () {
  var box = document.getElementById('attachments');
  window.__late.dcl = box ? box.children.length : -1;
  window.__late.dclText = box ? box.textContent : null;
  if (box) {
    new MutationObserver(function () {
      window.__late.fills.push([box.children.length, performance.now()]);
    }).observe(box, {childList: true});
  }
});
"""

# Whether each element of the list equals the static markup of the same file.
_SAME_AS_STATIC = """
([selector, expected]) => {
  const items = Array.from(document.querySelectorAll(selector));
  return expected.map((html, i) => {
    const t = document.createElement('template');
    t.innerHTML = html;
    return items[i] !== undefined && items[i].isEqualNode(t.content.firstElementChild);
  });
}
"""


async def _sign_in(page: Page, sim: Simulator) -> None:
    await page.goto(sim.base_url + "/sessions/new")
    await page.fill("#user_login", sim.username)
    await page.fill("input[name='user[password]']", sim.password)
    async with page.expect_navigation():
        await page.click("button[type=submit]")


async def _check_filled(context: BrowserContext, sim: Simulator, target: LatePage) -> str:
    """Open a page whose list arrives late; check it fills after its delay, like a static one."""
    path, files, late = target
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(sim.base_url + path, wait_until="domcontentloaded")
    if files:
        await page.wait_for_function(
            f"document.querySelectorAll('#attachments > *').length >= {len(files)}",
            timeout=late.fill_ms + 8000,
        )
    else:  # nothing will show: wait for the answer itself, then for the script to run
        await page.wait_for_function(
            f"performance.getEntriesByType('resource').some(e => e.name.endsWith("
            f"'{late.endpoint}'))",
            timeout=late.fill_ms + 8000,
        )
        await asyncio.sleep(0.2)
    watched = await page.evaluate("window.__late")
    assert watched["dcl"] == 0 and not watched["dclText"].strip(), path  # empty at first
    fills = watched["fills"]
    if late.trait == "late_two_parts":  # part 1 (at least one), then the rest
        k = max(1, len(files) // 2)
        assert [count for count, _ in fills] == [k, len(files)], path
        assert fills[1][1] >= late.delay_ms + late.part2_delay_ms
    elif files:
        assert [count for count, _ in fills] == [len(files)], path
    else:
        assert fills == [] and await page.locator("#attachments > *").count() == 0
    if fills:
        assert fills[0][1] >= late.delay_ms, (path, fills, late)  # not before the server's
    expected = [attachment_html(f, sim.base_url) for f in files]
    same = await page.evaluate(_SAME_AS_STATIC, ["#attachments > *", expected])
    assert same == [True] * len(files), path
    assert errors == []
    click_only = next((f for f in files if not f.has_href), None)
    if click_only is not None:  # click-only elements inserted late still download
        async with page.expect_download(timeout=10_000) as info:
            await page.dispatch_event(f"[data-file-id='{click_only.id}']", "click")
        download = await info.value
        data = await asyncio.to_thread(Path(await download.path()).read_bytes)
        assert hashlib.sha256(data).hexdigest() == click_only.sha256
    await page.close()
    return late.trait


async def _check_broken(context: BrowserContext, sim: Simulator, target: LatePage) -> str:
    """Open a page whose list never arrives; check how it fails."""
    path, _, late = target
    page = await context.new_page()
    loop = asyncio.get_running_loop()
    page_error: asyncio.Future[PlaywrightError] = loop.create_future()
    console_error: asyncio.Future[str] = loop.create_future()
    asked: list[str] = []
    page.on("pageerror", lambda e: page_error.done() or page_error.set_result(e))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and m.text.startswith("Attachments could not be loaded")
            and not console_error.done()
            and console_error.set_result(m.text)
        ),
    )
    page.on("request", lambda r: asked.append(r.url))
    await page.goto(sim.base_url + path, wait_until="domcontentloaded")
    data_url = sim.base_url + late.data_path(path)
    if late.failure == "js_error":
        error = await asyncio.wait_for(page_error, 5)
        assert error.name == "TypeError", error
        await asyncio.sleep(0.3)
        assert data_url not in asked  # it failed before fetching anything
    elif late.failure == "http_500":
        message = await asyncio.wait_for(console_error, late.fill_ms / 1000 + 8)
        assert "HTTP 500" in message  # the script's own report, after the browser's
        assert not page_error.done()
    else:  # hang (checked alone): the request stays in flight, the list empty
        for _ in range(150):
            if sim.stats.in_flight == 1:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert data_url in asked and sim.stats.in_flight == 1
        assert not page_error.done() and not console_error.done()
    assert await page.locator("#attachments > *").count() == 0
    await page.close()
    if late.failure == "hang":  # the page went: so does its request
        for _ in range(100):
            if sim.stats.in_flight == 0:
                break
            await asyncio.sleep(0.02)
        assert sim.stats.in_flight == 0
    return late.failure or ""


@pytest.mark.browser
@pytest.mark.timeout(60)
async def test_late_lists_in_chromium() -> None:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine")
    config = SimConfig(seed=5, pos=len(LATE_RECIPES), recipes=LATE_RECIPES)
    async with Simulator(config) as sim, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(accept_downloads=True)
            await context.add_init_script(_WATCH_LIST)
            await _sign_in(await context.new_page(), sim)
            pages = [
                (owner.url_path, owner.files, owner.late)
                for po in sim.catalog.pos
                for owner in (po, po.requisition)
                if owner is not None and owner.late is not None
            ]
            checks = [
                _check_broken(context, sim, p) if p[2].broken else _check_filled(context, sim, p)
                for p in pages
                if p[2].failure != "hang"
            ]
            seen = set(await asyncio.gather(*checks))
            # Alone, so that no other request is in flight (Chromium queues a seventh one).
            for hanging in [p for p in pages if p[2].failure == "hang"]:
                seen.add(await _check_broken(context, sim, hanging))
            assert seen == {
                "late_json",
                "late_fragment",
                "late_two_parts",
                "http_500",
                "hang",
                "js_error",
            }
            assert {p[2].start for p in pages} == {"inline", "domcontentloaded", "load"}
            await context.close()
        finally:
            await browser.close()
