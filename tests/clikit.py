"""Running the command line as a user would: its environment, input files, reports."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing of the machine's COUPA_* settings leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPA_")}
    env.update(
        HOME=str(tmp_path),
        COUPA_STORAGE_STATE=str(tmp_path / "state.json"),
        COLUMNS="120",
    )
    env.update(extra)
    return env


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
