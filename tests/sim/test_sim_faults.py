"""Faults: latency, server errors, rate limits, hangs, resets and injections, over real HTTP."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from sim_testkit import STOP_DEADLINE_S, MakeSim, fetch, new_client, sign_in

from coupa_async.sim import Faults, SimFile, Simulator


def _ok_pos(sim: Simulator) -> list[str]:
    return [po.url_path for po in sim.catalog.pos if po.page == "ok"]


def _file(sim: Simulator, min_size: int = 10_000) -> SimFile:
    return next(
        f for f in sim.catalog.files if f.has_href and not f.serves_html and f.size >= min_size
    )


async def _signed_in(
    make_sim: MakeSim, **kwargs: object
) -> tuple[Simulator, aiohttp.ClientSession]:
    sim = await make_sim(**kwargs)
    client = new_client()
    await sign_in(client, sim)
    return sim, client


async def test_latency_applies_to_po_pages_not_login(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        sim.config.faults.latency_ms = 150
        sim.config.faults.jitter_ms = 50
        start = time.perf_counter()
        status, _, _ = await fetch(client, sim.base_url + _ok_pos(sim)[0])
        assert status == 200
        assert time.perf_counter() - start >= 0.15
        sim.config.faults.error_rate = 1.0  # login pages are never faulted
        status, _, html = await fetch(client, sim.base_url + "/sessions/destroy")
        assert status == 302
        status, _, html = await fetch(client, sim.base_url + "/sessions/new")
        assert status == 200 and "authenticity_token" in html


async def test_error_rate_gives_500_and_503_but_spares_sim_endpoints(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        sim.config.faults = Faults(error_rate=1.0)
        statuses = {(await fetch(client, sim.base_url + p))[0] for p in _ok_pos(sim) * 4}
        assert statuses == {500, 503}
        async with client.get(sim.base_url + "/__sim/stats") as r:
            stats = await r.json()
        assert r.status == 200
        assert stats["faults"]["500"] + stats["faults"]["503"] == len(_ok_pos(sim)) * 4
        status, _, _ = await fetch(client, sim.base_url + "/order_headers")
        assert status == 200  # the list is not a faulted kind by default


async def test_faults_follow_kinds(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        sim.config.faults = Faults(error_rate=1.0, kinds=("file",))
        assert (await fetch(client, sim.base_url + _ok_pos(sim)[0]))[0] == 200
        assert (await fetch(client, sim.base_url + _file(sim, 1).url_path))[0] in (500, 503)


async def test_rate_limit_penalty_and_retry_after(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        sim.config.faults = Faults(
            rate_limit_rate=1.0, retry_after_seconds=1, retry_after_grace_ms=0
        )
        url = sim.base_url + _ok_pos(sim)[0]
        async with client.get(url) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "1"
        sim.config.faults.rate_limit_rate = 0.0  # no new 429s, but the penalty holds
        for _ in range(3):
            async with client.get(url) as r:
                assert r.status == 429
                assert r.headers["Retry-After"] == "1"
        stats = sim.stats.snapshot()
        assert stats["rate_limited"] == 4
        assert stats["requests_during_retry_after"] == 3
        assert stats["faults"]["429"] == 1
        await asyncio.sleep(1.05)
        assert (await fetch(client, url))[0] == 200
        assert sim.stats.requests_during_retry_after == 3


async def test_injected_429_with_own_retry_after(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        path = _ok_pos(sim)[1]
        sim.inject("429", path_contains=path, retry_after=0.3)
        async with client.get(sim.base_url + path) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
        other = _ok_pos(sim)[2]
        assert (await fetch(client, sim.base_url + other))[0] == 429  # the host is in penalty
        await asyncio.sleep(0.35)
        assert (await fetch(client, sim.base_url + other))[0] == 200


async def test_inject_with_count_and_path(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        target, other = _ok_pos(sim)[:2]
        sim.inject("503", path_contains=target, count=2)
        assert (await fetch(client, sim.base_url + other))[0] == 200
        statuses = [(await fetch(client, sim.base_url + target))[0] for _ in range(3)]
        assert statuses == [503, 503, 200]
        sim.inject("500", path_contains=target)
        assert (await fetch(client, sim.base_url + target))[0] == 500
        assert sim.stats.faults == {"503": 2, "500": 1}
        with pytest.raises(ValueError):
            sim.inject("teapot")


async def test_hang_until_the_client_gives_up(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        path = _ok_pos(sim)[0]
        sim.inject("hang", path_contains=path)
        with pytest.raises(asyncio.TimeoutError):
            await client.get(sim.base_url + path, timeout=aiohttp.ClientTimeout(total=0.3))
        assert (await fetch(client, sim.base_url + path))[0] == 200
        for _ in range(50):  # the hung handler is cancelled once the client has gone
            if sim.stats.in_flight == 0:
                break
            await asyncio.sleep(0.02)
        assert sim.stats.in_flight == 0
        assert sim.stats.faults == {"hang": 1}


async def test_finite_hang_then_answer(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        sim.config.faults = Faults(hang_rate=1.0, hang_seconds=0.2)
        start = time.perf_counter()
        assert (await fetch(client, sim.base_url + _ok_pos(sim)[0]))[0] == 200
        assert time.perf_counter() - start >= 0.2


async def test_stop_releases_hung_requests(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        sim.config.faults = Faults(hang_rate=1.0)
        request = asyncio.create_task(fetch(client, sim.base_url + _ok_pos(sim)[0]))
        async with asyncio.timeout(STOP_DEADLINE_S):  # until the simulator holds it
            while sim.stats.in_flight != 1:
                await asyncio.sleep(0.02)
        async with asyncio.timeout(STOP_DEADLINE_S):  # the hang has no end of its own
            await sim.stop()
        try:
            status, _, _ = await asyncio.wait_for(request, 5)
            assert status == 503
        except aiohttp.ClientError:
            pass  # the connection closed first: the client gave up, which is also fine


async def test_reset_mid_download(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        f = _file(sim, 100_000)
        sim.inject("reset", path_contains=f"/{f.id}")
        received = 0
        with pytest.raises(aiohttp.ClientPayloadError):
            async with client.get(sim.base_url + f.url_path) as r:
                assert r.status == 200
                async for chunk in r.content.iter_chunked(65536):
                    received += len(chunk)
        assert 0 < received < f.size
        async with client.get(sim.base_url + f.url_path) as r:  # the next try succeeds
            assert len(await r.read()) == f.size
        sim.config.faults = Faults(reset_rate=1.0)
        with pytest.raises(aiohttp.ClientPayloadError):
            async with client.get(sim.base_url + f.url_path) as r:
                await r.read()
        assert sim.stats.faults == {"reset": 2}


async def test_html_instead_of_file_and_login_redirect(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        f = _file(sim, 1)
        sim.inject("html_instead_of_file", path_contains=f"/{f.id}")
        async with client.get(sim.base_url + f.url_path) as r:
            assert r.status == 200 and r.content_type == "text/html"
            assert "flash_error" in await r.text()
        path = _ok_pos(sim)[0]
        sim.inject("login_redirect", path_contains=path)
        status, location, _ = await fetch(client, sim.base_url + path)
        assert status == 302 and location == f"/sessions/new?return_to={path}"
        assert (await fetch(client, sim.base_url + path))[0] == 200
        assert sim.stats.faults == {"html_instead_of_file": 1, "login_redirect": 1}


async def _statuses(sim: Simulator) -> list[int]:
    async with new_client() as client:
        await sign_in(client, sim)
        return [(await fetch(client, sim.base_url + p))[0] for p in _ok_pos(sim) * 2]


async def test_random_faults_are_reproducible(make_sim: MakeSim) -> None:
    runs = []
    for seed in (5, 5, 6):
        sim = await make_sim(seed=seed, pos=40, faults=Faults(error_rate=0.4))
        runs.append(await _statuses(sim))
    assert runs[0] == runs[1]
    assert 200 in runs[0] and ({500, 503} & set(runs[0]))
    assert runs[0] != runs[2]


async def test_fault_endpoints(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        async with client.post(f"{sim.base_url}/__sim/faults", json={"error_rate": 1.0}) as r:
            assert (await r.json())["error_rate"] == 1.0
        assert sim.config.faults.error_rate == 1.0
        async with client.post(f"{sim.base_url}/__sim/faults", json={"error_rate": 7}) as r:
            assert r.status == 400
        async with client.post(f"{sim.base_url}/__sim/faults", json={"error_rate": 0}) as r:
            assert r.status == 200
        path = _ok_pos(sim)[0]
        body = {"fault": "503", "path_contains": path, "count": 1}
        async with client.post(f"{sim.base_url}/__sim/inject", json=body) as r:
            assert r.status == 200
        assert (await fetch(client, sim.base_url + path))[0] == 503
        assert (await fetch(client, sim.base_url + path))[0] == 200


async def test_requests_right_after_a_429_count_as_in_flight(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    sim.config.faults = Faults(rate_limit_rate=1.0, retry_after_seconds=1, retry_after_grace_ms=300)
    url = sim.base_url + _ok_pos(sim)[0]
    async with client.get(url) as r:
        assert r.status == 429
    sim.config.faults.rate_limit_rate = 0.0
    async with client.get(url) as r:  # on its way before the client could know: excused
        assert r.status == 429
    await asyncio.sleep(0.35)
    async with client.get(url) as r:  # after the grace: ignoring Retry-After
        assert r.status == 429
    stats = sim.stats.snapshot()
    assert stats["requests_in_flight_at_429"] == 1
    assert stats["requests_during_retry_after"] == 1
