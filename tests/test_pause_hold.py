"""A tenant's Retry-After holds every request to it, those the rendered pages' own scripts send
(polls, long-polls) included, not only the workers' own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coupa_async import Downloader
from coupa_async.result import PoResult
from coupa_async.sim import Faults, SimConfig, Simulator
from coupa_async.sim.faults import DEFAULT_FAULT_KINDS

from .conftest import make_settings

pytestmark = pytest.mark.browser


async def test_no_request_reaches_the_tenant_while_it_asks_to_wait(tmp_path: Path) -> None:
    faults = Faults(kinds=(*DEFAULT_FAULT_KINDS, "api"), retry_after_grace_ms=300)
    config = SimConfig(seed=3, pos=10, page_weight="realistic", faults=faults)
    async with Simulator(config) as sim:
        settings = make_settings(
            tmp_path,
            base_url=sim.base_url,
            username=sim.username,
            password=sim.password,
            out=str(tmp_path / "out"),
            storage_state=str(tmp_path / "state.json"),
            workers=2,
            mode="render",
        )
        numbers = [f"PO{po.number}" for po in sim.catalog.pos if not po.late_failed]
        results: list[PoResult] = []
        async with asyncio.timeout(240), Downloader(settings) as downloader:
            async for result in downloader.run(numbers):
                results.append(result)
                if len(results) == 2:
                    # The next PO page answers 429 and asks for 4 s; the pages left open by
                    # the workers keep polling the tenant meanwhile, unless they are held.
                    sim.inject("429", "/order_headers/", 1, retry_after=4)
        stats = sim.stats.snapshot()
    assert len(results) == len(numbers)
    assert stats["rate_limited"] >= 1
    assert stats["requests_during_retry_after"] == 0
