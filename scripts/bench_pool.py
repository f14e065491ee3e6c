"""Benchmark of the worker pool (not a test): throughput by workers, start-up, memory, status().

Runs the simulator in its own process (latency 100 ms by default, uniform catalog of 120 POs
with three 50 KB PDFs each) and the real command line against it, once per worker count, then
times ``status()`` on a pool holding 10,000 queued tasks. Loopback only, bounded in time.

    .venv/bin/python scripts/bench_pool.py [--pos 120] [--latency-ms 100] [--workers 1 4 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from benchkit import start_run, start_sim, stop_sim, tree_pss_mb, write_po_input

PYTHON = sys.executable


def sim_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/__sim/stats", timeout=5) as response:
        return json.load(response)


def reset_sim(base_url: str) -> None:
    request = urllib.request.Request(f"{base_url}/__sim/reset", method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def run_cli(base_url: str, pos: list[int], workers: int, work: Path) -> dict:
    source = write_po_input(work / f"pos-{workers}.csv", pos)
    reset_sim(base_url)
    started = time.time()
    process = start_run(
        source, base_url, work / f"out-{workers}", work, "--workers", str(workers), "--mode", "auto"
    )
    root = psutil.Process(process.pid)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_pss_mb(root))
        time.sleep(0.25)
        if time.time() - started > 600:
            process.kill()
            raise SystemExit("a run took over 10 minutes; stopped")
    ended = time.time()
    stats = sim_stats(base_url)
    output = process.stdout.read() if process.stdout else ""
    return {
        "workers": workers,
        "exit": process.returncode,
        "wall_s": ended - started,
        "first_request_s": (stats["first_request_at"] or ended) - started,
        "work_s": (stats["last_request_at"] or ended) - (stats["first_request_at"] or started),
        "peak_pss_mb": peak,
        "po_pages": stats["requests"]["po_page"],
        "tail": output.strip().splitlines()[-1:] if process.returncode else [],
    }


async def time_status(tasks: int, workers: int) -> float:
    """Mean microseconds of Pool.status() with ``workers`` workers and ``tasks`` queued."""
    from coupa_async.coupa.job import PoTask
    from coupa_async.coupa.numbers import parse_po_number
    from coupa_async.pool import Pool, Worker

    class Stub:
        relaunches = 0
        renewals = 0
        generation = 0

    from coupa_async.gate import HostGate
    from coupa_async.layout import OutputLayout
    from coupa_async.settings import Settings

    pool = Pool(Settings(), Stub(), Stub(), HostGate(), None, OutputLayout(Path("/tmp")))  # type: ignore[arg-type]
    for n in range(tasks):
        pool.submit(PoTask(parse_po_number(10_000_000 + n)))
    for worker_id in range(1, workers + 1):
        pool.workers[worker_id] = Worker(worker_id)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        pool.status()
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos", type=int, default=120)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    sim, base_url = start_sim(
        "--pos", str(args.pos), "--profile", "uniform", "--latency-ms", str(args.latency_ms)
    )
    try:
        catalog = json.load(urllib.request.urlopen(f"{base_url}/__sim/catalog", timeout=10))
        numbers = [po["number"] for po in catalog["pos"]]
        rows = []
        with tempfile.TemporaryDirectory() as work:
            for workers in args.workers:
                row = run_cli(base_url, numbers, workers, Path(work))
                rows.append(row)
                print(
                    f"workers={workers}: exit {row['exit']}, {args.pos} POs in "
                    f"{row['work_s']:.1f} s of work ({args.pos / row['work_s']:.2f} POs/s), "
                    f"wall {row['wall_s']:.1f} s, first request {row['first_request_s']:.2f} s "
                    f"after start, peak PSS {row['peak_pss_mb']:.0f} MB {row['tail']}",
                    flush=True,
                )
        base = rows[0]
        for row in rows[1:]:
            speedup = base["work_s"] / row["work_s"]
            print(f"speed-up {row['workers']} workers vs {base['workers']}: {speedup:.2f}x")
    finally:
        stop_sim(sim)
    micros = asyncio.run(time_status(10_000, 8))
    print(f"status() with 8 workers and 10,000 queued tasks: {micros:.1f} µs per call")


if __name__ == "__main__":
    main()
