"""The right PO and its whole list, in every discovery mode and under CPU load.

Every page shape of the simulator that a first look gets wrong (another PO's page at the number,
an id that is not the number, files in lines and comments, comments and more files arriving by
script with or without a sign, click-only spans known only by a title, URL and text attachments,
pages as heavy as a real SaaS page with polls, a long-poll and a refused analytics host) is read
in ``render``, ``fast`` and ``auto`` and checked against the catalog: outcome, files by SHA-256,
and every attachment's place and kind.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser

from coupa_async import Downloader, PoResult
from coupa_async.coupa.po_steps import process_po
from coupa_async.coupa.reader import Mode
from coupa_async.running.table_run import run_table
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, SimPO, Simulator
from coupa_async.sim.catalog import Catalog

from .jobkit import check_result, open_worker, reader_for, task_for
from .runkit import for_simulator, input_table_for, settings_for

pytestmark = pytest.mark.browser

MODES: tuple[Mode, ...] = ("render", "fast", "auto")
SHAPES = (
    "id_not_found",
    "id_other_po",
    "click_title_spans",
    "line_and_comment_files",
    "late_comments_sign",
    "late_comments_quiet",
    "late_more_links",
    "url_and_text",
    "heavy_no_attachments",
    "heavy_pr_fallback",
    "heavy_files",
    "pr_lines_comments",
    "late_two_parts_links",
    "pr_late_two_parts_po_not_pdf",
)
# Ordinary pages first, so that ``auto`` has pages to trust ``fast`` on before the shapes come.
RECIPES = ("plain_links", "many_files", "download_attr_and_title", *SHAPES, "no_attachments")
BUSY_LOOPS = 6


def expected_attachments(po: SimPO) -> Counter[tuple[str, str, str, str]]:
    """(source, place, kind, SHA-256 of a saved file or the URL or text) of every attachment a
    correct run records for the PO."""
    rows: Counter[tuple[str, str, str, str]] = Counter()
    if po.is_error_page or po.late_failed:
        return rows
    pr = po.requisition
    files = list(po.files)
    links = list(po.links)
    if po.uses_requisition and pr is not None and pr.kind == "ok":
        files += pr.files
        links += pr.links
    for f in files:
        rows[(f.source, f.place, "file", "" if f.serves_html else f.sha256)] += 1
    for link in links:
        rows[(link.source, link.place, link.kind, link.value)] += 1
    return rows


def recorded_attachments(result: PoResult) -> Counter[tuple[str, str, str, str]]:
    return Counter(
        (
            found.source,
            found.place,
            found.kind,
            found.sha256 if found.kind == "file" else found.value,
        )
        for found in result.attachments
    )


def check_whole(po: SimPO, result: PoResult, catalog: Catalog) -> None:
    """The catalog's outcome, files and attachments; never a shadow PO's file."""
    check_result(po, result)
    assert recorded_attachments(result) == expected_attachments(po), po.recipe
    shadow = {f.sha256 for other in catalog.shadow_pos for f in other.files}
    assert not shadow & {f.sha256 for f in result.files}, (po.recipe, "another PO's files")
    if po.page == "ok":
        assert result.po_url.endswith(f"/order_headers/{po.internal_id}"), result.po_url


@pytest.fixture(scope="module")
async def shapes_sim() -> AsyncIterator[Simulator]:
    config = SimConfig(seed=31, pos=len(RECIPES), recipes=RECIPES, long_poll_seconds=20)
    async with Simulator(config) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def shapes_settings(base_settings: Settings, shapes_sim: Simulator) -> Settings:
    return for_simulator(base_settings, shapes_sim)


async def read_in_order(
    browser: Browser, settings: Settings, sim: Simulator, mode: Mode, out: Path
) -> list[tuple[SimPO, PoResult]]:
    """Each PO in catalog order, by one worker, as its final attempt."""
    worker = await open_worker(browser, settings, sim)
    done: list[tuple[SimPO, PoResult]] = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            env = worker.env(out, http, mode)
            env.reader = reader_for(worker, mode, settle_s=8.0)
            for po in sim.catalog.pos:
                done.append((po, await process_po(env, task_for(po))))
    finally:
        await worker.context.close()
    return done


@pytest.mark.long
async def test_every_shape_in_every_mode_matches_the_catalog(
    browser: Browser, shapes_sim: Simulator, shapes_settings: Settings, tmp_path: Path
) -> None:
    catalog = shapes_sim.catalog
    assert {po.recipe for po in catalog.pos} == set(RECIPES)
    assert {po.id_mode for po in catalog.pos} >= {"not_found", "other_po"}
    runs = await asyncio.gather(
        *(read_in_order(browser, shapes_settings, shapes_sim, m, tmp_path / m) for m in MODES)
    )
    for mode, done in zip(MODES, runs, strict=True):
        for po, result in done:
            try:
                check_whole(po, result, catalog)
            except AssertionError as exc:
                raise AssertionError(f"{mode}: {po.recipe}: {result.message}") from exc


async def test_the_page_at_the_number_is_another_po_whose_files_are_never_taken(
    browser: Browser, shapes_sim: Simulator, shapes_settings: Settings, tmp_path: Path
) -> None:
    po = next(p for p in shapes_sim.catalog.pos if p.id_mode == "other_po")
    shadow = next(s for s in shapes_sim.catalog.shadow_pos if s.internal_id == po.number)
    assert shadow.number != po.number and shadow.files
    worker = await open_worker(browser, shapes_settings, shapes_sim)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            env = worker.env(tmp_path, http, "fast")
            result = await process_po(env, task_for(po))
            check_whole(po, result, shapes_sim.catalog)
            # Not the page at its number: the one the search found, at the PO's internal id.
            assert po.internal_id != po.number
            assert result.po_url == shapes_sim.base_url + po.url_path
            # A rerun goes straight to the page the search found.
            again = await process_po(env, task_for(po, known_url=result.po_url))
            check_whole(po, again, shapes_sim.catalog)
    finally:
        await worker.context.close()


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPU beside the test, stopped on the way out."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
        for loop in loops:
            loop.wait(timeout=10)


def manifest_attachments(out: Path) -> dict[str, Counter[tuple[str, str, str, str]]]:
    """The rows of ``manifest.csv`` per PO, as ``expected_attachments`` gives them; each saved
    file's SHA-256 read from the file the row points to."""
    rows: dict[str, Counter[tuple[str, str, str, str]]] = {}
    with (out / "manifest.csv").open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            value = row["VALUE"]
            if row["KIND"] == "file":
                saved = row["SAVED_PATH"]
                value = hashlib.sha256((out / saved).read_bytes()).hexdigest() if saved else ""
                assert value == row["SHA256"], row
            key = (row["SOURCE"], row["LOCATION"], row["KIND"], value)
            rows.setdefault(row["PO_NUMBER"], Counter())[key] += 1
    return rows


