"""The memory watch against the real engine, real Chromium and the simulator.

A scripted sampler plays the memory readings (pressure until the engine is down to one worker,
then calm until it is back at four, twenty times); then a real run with a budget just above
one worker's footprint, where Chromium's own growth must force the engine down.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from coupa_async import Downloader, PoResult
from coupa_async.engine import Engine
from coupa_async.memory.policy import GIB, MIB, MemoryPolicy
from coupa_async.memory.sampler import MemorySample, ProcessTreeSampler
from coupa_async.sim import Faults, SimConfig, Simulator

from .runkit import check_against_catalog, numbers, settings_for

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("unfiltered_logs")]


BUDGET = 1000 * MIB
CYCLES = 20


class ScriptedSampler:
    """Pressure until one context is left; then, once a PO has completed there, calm
    until the engine is back at its maximum; ``cycles`` times. Its third reading fails."""

    def __init__(self, engine: Engine[Any, Any], results: list[PoResult], cycles: int) -> None:
        self.engine, self.results, self.cycles = engine, results, cycles
        self.phase = "high"
        self.done_cycles = 0
        self.calls = 0
        self.at_one = 0  # results when the engine reached one worker
        self.done_at_one = 0  # POs completed while the engine had one worker, all cycles

    def sample(self) -> MemorySample:  # runs in a thread: reads counters only
        self.calls += 1
        if self.calls == 3:
            raise OSError("a reading that fails")
        contexts, done = len(self.engine.workers), len(self.results)
        if self.phase == "high" and contexts == 1:
            self.phase, self.at_one = "hold", done
        elif self.phase == "hold" and done > self.at_one:
            self.phase = "low"
            self.done_at_one += done - self.at_one
        elif self.phase == "low" and self.engine.target == contexts == self.engine.max_workers:
            self.done_cycles += 1
            self.phase = "high" if self.done_cycles < self.cycles else "done"
        share = {"high": 0.95, "hold": 0.75, "low": 0.3, "done": 0.3}[self.phase]
        return MemorySample(
            at=time.monotonic(),
            tree_bytes=int(BUDGET * share),
            uses_pss=True,
            available_bytes=8 * GIB,
            total_bytes=16 * GIB,
        )


async def test_twenty_shrink_and_grow_cycles_lose_and_repeat_nothing(tmp_path: Path) -> None:
    config = SimConfig(seed=21, pos=4000, profile="uniform", uniform_files=1)
    async with Simulator(config) as sim:
        settings = settings_for(
            sim,
            tmp_path,
            workers=4,
            max_workers=4,
            **{
                "memory.enabled": False,  # started below with the scripted sampler
                "memory.budget_mb": BUDGET // MIB,
                "memory.interval_s": 0.02,
                "memory.cooldown_s": 0.02,
                "memory.ease_after_s": 0.03,
            },
        )
        results: list[PoResult] = []
        submitted: list[str] = []
        seen: set[tuple[int, int]] = set()

        async def on_result(result: PoResult) -> None:
            results.append(result)

        with structlog.testing.capture_logs() as logs:
            async with Downloader(settings) as downloader:
                downloader.add_listener(on_result)
                engine = downloader.engine
                assert engine is not None
                sampler = ScriptedSampler(engine, results, CYCLES)
                policy = MemoryPolicy(settings.memory, settings.min_workers, engine.max_workers)
                watch = downloader.start_memory_watch(sampler=sampler, policy=policy)
                supply = iter(numbers(sim))
                async with asyncio.timeout(150):
                    while sampler.done_cycles < CYCLES:
                        while engine.queue.queued < 8:  # work is always waiting
                            submitted.append(next(supply))
                            downloader.submit(submitted[-1])
                        memory = downloader.status().memory
                        if memory is not None:
                            seen.add((memory.target, memory.actual))
                        await asyncio.sleep(0.005)
                    await downloader.join()
                status = downloader.status()
        shrinks = [e for e in logs if e["event"] == "memory_shrink"]
        grows = [e for e in logs if e["event"] == "memory_grow"]
        failures = [e for e in logs if e["event"] == "memory_sample_failed"]
    assert sampler.done_cycles == CYCLES and sampler.done_at_one >= CYCLES
    assert (1, 1) in seen and (4, 4) in seen
    assert len(shrinks) >= 3 * CYCLES and len(grows) >= 3 * CYCLES
    assert all("high mark" in e["reason"] and e["budget_mb"] == 1000 for e in shrinks)
    assert all("work waiting" in e["reason"] for e in grows)
    assert len(failures) == 1 and watch.ticks > 0  # a failed reading did not stop the watch
    assert sorted(r.po_number for r in results) == sorted(submitted)  # none lost, none twice
    check_against_catalog(sim, results, settings.out)
    assert status.done == len(submitted) and status.queued == status.in_flight == 0
    assert status.memory is not None and status.memory.budget_mb == 1000


@pytest.mark.long
async def test_tight_budget_real_growth_forces_the_pool_down(tmp_path: Path) -> None:
    config = SimConfig(seed=22, pos=20, faults=Faults(latency_ms=10))
    async with Simulator(config) as sim:
        settings = settings_for(
            sim,
            tmp_path,
            workers=1,
            max_workers=4,
            mode="render",
            # Shrinks 1.5 s apart: a loaded machine's first heap reads may all miss their bound
            # (it doubles after a miss), and a later shrink must find the heaps read.
            **{"memory.enabled": False, "memory.interval_s": 0.2, "memory.cooldown_s": 1.5},
        )
        results: list[PoResult] = []
        targets: list[int] = []
        with structlog.testing.capture_logs() as logs:
            async with Downloader(settings) as downloader:
                engine = downloader.engine
                assert engine is not None

                async def consume() -> None:
                    async for result in downloader.run(numbers(sim)):
                        results.append(result)

                async with asyncio.timeout(120), asyncio.TaskGroup() as group:
                    group.create_task(consume())
                    while len(results) < 5:  # one worker, warmed up
                        await asyncio.sleep(0.02)
                    sampler = ProcessTreeSampler()
                    readings = [await asyncio.to_thread(sampler.sample) for _ in range(3)]
                    one_worker = max(r.tree_bytes for r in readings)
                    budget_mb = int((one_worker + 20 * MIB) / settings.memory.high_mark / MIB) + 1
                    policy = MemoryPolicy(
                        settings.memory.model_copy(update={"budget_mb": budget_mb}),
                        settings.min_workers,
                        engine.max_workers,
                    )
                    engine.scale_to(4)
                    downloader.start_memory_watch(sampler=sampler, policy=policy)
                    while len(results) < len(numbers(sim)):
                        targets.append(engine.target)
                        await asyncio.sleep(0.02)
    shrinks = [e for e in logs if e["event"] == "memory_shrink"]
    assert targets[0] == 4 and min(targets) == 1
    assert shrinks and all("over the high mark" in e["reason"] for e in shrinks)
    assert any(e["drain_mb"] is not None for e in shrinks)  # per-worker JS heap was read
    assert not [e for e in logs if e["event"] == "memory_grow"]
    check_against_catalog(sim, results, settings.out)
    assert len(results) == len(numbers(sim))
