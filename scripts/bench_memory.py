"""Benchmark of the memory watch (not a test): memory over a long run, and reaction time.

Phase 1: 2,000 POs of the uniform simulator profile (three 50 KB PDFs each), 4 workers, mode
auto, contexts recycled every 100 POs (the default), the memory watch on with its default
budget. The PSS of the whole process tree (this Python, the Playwright driver, Chromium) is
sampled once a second; reported at 25/50/75/100 % of the POs, and the growth from the first
quarter (after a warm-up of 100 POs) to the last. Also the watch's own CPU cost.

Phase 2: with work waiting, the budget is lowered so the next sample is over the high mark;
measured: first over-high sample -> decision -> the drained worker's current task done -> its
context closed. The budget is then restored and the pool grows back to 4; repeated.

The simulator runs in its own process, so its memory is not in the tree. Loopback only.

    .venv/bin/python scripts/bench_memory.py [--pos 2000] [--latency-ms 50] [--trials 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchkit import start_sim, stop_sim

from coupa_async import Downloader
from coupa_async.memory.policy import MIB
from coupa_async.memory.sampler import ProcessTreeSampler
from coupa_async.memory.watch import MemoryWatch
from coupa_async.settings import load_settings

PYTHON = sys.executable
WARM_UP_POS = 100


def read_catalog(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/__sim/catalog", timeout=10) as response:
        return json.load(response)


def mb(value: float) -> float:
    return value / MIB


async def phase_one(
    downloader: Downloader, pos: list[str], sampler: ProcessTreeSampler
) -> list[tuple[float, int, float]]:
    """Run ``pos``; return (seconds, POs done, tree PSS MB) once a second."""
    done = 0
    trace: list[tuple[float, int, float]] = []
    started = time.monotonic()

    async def consume() -> None:
        nonlocal done
        async for _ in downloader.run(pos):
            done += 1

    async with asyncio.TaskGroup() as group:
        runner = group.create_task(consume())
        while not runner.done():
            reading = await asyncio.to_thread(sampler.sample)
            trace.append((reading.at - started, done, mb(reading.tree_bytes)))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - reading.at)))
    reading = await asyncio.to_thread(sampler.sample)
    trace.append((reading.at - started, done, mb(reading.tree_bytes)))
    return trace


def report_phase_one(trace: list[tuple[float, int, float]], total: int, watch: MemoryWatch) -> None:
    seconds = trace[-1][0]
    print(f"phase 1: {total} POs in {seconds:.0f} s ({total / seconds:.1f} POs/s), 4 workers")
    print(f"  load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for share in (0.25, 0.5, 0.75, 1.0):
        at = next(row for row in trace if row[1] >= share * total)
        print(
            f"  PSS at {share:4.0%} of the POs ({at[1]:4d} done, {at[0]:5.0f} s): {at[2]:6.0f} MB"
        )
    warm = [row for row in trace if row[1] >= min(WARM_UP_POS, total // 8)]
    first = [row[2] for row in warm if row[1] < total / 4]
    last = [row[2] for row in warm if row[1] >= total * 3 / 4]
    q1, q4 = statistics.mean(first), statistics.mean(last)
    print(
        f"  mean PSS, first quarter after warm-up ({len(first)} samples): {q1:.0f} MB; "
        f"last quarter ({len(last)} samples): {q4:.0f} MB; growth {100 * (q4 / q1 - 1):+.1f} %"
    )
    peak = max(row[2] for row in trace)
    print(f"  peak PSS {peak:.0f} MB; median {statistics.median(r[2] for r in warm):.0f} MB")
    sampler = watch.sampler
    assert isinstance(sampler, ProcessTreeSampler)
    budget = watch.policy.budget_bytes or 0
    cost = (sampler.cpu_s + watch.loop_cpu_s) / seconds
    per_sample = 1000 * sampler.cpu_s / max(1, sampler.samples)
    per_tick = 1000 * watch.loop_cpu_s / max(1, watch.ticks)
    print(
        f"  memory watch: budget {mb(budget):.0f} MB (default), {watch.ticks} ticks, "
        f"{len(watch.steps)} steps, PSS read exactly in {sampler.exact_readings} samples; "
        f"CPU {per_sample:.1f} ms per sample + {per_tick:.2f} ms in the loop "
        f"= {100 * cost:.2f} % of one core"
    )


async def phase_two(downloader: Downloader, spare: list[str], trials: int) -> None:
    """Force pressure ``trials`` times; time each reaction until the drained context closed."""
    pool = downloader.engine
    watch = downloader.start_memory_watch()  # the running watch (memory.enabled)
    assert pool is not None
    policy = watch.policy
    policy.settings = policy.settings.model_copy(update={"ease_after_s": 1.0})
    budget = policy.budget_bytes
    supply = iter(spare)
    rows: list[tuple[float, float, float, float]] = []

    async def feed() -> None:
        while True:
            while pool.queue.queued < 8:
                downloader.submit(next(supply))
            await asyncio.sleep(0.01)

    async with asyncio.TaskGroup() as group:
        feeder = group.create_task(feed())
        for _ in range(trials):
            while len(pool.workers) < 4 or any(
                w.state.value == "starting" for w in pool.workers.values()
            ):
                await asyncio.sleep(0.01)
            await asyncio.sleep(2.0)  # steady, and past the cooldown
            seen = len(watch.steps)
            assert watch.last is not None
            policy.budget_bytes = int(watch.last.tree_bytes / policy.settings.high_mark * 0.9)
            while len(watch.steps) == seen:
                await asyncio.sleep(0.001)
            step = watch.steps[seen]
            assert step.drain is not None and step.pressure_since is not None
            policy.budget_bytes = budget
            task_done = None
            while (worker := pool.workers.get(step.drain)) is not None:
                if task_done is None and worker.current is None:
                    task_done = time.monotonic()
                await asyncio.sleep(0.001)
            closed = time.monotonic()
            task_done = task_done or closed
            rows.append(
                (
                    step.decided_at - step.pressure_since,
                    task_done - step.decided_at,
                    closed - task_done,
                    closed - step.pressure_since,
                )
            )
        feeder.cancel()
    await downloader.join()
    print(f"phase 2: {trials} forced shrinks (4 -> 3 workers), seconds")
    print(f"  load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("  first over-high sample -> decision | -> current task done | -> context closed | total")
    for row in rows:
        print("  " + " | ".join(f"{value:8.3f}" for value in row))
    totals = [row[3] for row in rows]
    print(
        f"  total: median {statistics.median(totals):.3f} s, max {max(totals):.3f} s; "
        f"without the current task: max {max(r[0] + r[2] for r in rows):.3f} s"
    )


async def run(args: argparse.Namespace, base_url: str, work: Path) -> None:
    catalog = await asyncio.to_thread(read_catalog, base_url)
    numbers = [f"PO{po['number']}" for po in catalog["pos"]]
    settings = load_settings(
        {
            "base_url": base_url,
            "username": "buyer@example.com",
            "password": "coupa-sim-password",
            "out": str(work / "out"),
            "storage_state": str(work / "state.json"),
            "workers": 4,
            "mode": "auto",
        },
        config_file=work / "empty.config",
        env_file=work / "absent.env",
        environ={},
    ).settings
    async with Downloader(settings) as downloader:
        watch = downloader.start_memory_watch()
        exact = ProcessTreeSampler(exact_every=1)  # the report reads PSS every time
        trace = await phase_one(downloader, numbers[: args.pos], exact)
        report_phase_one(trace, args.pos, watch)
        await phase_two(downloader, numbers[args.pos :], args.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    sim, base_url = start_sim(
        "--pos", str(args.pos + 1500), "--profile", "uniform", "--latency-ms", str(args.latency_ms)
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            (work / "empty.config").write_text("")
            asyncio.run(run(args, base_url, work))
    finally:
        stop_sim(sim)


if __name__ == "__main__":
    main()