@pytest.mark.long
@pytest.mark.timeout(900)
async def test_under_six_busy_loops_every_po_and_the_manifest_are_still_right(
    tmp_path: Path,
) -> None:
    config = SimConfig(seed=37, pos=len(RECIPES), recipes=RECIPES, long_poll_seconds=20)
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=2, mode="auto")
        table = input_table_for(tmp_path / "pos.csv", sim)
        with busy_loops(BUSY_LOOPS):
            summary = await run_table(settings, table, stop=asyncio.Event(), show=False)
        assert len(summary.results) == len(sim.catalog.pos)
        manifest = manifest_attachments(settings.out)
        for po in sim.catalog.pos:
            result = summary.results[f"PO{po.number}"]
            try:
                check_whole(po, result, sim.catalog)
                assert manifest.get(f"PO{po.number}", Counter()) == expected_attachments(po)
            except AssertionError as exc:
                raise AssertionError(f"{po.recipe}: {result.message}") from exc


async def test_heavy_pages_with_polls_and_refused_analytics_settle_and_auto_goes_fast(
    tmp_path: Path,
) -> None:
    """A poll, a long-poll and a refused analytics host neither hold a page nor make it
    unproven; with no data feeding the attachment areas after load, ``auto`` trusts ``fast``."""
    recipes = ("heavy_files", "plain_links", "heavy_no_attachments", "many_files", "heavy_files")
    recipes = recipes * 2
    config = SimConfig(seed=43, pos=len(recipes), recipes=recipes, long_poll_seconds=20)
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=1, mode="auto", max_attempts=1)
        async with Downloader(settings) as downloader:
            results = [r async for r in downloader.run([f"PO{p.number}" for p in sim.catalog.pos])]
            discovery = downloader.status().discovery
        by_number = {r.po_number: r for r in results}
        for po in sim.catalog.pos:
            check_whole(po, by_number[f"PO{po.number}"], sim.catalog)
    assert discovery == "fast"
