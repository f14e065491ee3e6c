"""Counters at /__sim/stats."""

from __future__ import annotations

import asyncio

import aiohttp
from sim_testkit import MakeSim, fetch, sign_in

from coupa_async.sim import Faults


async def _stats(client: aiohttp.ClientSession, base_url: str) -> dict:
    async with client.get(f"{base_url}/__sim/stats") as r:
        assert r.status == 200
        return await r.json()


async def test_counts_by_kind_and_bytes(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(seed=3, pos=30)
    await sign_in(client, sim)  # GET /sessions/new + POST /sessions
    po = next(p for p in sim.catalog.pos if p.page == "ok" and p.files and p.requisition)
    await fetch(client, sim.base_url + "/")
    await fetch(client, sim.base_url + "/order_headers")
    status, _, page = await fetch(client, sim.base_url + po.url_path)
    assert status == 200
    await fetch(client, sim.base_url + po.requisition.url_path)
    f = next(f for f in po.files if f.has_href)
    async with client.get(sim.base_url + f.url_path) as r:
        body = await r.read()
    await fetch(client, sim.base_url + "/favicon.ico")
    stats = await _stats(client, sim.base_url)
    assert stats["requests"] == {
        "po_page": 1,
        "pr_page": 1,
        "page_data": 0,
        "file": 1,
        "login": 2,
        "idp": 0,
        "list": 1,
        "home": 1,
        "asset": 0,
        "api": 0,
        "other": 1,
    }
    assert stats["total"] == 8  # /__sim requests are not counted
    assert stats["logins"] == 1
    assert stats["files_completed"] == 1
    assert stats["statuses"]["302"] == 1 and stats["statuses"]["404"] == 1
    assert stats["bytes_sent"] >= len(page.encode()) + len(body)
    assert stats["in_flight"] == 0
    assert stats == sim.stats.snapshot()


async def test_reset(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(pos=5)
    await sign_in(client, sim)
    assert sim.stats.total == 2
    sim.reset_stats()
    assert sim.stats.snapshot()["total"] == 0 and sim.stats.logins == 0
    await fetch(client, sim.base_url + "/order_headers")
    async with client.post(f"{sim.base_url}/__sim/reset") as r:
        assert (await r.json())["total"] == 0
    assert sim.stats.requests["list"] == 0


async def test_peak_concurrency(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(pos=30, faults=Faults(latency_ms=300))
    await sign_in(client, sim)
    paths = [po.url_path for po in sim.catalog.pos[:10]]
    statuses = await asyncio.gather(*(fetch(client, sim.base_url + p) for p in paths))
    assert {s for s, _, _ in statuses} <= {200, 404}
    stats = sim.stats.snapshot()
    assert 5 <= stats["peak_concurrency"] <= 10
    assert stats["in_flight"] == 0
