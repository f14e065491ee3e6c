"""Outages of the whole tenant, seen from real clients: refused, reset and hung connections,
maintenance and proxy pages; on command (Python, HTTP, control port) and on a schedule."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from sim_testkit import (
    HELD_S,
    STOP_DEADLINE_S,
    MakeSim,
    fetch,
    new_client,
    sign_in,
    tree,
    visible_text,
)

from coupa_async.sim import OUTAGE_MODES, Outage, SimConfig, Simulator
from coupa_async.sim.pages import MAINTENANCE_HEADING, MAINTENANCE_TITLE

DISCONNECTED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


def _ok_pos(sim: Simulator) -> list[str]:
    return [po.url_path for po in sim.catalog.pos if po.page == "ok"]


async def _until(check: Callable[[], bool], timeout: float = STOP_DEADLINE_S) -> float:
    """Poll until `check()` holds (the deadline only catches a hang); returns the seconds it
    took."""
    start = time.perf_counter()
    while not check():
        assert time.perf_counter() - start < timeout, "timed out waiting"
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


async def _refused(sim_port: int) -> bool:
    """True when connecting to the port is refused (nothing listens)."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", sim_port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def _signed_in(
    make_sim: MakeSim, **kwargs: object
) -> tuple[Simulator, aiohttp.ClientSession]:
    sim = await make_sim(**kwargs)
    client = new_client()
    await sign_in(client, sim)
    return sim, client


async def test_refuse_closes_the_port_then_binds_the_same_address_again(
    make_sim: MakeSim,
) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    port, base_url = sim.port, sim.base_url
    path = _ok_pos(sim)[0]
    async with client:
        assert (await fetch(client, base_url + path))[0] == 200  # a keep-alive connection
        await sim.outage("refuse", seconds=0.8)
        assert sim.outage_mode == "refuse"
        assert await _refused(port)
        with pytest.raises(aiohttp.ClientError):  # its kept connection was closed too
            await fetch(client, base_url + path)
        async with new_client() as fresh:
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                await fetch(fresh, base_url + path)
        assert isinstance(info.value.os_error, ConnectionRefusedError)
        # The server closed connections (TIME_WAIT): binding again needs SO_REUSEADDR.
        seconds = await _until(lambda: sim.outage_mode is None)
        assert sim.port == port and sim.base_url == base_url
        status, _, html = await fetch(client, base_url + path)
        assert status == 200 and "authenticity_token" not in html  # still signed in
    record = sim.stats.outages[0]
    assert (record.mode, record.trigger, record.requests) == ("refuse", "api", 0)
    assert record.connections_dropped >= 1 and record.ended is not None
    assert 0.75 <= record.seconds < 0.8 + seconds + 1
    assert record.error is None


