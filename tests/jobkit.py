"""One worker (a browser context signed in to the simulator) and the tasks it is given."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page

from coupa_async.coupa.numbers import parse_po_number
from coupa_async.coupa.po_steps import JobEnv, OpenPage, PoTask
from coupa_async.coupa.reader import Mode, PageReader
from coupa_async.results.layout import (
    OutputLayout,
)
from coupa_async.results.result import PoResult
from coupa_async.session.chromium import new_context
from coupa_async.settings import Settings
from coupa_async.signin.form import sign_in
from coupa_async.sim import SimPO, Simulator

PARALLEL = 4  # requests in flight in the tests' job envs unless a test says otherwise


@dataclass
class Worker:
    """One signed-in context and page, as an engine's worker holds them."""

    settings: Settings
    context: BrowserContext
    page: Page

    def env(
        self,
        out: Path,
        http: aiohttp.ClientSession,
        mode: Mode = "auto",
        *,
        requests: int | None = PARALLEL,
    ) -> JobEnv:
        """A job env over this worker's page; ``requests`` in flight at once (None: the PO's
        requests one at a time)."""
        return JobEnv(
            self.settings,
            self.context,
            OpenPage(self.page),
            http,
            OutputLayout(out),
            new_reader(self.settings, mode),
            requests=asyncio.Semaphore(requests) if requests is not None else None,
        )


def new_reader(settings: Settings, mode: Mode) -> PageReader:
    return PageReader(
        settings.markers,
        mode,
        navigation_timeout_s=settings.timeouts.navigation_s,
        settle_s=settings.timeouts.settle_s,
    )


async def open_worker(browser: Browser, settings: Settings, sim: Simulator) -> Worker:
    context = await new_context(browser, settings)
    await sign_in(context, sim.base_url, sim.username, sim.password, markers=settings.markers)
    return Worker(settings, context, await context.new_page())


def is_late(po: SimPO) -> bool:
    """Whether the PO's page, or the requisition page it leads to, fills a list late (or the PO
    must be searched for: its page is not at its number)."""
    pr = po.requisition
    return (
        po.late is not None
        or po.more is not None
        or po.comments_fill is not None
        or po.id_mode != "same"
        or (pr is not None and (pr.late is not None or pr.comments_fill is not None))
    )


def task_for(po: SimPO, **kwargs: object) -> PoTask:
    return PoTask(parse_po_number(f"PO{po.number}"), **kwargs)  # type: ignore[arg-type]


def check_result(po: SimPO, result: PoResult) -> None:
    """The catalog's outcome and exactly its files, byte for byte, on disk."""
    assert result.outcome.value == po.expected_outcome, (po.recipe, result.message)
    assert sorted(f.sha256 for f in result.files) == sorted(f.sha256 for f in po.expected_files), (
        po.recipe
    )
    for saved in result.files:
        assert hashlib.sha256(saved.path.read_bytes()).hexdigest() == saved.sha256


def reader_for(worker: Worker, mode: Mode, settle_s: float) -> PageReader:
    return PageReader(
        worker.settings.markers,
        mode,
        navigation_timeout_s=worker.settings.timeouts.navigation_s,
        settle_s=settle_s,
    )
