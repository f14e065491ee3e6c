"""Benchmark the embedded Coupa simulator: PO pages per second over loopback.

Starts the simulator in a subprocess (`python -m coupa_async.sim`), signs in, then fetches
`/order_headers/{n}` from one or more client processes with aiohttp for a fixed time.

    .venv/bin/python scripts/bench_sim.py [--seconds 5] [--concurrency 32] [--clients 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import sys
import time
from urllib.parse import urlsplit

import aiohttp
from benchkit import start_sim, stop_sim

_URL = re.compile(r"listening on (http://\S+)")
_TOKEN = re.compile(r'name="authenticity_token" value="([^"]+)"')


async def _sign_in(session: aiohttp.ClientSession, base_url: str, user: str, pw: str) -> None:
    async with session.get(f"{base_url}/sessions/new") as r:
        token = _TOKEN.search(await r.text())
    assert token, "no sign-in form"
    form = {"authenticity_token": token.group(1), "user[login]": user, "user[password]": pw}
    async with session.post(f"{base_url}/sessions", data=form, allow_redirects=False) as r:
        assert r.status == 302, f"sign-in failed: HTTP {r.status}"
    async with session.get(f"{base_url}/order_headers", allow_redirects=False) as r:
        assert r.status == 200, f"not signed in: HTTP {r.status}"


async def _hammer(
    base_url: str, numbers: list[str], seconds: float, concurrency: int, max_requests: int
) -> tuple[int, int, float]:
    """Fetch PO pages until time or request budget runs out: (ok, failed, elapsed)."""
    host = urlsplit(base_url).hostname
    assert host in ("127.0.0.1", "localhost", "::1"), "loopback only"
    ok = failed = issued = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as session:
        await _sign_in(session, base_url, "buyer@example.com", "coupa-sim-password")
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(offset: int) -> None:
            nonlocal ok, failed, issued
            i = offset
            while time.perf_counter() < deadline and issued < max_requests:
                issued += 1
                url = f"{base_url}/order_headers/{numbers[i % len(numbers)]}"
                i += concurrency
                async with session.get(url, allow_redirects=False) as r:
                    await r.read()
                    if r.status == 200:
                        ok += 1
                    else:
                        failed += 1

        async with asyncio.TaskGroup() as tg:
            for k in range(concurrency):
                tg.create_task(worker(k))
        elapsed = time.perf_counter() - start
    return ok, failed, elapsed


def _client(args: tuple[str, list[str], float, int, int]) -> tuple[int, int, float]:
    return asyncio.run(_hammer(*args))


async def _stats(base_url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/__sim/stats") as r:
        data: dict[str, object] = await r.json()
        return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32, help="per client process")
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--pos", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--max-requests", type=int, default=500_000, help="per client process")
    args = parser.parse_args()

    proc, base_url = start_sim(
        "--pos", str(args.pos), "--profile", "uniform", "--latency-ms", str(args.latency_ms)
    )
    try:
        first = 15262984
        numbers = [str(first + i) for i in range(args.pos)]
        job = (base_url, numbers, args.seconds, args.concurrency, args.max_requests)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.clients) as pool:
            results = pool.map(_client, [job] * args.clients)
        stats = asyncio.run(_stats(base_url))
    finally:
        stop_sim(proc)
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    print(
        f"simulator {base_url}: {ok} PO pages in {elapsed:.2f} s from {args.clients} client "
        f"process(es) x {args.concurrency} concurrent = {ok / elapsed:,.0f} pages/s "
        f"({failed} non-200)"
    )
    print(
        f"server counted {stats['requests']} requests, peak concurrency "
        f"{stats['peak_concurrency']}, {stats['bytes_sent']} body bytes"
    )
    return 0 if failed == 0 and ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
