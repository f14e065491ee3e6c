"""Heavy pages: assets, the notifications poll, the long-poll and the refused analytics host;
and, in Chromium, heavy pages booting and late comments or files arriving."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time

import aiohttp
import pytest
from playwright.async_api import async_playwright
from sim_testkit import HELD_S, STOP_DEADLINE_S, MakeSim, fetch, new_client, sign_in, tree

from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.assets import ANALYTICS_ORIGIN, CACHE_CONTROL

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--no-first-run"]
SIZES = {  # content type -> (least, most) bytes
    "text/css": (290_000, 310_000),
    "font/woff2": (55_000, 65_000),
    "application/javascript": (350 * 1024, 480 * 1024),
    "image/png": (100, 100_000),
}


async def _asset_urls(client: aiohttp.ClientSession, url: str) -> list[str]:
    _, _, html = await fetch(client, url)
    doc = tree(html)
    urls = [n.attributes["href"] or "" for n in doc.css("link[href^='/assets/']")]
    urls += [n.attributes["src"] or "" for n in doc.css("script[src^='/assets/'], img")]
    return urls


async def test_heavy_pages_refer_to_big_cached_assets(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(seed=7, pos=3, recipes=("heavy_files", "plain_links", "heavy_pr_fallback"))
    heavy, plain, fallback = sim.catalog.pos
    await sign_in(client, sim)
    assert await _asset_urls(client, sim.base_url + plain.url_path) == []
    urls = await _asset_urls(client, sim.base_url + heavy.url_path)
    assert fallback.requisition is not None
    assert await _asset_urls(client, sim.base_url + fallback.requisition.url_path) == urls
    types = []
    async with new_client() as anonymous:  # assets need no sign-in, as on a CDN
        for url in urls:
            async with anonymous.get(sim.base_url + url) as r:
                body = await r.read()
                assert r.status == 200 and r.headers["Cache-Control"] == CACHE_CONTROL
                low, high = SIZES[r.content_type]
                assert low <= len(body) <= high, url
                types.append(r.content_type)
                if r.content_type == "image/png":
                    assert body.startswith(b"\x89PNG\r\n\x1a\n")
                if r.content_type == "text/css":
                    assert b"@font-face" in body and b"/assets/fonts/coupa-sans-" in body
    assert types.count("application/javascript") == 3 and types.count("image/png") == 3
    _, _, html = await fetch(client, sim.base_url + heavy.url_path)
    assert f'<script async src="{ANALYTICS_ORIGIN}/analytics.js"></script>' in html
    assert "/api/notifications/unread_count" in html and "/api/session/updates" in html
    assert sim.stats.requests["asset"] == len(urls)
    assert (await fetch(client, sim.base_url + "/assets/app-0000.js"))[0] == 404


async def test_realistic_weight_makes_every_signed_in_page_heavy(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(seed=7, pos=2, page_weight="realistic", recipes=("plain_links",))
    _, _, html = await fetch(client, sim.base_url + "/sessions/new")
    assert "/assets/" not in html  # signed out: bare
    await sign_in(client, sim)
    for path in ("/", "/order_headers", sim.catalog.pos[0].url_path):
        assert len(await _asset_urls(client, sim.base_url + path)) == 8, path
    with pytest.raises(ValueError):
        SimConfig(page_weight="heavy")  # type: ignore[arg-type]


async def test_polls_need_a_session_and_the_long_poll_answers_204(make_sim: MakeSim) -> None:
    sim = await make_sim(seed=7, pos=1, long_poll_seconds=0.3)
    async with new_client() as client:
        assert (await fetch(client, sim.base_url + "/api/notifications/unread_count"))[0] == 401
        assert (await fetch(client, sim.base_url + "/api/session/updates?cursor=0"))[0] == 401
        await sign_in(client, sim)
        async with client.get(sim.base_url + "/api/notifications/unread_count") as r:
            assert r.status == 200 and (await r.json())["count"] >= 0
        start = time.perf_counter()
        status, _, _ = await fetch(client, sim.base_url + "/api/session/updates?cursor=0")
        assert status == 204 and time.perf_counter() - start >= 0.3


async def _wait_in_flight(sim: Simulator, count: int) -> None:
    for _ in range(150):
        if sim.stats.in_flight == count:
            return
        await asyncio.sleep(0.02)
    assert sim.stats.in_flight == count


async def test_long_poll_ends_when_the_client_goes(make_sim: MakeSim) -> None:
    sim = await make_sim(seed=7, pos=1)
    async with new_client() as client:
        await sign_in(client, sim)
        with pytest.raises(asyncio.TimeoutError):
            await client.get(
                sim.base_url + "/api/session/updates?cursor=0",
                timeout=aiohttp.ClientTimeout(total=0.4),
            )
    await _wait_in_flight(sim, 0)


async def test_long_poll_does_not_hold_up_stopping(make_sim: MakeSim) -> None:
    sim = await make_sim(seed=7, pos=1, long_poll_seconds=HELD_S)
    async with new_client() as client:
        await sign_in(client, sim)
        request = asyncio.create_task(fetch(client, sim.base_url + "/api/session/updates"))
        await _wait_in_flight(sim, 1)
        async with asyncio.timeout(STOP_DEADLINE_S):  # far short of the poll's HELD_S
            await sim.stop()
        with contextlib.suppress(aiohttp.ClientError):  # the connection may close first
            assert (await asyncio.wait_for(request, 5))[0] == 204


async def test_the_analytics_host_refuses_at_once() -> None:
    host, port = ANALYTICS_ORIGIN.removeprefix("http://").split(":")
    with pytest.raises(ConnectionRefusedError):  # refused, not left to time out
        await asyncio.wait_for(asyncio.open_connection(host, int(port)), STOP_DEADLINE_S)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.mark.browser
@pytest.mark.timeout(90)
async def test_heavy_and_late_areas_in_chromium() -> None:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine")
    recipes = ("heavy_files", "late_comments_sign", "late_comments_quiet", "late_more_links")
    recipes += ("pr_lines_comments",)
    config = SimConfig(seed=7, pos=len(recipes), recipes=recipes)
    async with Simulator(config) as sim, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(sim.base_url + "/sessions/new")
            await page.fill("#user_login", sim.username)
            await page.fill("input[name='user[password]']", sim.password)
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            heavy, sign, quiet, more, with_pr = sim.catalog.pos
            await page.goto(sim.base_url + heavy.url_path, wait_until="load")
            booted = await page.evaluate("Object.keys(window.__coupaModules || {}).sort()")
            assert booted == ["app", "chunk", "vendor"]
            assert await page.locator("#attachments a").count() == len(heavy.files)
            await page.wait_for_function(
                "document.getElementById('notification-count').textContent === '3'"
            )
            for po in (sign, quiet):
                await page.goto(sim.base_url + po.url_path)
                assert po.comments_fill is not None
                busy = await page.locator("#comments[aria-busy=true] .loading").count()
                assert busy == int(po.comments_fill.sign)
                await page.wait_for_selector("#comments .comment", timeout=5000)
                assert await page.locator("#comments .comment").count() == len(po.comments)
                assert await page.locator("#comments[aria-busy], #comments .loading").count() == 0
                files = page.locator("#comments .comment-attachments > *")
                assert await files.count() == 1
            await page.goto(sim.base_url + more.url_path)
            await page.wait_for_function(
                f"document.querySelectorAll('#attachments > *').length === {len(more.files)}",
                timeout=5000,
            )
            assert with_pr.requisition is not None
            await page.goto(sim.base_url + with_pr.requisition.url_path)
            await page.wait_for_selector("#comments .comment [data-file-id]", timeout=5000)
            assert await page.locator("tr.requisition-line .attachment-text").count() == 1
            assert errors == []
        finally:
            await browser.close()
