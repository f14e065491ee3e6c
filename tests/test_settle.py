"""Pages that fill their attachment list by script after load, in every discovery mode.

`NO_ATTACHMENTS` is a final answer a rerun trusts: it may come only from a rendered page that
has settled. Every late-list shape of the simulator (JSON, HTML fragment, two parts, a list that
never arrives; on PO and on requisition pages) is read in `render`, `fast` and `auto` and checked
against the catalog by SHA-256.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Route

from coupa_async import Downloader, Outcome, PoResult
from coupa_async.coupa.http import CoupaHttp
from coupa_async.coupa.po_steps import OpenPage, process_po
from coupa_async.coupa.reader import Mode
from coupa_async.errors import SessionExpiredError, TransientError
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, SimPO, Simulator
from coupa_async.sim.catalog import LATE_TRAITS, RECIPES, Catalog

from .jobkit import check_result, is_late, open_worker, reader_for, task_for
from .runkit import for_simulator, settings_for

pytestmark = pytest.mark.browser

MODES: tuple[Mode, ...] = ("render", "fast", "auto")
LATE = frozenset(LATE_TRAITS)


def late_recipes() -> list[str]:
    """Every recipe whose PO or requisition page fills its list late."""
    return [
        r.name
        for r in RECIPES
        if LATE & set(r.traits) or (r.pr is not None and LATE & set(r.pr.traits))
    ]


@pytest.fixture(scope="module")
async def late_sim() -> AsyncIterator[Simulator]:
    """Every late recipe, plus a true no-attachments page and ordinary ones around them."""
    recipes = ("plain_links", *late_recipes(), "no_attachments", "pr_files_no_po_files")
    async with Simulator(SimConfig(seed=23, pos=len(recipes), recipes=recipes)) as simulator:
        yield simulator


async def read_all(
    browser: Browser, settings: Settings, sim: Simulator, mode: Mode, out: Path, pos: list[SimPO]
) -> list[tuple[SimPO, PoResult | BaseException]]:
    """Process each PO (not a final attempt) in one worker; results or the error raised."""
    worker = await open_worker(browser, settings, sim)
    done: list[tuple[SimPO, PoResult | BaseException]] = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            env = worker.env(out, http, mode)
            env.reader = reader_for(worker, mode, settle_s=5.0)
            for po in pos:
                try:
                    done.append((po, await process_po(env, task_for(po), final_attempt=False)))
                except TransientError as exc:
                    done.append((po, exc))
    finally:
        await worker.context.close()
    return done


@pytest.fixture(scope="module")
def late_settings(base_settings: Settings, late_sim: Simulator) -> Settings:
    return for_simulator(base_settings, late_sim)


@pytest.mark.long
async def test_every_late_shape_in_every_mode_matches_the_catalog(
    browser: Browser, late_sim: Simulator, late_settings: Settings, tmp_path: Path
) -> None:
    pos = list(late_sim.catalog.pos)
    shapes = {po.late.trait for po in pos if po.late} | {
        po.requisition.late.trait for po in pos if po.requisition and po.requisition.late
    }
    assert shapes == LATE, "the catalog must hold every late shape"
    runs = await asyncio.gather(
        *(read_all(browser, late_settings, late_sim, m, tmp_path / m, pos) for m in MODES)
    )
    for mode, done in zip(MODES, runs, strict=True):
        for po, outcome in done:
            if po.late_failed:
                # Never NO_ATTACHMENTS: the PO is retried (here: raised for the engine).
                assert isinstance(outcome, TransientError), (mode, po.recipe, outcome)
                assert "settle" in str(outcome) or "loading failed" in str(outcome)
                continue
            assert isinstance(outcome, PoResult), (mode, po.recipe, outcome)
            check_result(po, outcome)


async def test_a_fast_reading_that_misses_a_late_list_turns_fast_off(
    browser: Browser,
    late_sim: Simulator,
    late_settings: Settings,
    http: aiohttp.ClientSession,
) -> None:
    late = next(po for po in late_sim.catalog.pos if po.late and not po.late_failed and po.files)
    worker = await open_worker(browser, late_settings, late_sim)
    try:
        reader = reader_for(worker, "fast", settle_s=5.0)
        assert reader.state == "fast"
        url = f"{late_sim.base_url}{late.url_path}"
        pages, lane = OpenPage(worker.page), CoupaHttp(http, worker.context)
        read = await reader.read(pages, lane, url)
        assert read.settled and read.facts is not None
        assert len(read.facts.attachments) == len(late.files)
        assert reader.state == "render"  # the HTML missed what the rendering showed
        ordinary = next(po for po in late_sim.catalog.pos if po.recipe == "plain_links")
        again = await reader.read(pages, lane, late_sim.base_url + ordinary.url_path)
        assert again.how == "render"
    finally:
        await worker.context.close()


async def test_a_page_that_never_settles_is_retried_within_the_bound(
    browser: Browser, late_sim: Simulator, late_settings: Settings
) -> None:
    hang = next(po for po in late_sim.catalog.pos if po.late and po.late.failure == "hang")
    worker = await open_worker(browser, late_settings, late_sim)
    try:
        reader = reader_for(worker, "render", settle_s=1.5)
        with pytest.raises(TransientError, match=r"did not settle within 1\.5 s"):
            # the settle bound gives up, long before the navigation timeout would
            async with asyncio.timeout(late_settings.timeouts.navigation_s * 0.8):
                await reader.render(worker.page, late_sim.base_url + hang.url_path)
    finally:
        await worker.context.close()


async def test_a_page_is_read_only_once_settled_whether_it_shows_attachments_or_not(
    browser: Browser, late_sim: Simulator, late_settings: Settings
) -> None:
    """A first look that shows files is no proof of the whole list: every render settles."""
    empty = next(po for po in late_sim.catalog.pos if po.recipe == "no_attachments")
    full = next(po for po in late_sim.catalog.pos if po.recipe == "plain_links")
    worker = await open_worker(browser, late_settings, late_sim)
    try:
        reader = reader_for(worker, "render", settle_s=5.0)
        shown = await reader.render(worker.page, late_sim.base_url + full.url_path)
        assert shown.settled and shown.facts is not None
        assert len(shown.facts.attachments) == len(full.files)
        nothing = await reader.render(worker.page, late_sim.base_url + empty.url_path)
        assert nothing.settled and nothing.proves_absence
        assert nothing.facts is not None and not nothing.facts.attachments
        assert reader.counts["settled"] == 2
    finally:
        await worker.context.close()


async def test_auto_over_ordinary_then_late_pages_gets_every_po_right(tmp_path: Path) -> None:
    ordinary = ("plain_links", "many_files", "download_attr_and_title", "plain_links")
    recipes = (*ordinary, *late_recipes(), "no_attachments")
    config = SimConfig(seed=29, pos=len(recipes), recipes=recipes)
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=2, mode="auto", max_attempts=2)
        async with Downloader(settings) as downloader:
            results = [r async for r in downloader.run([f"PO{p.number}" for p in sim.catalog.pos])]
            discovery = downloader.status().discovery
    by_number = {r.po_number: r for r in results}
    assert len(by_number) == len(sim.catalog.pos)
    for po in sim.catalog.pos:
        result = by_number[f"PO{po.number}"]
        if po.late_failed:
            assert result.outcome is Outcome.FAILED, (po.recipe, result.outcome)
            assert result.message and "NO_ATTACHMENTS" not in result.message
            assert "settle" in result.message or "loading failed" in result.message
            continue
        check_result(po, result)
    assert discovery == "render"  # the late pages proved fast readings incomplete


@pytest.mark.parametrize("recipe", ["late_json_links", "late_json_empty"])
async def test_a_late_list_that_meets_an_expired_session_is_never_read_as_empty(
    recipe: str,
    browser: Browser,
    late_sim: Simulator,
    late_settings: Settings,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """The page came, then the session ended before its list did: the list's request ends on the
    login page, so the PO raises for a new sign-in; never NO_ATTACHMENTS, even where true."""
    po = next(p for p in late_sim.catalog.pos if p.recipe == recipe)
    url = late_sim.base_url + po.url_path
    worker = await open_worker(browser, late_settings, late_sim)

    async def expire_then_send(route: Route) -> None:
        late_sim.expire_sessions()
        await route.continue_()

    try:
        await worker.page.route(re.compile(re.escape(url) + "/attachments"), expire_then_send)
        with pytest.raises(SessionExpiredError):
            await process_po(worker.env(tmp_path, http, "auto"), task_for(po))
        assert not list(tmp_path.iterdir())
    finally:
        await worker.context.close()


def test_the_late_catalog_mixes_true_absence_with_late_presence() -> None:
    catalog = Catalog.build(SimConfig(seed=23, pos=60))
    late = [po for po in catalog.pos if is_late(po)]
    assert any(po.expected_outcome == "NO_ATTACHMENTS" for po in late)
    assert any(po.expected_outcome == "COMPLETED" for po in late)
    assert any(po.late_failed for po in late)