async def test_reset_answers_each_request_with_a_tcp_reset(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    path = _ok_pos(sim)[0]
    async with client:
        await sim.outage("reset")
        for url in (path, "/order_headers", "/sessions/new"):
            with pytest.raises(DISCONNECTED):
                await fetch(client, sim.base_url + url)
        # aiohttp tries an idempotent request again after a disconnect: 1 or 2 apiece.
        seen = sim.stats.requests_during_outages
        assert seen >= 3
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: sim\r\n\r\n")
        with pytest.raises(ConnectionResetError):  # an RST, not a clean end of stream
            await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        assert sim.stats.requests_during_outages == seen + 1
        async with client.get(sim.base_url + "/__sim/outage") as r:  # /__sim still answers
            assert (await r.json())["active"]["mode"] == "reset"
        async with client.delete(sim.base_url + "/__sim/outage") as r:
            assert (await r.json())["active"] is None
        assert (await fetch(client, sim.base_url + path))[0] == 200
    stats = sim.stats.snapshot()
    assert stats["outages"][0]["requests_during"] == stats["requests_during_outages"] == seen + 1
    assert stats["outages"][0]["connections_dropped"] == 1  # the client's kept connection
    assert set(stats["statuses"]) == {"200", "302"}  # the reset requests got no answer
    assert stats["in_flight"] == 0


async def test_maintenance_answers_every_request_with_coupas_page(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=3, recipes=("late_json_links",))
    po = sim.catalog.pos[0]
    assert po.late is not None
    urls = [
        po.url_path,
        po.late.data_path(po.url_path),
        next(f for f in po.files if f.has_href).url_path,
        "/",
        "/order_headers",
        "/sessions/new",
    ]
    async with client:
        await sim.outage("maintenance")
        for url in urls:
            async with client.get(sim.base_url + url, allow_redirects=False) as r:
                assert r.status == 503, url
                assert r.content_type == "text/html"
                assert "Retry-After" not in r.headers
                html = await r.text()
            doc = tree(html)
            assert doc.css_first("title").text() == MAINTENANCE_TITLE  # type: ignore[union-attr]
            assert doc.css_first("h1").text() == MAINTENANCE_HEADING  # type: ignore[union-attr]
            # Neither an error page nor a sign-in page by the reference's signs.
            assert not doc.css("div.flash_error, div.flash-error, div#error_explanation, form")
            assert not any(w in visible_text(doc) for w in ("Oops", "Sorry", "Sign in"))
        await sim.outage("maintenance", retry_after=30)  # replaces the running one
        async with client.get(sim.base_url + po.url_path) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "30"
        assert await sim.end_outage()
        for url in urls:
            async with client.get(sim.base_url + url, allow_redirects=False) as r:
                await r.read()
            if url == "/sessions/new":  # still signed in: sent on from the sign-in form
                assert (r.status, r.headers["Location"]) == (302, "/")
            else:
                assert r.status == 200, url
    stats = sim.stats
    assert stats.outages_started == 2
    assert [r.requests for r in stats.outages] == [len(urls), 1]
    assert stats.statuses[503] == len(urls) + 1
    assert stats.requests["file"] == 2 and stats.requests["page_data"] == 2


@pytest.mark.parametrize(("mode", "status"), [("proxy_502", 502), ("proxy_504", 504)])
async def test_proxy_errors_are_a_proxys_plain_page(
    make_sim: MakeSim, mode: str, status: int
) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    path = _ok_pos(sim)[0]
    async with client:
        await sim.outage(mode, seconds=0.5, retry_after=5)  # type: ignore[arg-type]
        async with client.get(sim.base_url + path) as r:
            assert r.status == status and r.content_type == "text/html"
            assert "Via" in r.headers and r.headers["Retry-After"] == "5"
            html = await r.text()
        assert tree(html).css_first("title").text().startswith(str(status))  # type: ignore[union-attr]
        assert "coupa" not in html.lower()  # the proxy's page, not the tenant's
        assert path in html  # proxies name the URL they could not reach
        await _until(lambda: sim.outage_mode is None)
        assert (await fetch(client, sim.base_url + path))[0] == 200


async def test_hang_holds_requests_until_the_outage_ends(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    url = sim.base_url + _ok_pos(sim)[0]
    async with client:
        await sim.outage("hang", seconds=1.0)
        start = time.perf_counter()
        with pytest.raises(asyncio.TimeoutError):
            await client.get(url, timeout=aiohttp.ClientTimeout(total=0.3))
        async with client.get(sim.base_url + "/__sim/stats") as r:  # /__sim still answers
            assert (await r.json())["outage"] == "hang"
        # A patient client gets its answer once the outage is over.
        status, _, _ = await fetch(client, url)
        assert status == 200 and time.perf_counter() - start >= 0.9
        assert sim.outage_mode is None
        await _until(lambda: sim.stats.in_flight == 0)
    assert sim.stats.outages[0].requests == 2


async def test_outages_scheduled_after_po_page_requests(make_sim: MakeSim) -> None:
    outages = (
        Outage(after_requests=2, seconds=0.5, mode="maintenance"),
        Outage(after_requests=3, seconds=0.5, mode="refuse"),
    )
    sim, client = await _signed_in(make_sim, pos=10, outages=outages)
    first, second, third = (sim.base_url + p for p in _ok_pos(sim)[:3])
    async with client:
        assert (await fetch(client, first))[0] == 200
        assert sim.outage_mode is None
        assert (await fetch(client, second))[0] == 200  # the 2nd is answered, then it starts
        assert sim.outage_mode == "maintenance"
        assert (await fetch(client, third))[0] == 503  # turned away: not counted
        assert (await fetch(client, sim.base_url + "/order_headers"))[0] == 503
        await _until(lambda: sim.outage_mode is None)
        async with client.get(sim.base_url + "/__sim/outage") as r:
            state = await r.json()
        assert state["po_pages"] == 2 and len(state["scheduled"]) == 1
        async with client.get(third) as r:  # the 3rd: answered, and its connection closed
            assert r.status == 200 and r.headers.get("Connection", "").lower() == "close"
        assert sim.outage_mode == "refuse" and await _refused(sim.port)
        await _until(lambda: sim.outage_mode is None)
        assert (await fetch(client, third))[0] == 200
    records = sim.stats.snapshot()["outages"]
    assert [(r["mode"], r["trigger"], r["requests_during"]) for r in records] == [
        ("maintenance", "schedule", 2),
        ("refuse", "schedule", 0),
    ]
    assert all(r["ended"] is not None for r in records)


async def test_timed_outage_counts_from_the_first_po_page(make_sim: MakeSim) -> None:
    outage = Outage(after_s=0.5, seconds=0.5, mode="proxy_504")
    sim, client = await _signed_in(make_sim, pos=5, outages=(outage,))
    url = sim.base_url + _ok_pos(sim)[0]
    async with client:
        await asyncio.sleep(0.7)  # the simulator's own start starts no clock
        assert (await fetch(client, sim.base_url + "/"))[0] == 200
        assert sim.outage_mode is None
        assert (await fetch(client, url))[0] == 200  # the first PO page: the clock starts
        waited = await _until(lambda: sim.outage_mode == "proxy_504")
        assert waited >= 0.4  # the clock started at the first PO page, not before
        assert (await fetch(client, url))[0] == 504
        await _until(lambda: sim.outage_mode is None)
        assert (await fetch(client, url))[0] == 200
    assert sim.stats.outages_started == 1


async def test_an_outage_due_during_another_waits_for_it(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(
        make_sim, pos=5, outages=(Outage(after_requests=1, seconds=0.3, mode="proxy_502"),)
    )
    url = sim.base_url + _ok_pos(sim)[0]
    async with client:
        await sim.outage("hang", seconds=0.5)
        assert (await fetch(client, url))[0] == 200  # held, then answered: the 1st PO page
        assert sim.outage_mode == "proxy_502"  # due while the hang ran; started at its end
        await _until(lambda: sim.outage_mode is None)
    assert [(r.mode, r.trigger) for r in sim.stats.outages] == [
        ("hang", "api"),
        ("proxy_502", "schedule"),
    ]


async def test_outage_endpoint(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    endpoint = sim.base_url + "/__sim/outage"
    path = _ok_pos(sim)[0]
    async with client:
        async with client.post(endpoint, json={"mode": "maintenance", "seconds": None}) as r:
            state = await r.json()
        assert r.status == 200 and state["active"]["mode"] == "maintenance"
        assert state["active"]["remaining"] is None
        async with client.post(endpoint, json={"mode": "proxy_502", "seconds": 30}) as r:
            assert (await r.json())["active"]["mode"] == "proxy_502"
        assert (await fetch(client, sim.base_url + path))[0] == 502
        async with client.post(endpoint, json={"mode": None}) as r:
            assert (await r.json())["active"] is None
        async with client.delete(endpoint) as r:  # nothing to end: fine
            assert r.status == 200 and (await r.json())["active"] is None
        for bad in (
            {"mode": "teapot"},
            {"mode": "reset", "seconds": -1},
            {"mode": "hang", "seconds": "x"},
            [1],
        ):
            async with client.post(endpoint, json=bad) as r:
                assert r.status == 400, bad
                assert "error" in await r.json()
        assert sim.outage_mode is None
        # Refuse over the port it closes: the answer still arrives, then the port is shut.
        async with client.post(endpoint, json={"mode": "refuse"}) as r:
            assert r.status == 200 and (await r.json())["active"]["mode"] == "refuse"
        assert await _refused(sim.port)
        assert await sim.end_outage()  # the Python API reaches it
        assert (await fetch(client, sim.base_url + path))[0] == 200
    assert [(r.mode, r.trigger) for r in sim.stats.outages] == [
        ("maintenance", "http"),
        ("proxy_502", "http"),
        ("refuse", "http"),
    ]


async def test_python_api_and_counters(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    url = sim.base_url + _ok_pos(sim)[0]
    async with client:
        with pytest.raises(ValueError, match="teapot"):
            await sim.outage("teapot")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await sim.outage("hang", seconds=0)
        assert not await sim.end_outage()
        with pytest.raises(RuntimeError):  # on its own loop: await outage() instead
            sim.outage_threadsafe("hang")
        await sim.outage("proxy_504", seconds=0.3)
        assert (await fetch(client, url))[0] == 504
        sim.reset_stats()  # a running outage is live state: kept
        assert sim.stats.outage == "proxy_504" and sim.stats.outages_started == 1
        assert sim.stats.requests_during_outages == 1
        await _until(lambda: sim.outage_mode is None)
        await sim.outage("maintenance", seconds=0.2)
        await _until(lambda: sim.outage_mode is None)
        async with client.get(sim.base_url + "/__sim/stats") as r:
            stats = await r.json()
    assert stats["outage"] is None and stats["outages_started"] == 2
    assert 0.45 <= stats["outage_seconds"] < 3
    assert stats["requests_during_outages"] == 1
    assert [o["mode"] for o in stats["outages"]] == ["proxy_504", "maintenance"]
    sim.reset_stats()
    assert sim.stats.snapshot()["outages"] == [] and sim.stats.outage_seconds == 0
    await sim.stop()
    with pytest.raises(RuntimeError):
        await sim.outage("hang")


async def test_control_port_stays_up_during_every_outage(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5, control_port=0)
    control = sim.control_url + "/__sim/outage"
    assert sim.control_url != sim.base_url
    url = sim.base_url + _ok_pos(sim)[0]
    async with client:
        async with client.post(control, json={"mode": "refuse"}) as r:
            assert r.status == 200
        assert await _refused(sim.port)
        async with client.get(sim.control_url + "/__sim/stats") as r:
            assert (await r.json())["outage"] == "refuse"
        async with client.get(sim.control_url + "/order_headers") as r:
            assert r.status == 404  # the control port serves /__sim/* only
        async with client.delete(control) as r:
            assert (await r.json())["active"] is None
        assert (await fetch(client, url))[0] == 200


def _thread_sim() -> tuple[Simulator, asyncio.AbstractEventLoop, Callable[[], None]]:
    """A simulator serving on its own loop in another thread; returns it and a stopper."""
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        async with Simulator(SimConfig(pos=5)) as sim:
            box["sim"], box["loop"], box["stop"] = sim, asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await box["stop"].wait()  # type: ignore[attr-defined]

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    loop = box["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)

    def stop() -> None:
        loop.call_soon_threadsafe(box["stop"].set)  # type: ignore[attr-defined]
        thread.join(30)
        assert not thread.is_alive()

    return box["sim"], loop, stop  # type: ignore[return-value]


async def test_threadsafe_api_from_another_thread() -> None:
    sim, _, stop = await asyncio.to_thread(_thread_sim)
    try:
        async with new_client() as client:
            await sign_in(client, sim)
            url = sim.base_url + _ok_pos(sim)[0]
            await asyncio.wrap_future(sim.outage_threadsafe("maintenance", 30))
            assert (await fetch(client, url))[0] == 503
            assert await asyncio.wrap_future(sim.end_outage_threadsafe())
            assert (await fetch(client, url))[0] == 200
    finally:
        await asyncio.to_thread(stop)


async def _hold(sim: Simulator, client: aiohttp.ClientSession, url: str) -> Awaitable[object]:
    """A request to ``url``, once the simulator holds it."""
    task = asyncio.create_task(fetch(client, url))
    await _until(lambda: sim.stats.in_flight >= 1)
    return task


@pytest.mark.parametrize("mode", OUTAGE_MODES)
async def test_stop_during_an_outage_is_fast_and_leaks_no_task(mode: str) -> None:
    before = asyncio.all_tasks()
    timed = Outage(after_s=30, seconds=1, mode="reset")  # its clock runs when we stop
    sim = Simulator(SimConfig(pos=5, control_port=0, outages=(timed,)))
    await sim.start()
    port = sim.port
    async with new_client() as client:
        await sign_in(client, sim)
        url = sim.base_url + _ok_pos(sim)[0]
        assert (await fetch(client, url))[0] == 200
        await sim.outage(mode, seconds=HELD_S)  # type: ignore[arg-type]
        held = await _hold(sim, client, url) if mode == "hang" else None
        async with asyncio.timeout(STOP_DEADLINE_S):  # not held until the outage ends
            await sim.stop()
        if held is not None:
            try:
                status, _, _ = await asyncio.wait_for(held, 5)  # type: ignore[misc]
                assert status == 503
            except aiohttp.ClientError:
                pass  # the connection closed first: also fine
    assert sim.outage_mode is None and sim.stats.outages[-1].ended is not None
    assert await _refused(port)  # not bound again after a refuse outage
    await asyncio.sleep(0.05)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t not in before and t is not current]
    assert not leaked, leaked
