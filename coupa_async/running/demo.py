"""``coupa-async demo``: the whole tool against its embedded Coupa simulator, no account needed."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import anyio
from pydantic import SecretStr
from rich.console import Console

from coupa_async.errors import ExitCode
from coupa_async.running.table_run import RunSummary, load_input, print_summary, run_table
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.catalog import RECIPES
from coupa_async.terminal_text import markup, safe_text

DEMO_INVALID_ROWS = ("PO12AB34", "not a number")


def write_demo_input(path: Path, numbers: list[str]) -> None:
    """An input file as users bring them: mixed prefixes and case, blanks, a few bad rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    forms = ("PO{}", "po{}", " PO{} ", "{}")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["PO_NUMBER", "NOTE"])
        for index, number in enumerate(numbers):
            writer.writerow([forms[index % len(forms)].format(number), f"row {index + 1}"])
        for bad in DEMO_INVALID_ROWS:
            writer.writerow([bad, "an invalid row, reported and never sent"])


def check_against_catalog(summary: RunSummary, sim: Simulator) -> list[str]:
    """Where the run differs from what the simulator says a correct tool must produce."""
    problems = []
    for po in sim.catalog.pos:
        result = summary.results.get(f"PO{po.number}")
        if result is None:
            problems.append(f"PO{po.number}: no result")
            continue
        got = sorted(saved.sha256 for saved in result.files)
        want = sorted(expected.sha256 for expected in po.expected_files)
        links = result.links_and_texts
        if result.outcome.value != po.expected_outcome or got != want or links != po.expected_links:
            problems.append(
                f"PO{po.number}: {result.outcome.value} with {len(got)} files and {links} "
                f"links or texts, expected {po.expected_outcome} with {len(want)} and "
                f"{po.expected_links} ({po.recipe})"
            )
    return problems


async def run_demo(
    settings: Settings, *, out: Path, pos: int | None, seed: int, stop: asyncio.Event
) -> ExitCode:
    """Start the simulator, sign in, run the engine over its whole catalog, print a summary."""
    console = Console()
    pos = len(RECIPES) if pos is None else pos
    async with Simulator(SimConfig(seed=seed, pos=pos)) as sim:
        console.print(
            markup(
                "Simulated Coupa at [bold]{url}[/] with {pos} POs; downloading into {out}",
                url=sim.base_url,
                pos=pos,
                out=out,
            )
        )
        settings = settings.model_copy(
            update={
                "base_url": sim.base_url,
                "username": sim.username,
                "password": SecretStr(sim.password),
                "out": out,
                "storage_state": out / ".coupa_async" / "demo-storage-state.json",
            }
        )
        input_path = out / "demo-input.csv"
        await anyio.to_thread.run_sync(
            write_demo_input, input_path, [str(po.number) for po in sim.catalog.pos]
        )
        table = await anyio.to_thread.run_sync(load_input, input_path)
        summary = await run_table(settings, table, stop=stop, console=Console(stderr=True))
        print_summary(summary, console)
        if not summary.interrupted:
            problems = check_against_catalog(summary, sim)
            if problems:
                console.print("[red]Differences from the simulator's catalog:[/]")
                for problem in problems:
                    console.print(safe_text(f"  {problem}"))
                return ExitCode.ERROR
            console.print(
                f"[green]All {pos} POs match the simulator's expected outcomes, files "
                "(compared by SHA-256) and links.[/]"
            )
            return ExitCode.OK
        return summary.exit_code
