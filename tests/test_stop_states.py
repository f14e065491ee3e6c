"""Every stop ends the process: SIGTERM in each state a run can wait in (signing in, signing in
again, paused by the tenant's Retry-After) ends the command with exit 130 and its sentence,
within the close deadlines, with no process of the run left behind.

The time from the signal to the exit is printed (figures belong to benchmarks); the deadline
of each wait here only catches a stop that does not end.
"""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from coupa_async.sim import Faults, SimConfig, Simulator

from .clikit import still_running

pytestmark = pytest.mark.browser

SHUTDOWN_S = 10
CLOSE_S = 5
# Grace, then closing (contexts, browser, driver, converter) and a margin: the stop deadline.
ENDS_WITHIN_S = SHUTDOWN_S + 4 * CLOSE_S + 10 + 30


def _env(tmp_path: Path, sim: Simulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPA_")}
    env.update(
        HOME=str(tmp_path),
        COUPA_STORAGE_STATE=str(tmp_path / "state.json"),
        COUPA_USERNAME=sim.username,
        COUPA_PASSWORD=sim.password,
        COUPA_TIMEOUTS__SHUTDOWN_S=str(SHUTDOWN_S),
        COUPA_TIMEOUTS__CLOSE_S=str(CLOSE_S),
        COUPA_TIMEOUTS__NAVIGATION_S="120",  # a hung sign-in must not end on its own first
        COUPA_LOG_LEVEL="warning",
        COLUMNS="120",
    )
    return env


async def _start(tmp_path: Path, sim: Simulator) -> asyncio.subprocess.Process:
    source = tmp_path / "pos.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["PO_NUMBER"])
        writer.writerows([f"PO{po.number}"] for po in sim.catalog.pos)
    args = ("run", str(source), "--base-url", sim.base_url, "--out", str(tmp_path / "out"))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coupa_async",
        *args,
        "--workers",
        "2",
        cwd=tmp_path,
        env=_env(tmp_path, sim),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(90):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"never reached: {what}")


async def _stop_and_watch(process: asyncio.subprocess.Process, state: str) -> str:
    family = psutil.Process(process.pid).children(recursive=True)
    loop = asyncio.get_running_loop()
    signalled = loop.time()
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(ENDS_WITHIN_S):
        out, err = await process.communicate()
    print(f"stop while {state}: exit {process.returncode} {loop.time() - signalled:.1f} s")
    output = out.decode() + err.decode()
    assert process.returncode == 130, output
    assert "resume" in output and "Traceback" not in output
    left = await still_running(family)
    assert not left, left
    return output


def _count(sim: Simulator, key: str, kind: str | None = None) -> int:
    stats = sim.stats.snapshot()
    return int(stats[key].get(kind, 0)) if kind else int(stats[key])


async def test_a_stop_while_signing_in_ends_the_process(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=4, pos=6)) as sim:
        sim.inject("hang", "/sessions", None)  # the sign-in form's answer never comes
        process = await _start(tmp_path, sim)
        await _until(lambda: _count(sim, "requests", "login") >= 1, "the sign-in posted")
        await asyncio.sleep(0.5)
        await _stop_and_watch(process, "signing in")


async def test_a_stop_while_signing_in_again_ends_the_process(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=4, pos=30, faults=Faults(latency_ms=50))) as sim:
        process = await _start(tmp_path, sim)
        await _until(lambda: _count(sim, "requests", "file") >= 2, "files under way")
        sim.inject("hang", "/sessions", None)
        sim.expire_sessions()
        logins = _count(sim, "requests", "login")
        await _until(lambda: _count(sim, "requests", "login") > logins, "signing in again")
        await asyncio.sleep(0.5)
        await _stop_and_watch(process, "signing in again")


async def test_a_stop_while_the_tenant_asks_to_wait_ends_the_process(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=4, pos=30, faults=Faults(latency_ms=50))) as sim:
        process = await _start(tmp_path, sim)
        await _until(lambda: _count(sim, "requests", "file") >= 2, "files under way")
        sim.inject("429", "/order_headers/", 1, retry_after=250)
        await _until(lambda: _count(sim, "rate_limited") >= 1, "the tenant asked to wait")
        await asyncio.sleep(1)
        await _stop_and_watch(process, "paused")
