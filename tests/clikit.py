"""Running the command line as a user would: its environment, input files, reports."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import sys
from pathlib import Path

import psutil

# Set by tests/conftest.py while a test without the ``browser`` marker runs: the command line
# finds no browser at this path, so an unmarked test cannot start Chromium through a child.
FORBIDDEN_BROWSER = "/this-test-starts-Chromium--mark-it-browser"
BROWSER_PATH_VAR = "COUPA_BROWSER__EXECUTABLE_PATH"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing of the machine's COUPA_* settings leaks in (only the guard
    that keeps a test without the ``browser`` marker from starting Chromium)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPA_")}
    if os.environ.get(BROWSER_PATH_VAR) == FORBIDDEN_BROWSER:
        env[BROWSER_PATH_VAR] = FORBIDDEN_BROWSER
    env.update(
        HOME=str(tmp_path),
        COUPA_STORAGE_STATE=str(tmp_path / "state.json"),
        COLUMNS="120",
    )
    env.update(extra)
    return env


async def still_running(processes: list[psutil.Process], deadline_s: float = 30) -> list:
    """Those of ``processes`` still running once all have ended or ``deadline_s`` has passed (a
    deadline that catches a process left behind, not a measure of speed); zombies count as
    ended (their parent is gone, and this container's first process may not reap them)."""

    def running() -> list[psutil.Process]:
        alive = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.NoSuchProcess:
                continue
        return alive

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline_s):
            while running():
                await asyncio.sleep(0.05)
    return running()


def write_input(path: Path, pos: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["PO_NUMBER", "COST_CENTER"])
        for index, po in enumerate(pos):
            writer.writerow([po, f"CC{index}"])
    return path


async def start_cli(tmp_path: Path, *args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coupa_async",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = 120) -> tuple[int, str]:
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    return process.returncode or 0, out.decode() + err.decode()


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))
