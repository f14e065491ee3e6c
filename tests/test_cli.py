"""The command line as a person uses it: exit codes, Ctrl+C, expired sessions, the report."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import psutil
import pytest

from coupa_async.sim import Faults, SimConfig, Simulator
from coupa_async.sim.catalog import RECIPES

from .clikit import cli_env, finish, read_report, start_cli, still_running, write_input


async def test_run_without_base_url_explains_and_exits_2(tmp_path: Path) -> None:
    source = write_input(tmp_path / "pos.csv", ["PO1"])
    code, output = await finish(
        await start_cli(tmp_path, "run", str(source), env=cli_env(tmp_path))
    )
    assert code == 2
    assert "COUPA_BASE_URL" in output and "demo" in output


async def test_run_with_missing_input_exits_2(tmp_path: Path) -> None:
    code, output = await finish(
        await start_cli(
            tmp_path,
            "run",
            str(tmp_path / "nope.csv"),
            "--base-url",
            "http://127.0.0.1:9",
            env=cli_env(tmp_path),
        )
    )
    assert code == 2 and "does not exist" in output


# Twelve POs of this seed hold every outcome (a list that never arrives among them, one that
# fails at once rather than one that waits out the settle bound at each attempt).
VARIED = SimConfig(seed=428, pos=12)
OUTCOMES = {"COMPLETED", "NO_ATTACHMENTS", "PO_NOT_FOUND", "FAILED", "PARTIAL", "PR_NOT_ACCESSIBLE"}


async def run_from(home: Path, sim: Simulator, pos: list[str]) -> tuple[int, str, Path]:
    """``run`` over ``pos`` against ``sim`` with its credentials, from ``home`` (which holds the
    input, the output folder and the saved session): exit code, output and output folder."""
    source = write_input(home / "pos.csv", pos)
    env = cli_env(home, COUPA_USERNAME=sim.username, COUPA_PASSWORD=sim.password)
    out = home / "out"
    args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out))
    code, output = await finish(await start_cli(home, *args, env=env))
    return code, output, out


@pytest.mark.browser
async def test_exit_codes_0_and_3_and_the_report(tmp_path: Path) -> None:
    async def clean_run(home: Path) -> None:
        async with Simulator(SimConfig(seed=3, pos=4, profile="uniform")) as clean:
            pos = [f"po{po.number}" for po in clean.catalog.pos]
            code, output, out = await run_from(home, clean, pos)
            assert code == 0, output
            rows = read_report(out / "report.csv")
            assert [row["STATUS"] for row in rows] == ["COMPLETED"] * 4
            assert rows[0]["COST_CENTER"] == "CC0" and rows[0]["PO_NUMBER"].startswith("po")
            assert clean.password not in output

    async def varied_run(home: Path) -> None:
        async with Simulator(VARIED) as varied:
            assert {po.expected_outcome for po in varied.catalog.pos} == OUTCOMES
            pos = [f"PO{po.number}" for po in varied.catalog.pos] + ["PO12X"]
            code, output, out = await run_from(home, varied, pos)
            assert code == 3, output
            assert "need attention" in output
            statuses = [row["STATUS"] for row in read_report(out / "report.csv")]
            assert statuses[-1] == "INVALID"
            expected = [po.expected_outcome for po in varied.catalog.pos]
            assert statuses[:-1] == expected

    # Two runs side by side, each with its own simulator and home (input, output folder,
    # saved session: both tenants are at 127.0.0.1, where one's cookies would reach the other).
    homes = [tmp_path / "clean", tmp_path / "varied"]
    for home in homes:
        home.mkdir()
    await asyncio.gather(clean_run(homes[0]), varied_run(homes[1]))


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


async def _wait_for_files(sim: Simulator, count: int) -> None:
    async with asyncio.timeout(60):
        while sim.stats.snapshot()["requests"].get("file", 0) < count:
            await asyncio.sleep(0.05)


@pytest.mark.browser
async def test_sigint_mid_run_exits_130_cleanly_and_resumably(tmp_path: Path) -> None:
    async with Simulator(
        SimConfig(seed=21, pos=len(RECIPES), faults=Faults(latency_ms=100))
    ) as sim:
        source = write_input(tmp_path / "pos.csv", [f"PO{po.number}" for po in sim.catalog.pos])
        env = cli_env(
            tmp_path,
            COUPA_USERNAME=sim.username,
            COUPA_PASSWORD=sim.password,
            COUPA_TIMEOUTS__SHUTDOWN_S="15",
        )
        out = tmp_path / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out), "--workers", "2")
        process = await start_cli(tmp_path, *args, env=env)
        await _wait_for_files(sim, 4)
        family = _descendants(process.pid)
        assert any("chrom" in p.name() for p in family)
        process.send_signal(signal.SIGINT)
        code, output = await finish(process, timeout=60)  # a deadline: the grace is 15 s
        assert code == 130, output
        assert not await still_running(family)
        rows = read_report(out / "report.csv")
        statuses = [row["STATUS"] for row in rows]
        assert "PENDING" in statuses and len(rows) == len(RECIPES)
        expected = {f"PO{po.number}": po for po in sim.catalog.pos}
        for row in rows:
            if row["STATUS"] == "PENDING":
                # No folder dressed as final (a work folder may wait for the rerun).
                label = row["PO_NUMBER"]
                assert all(p.name == f"{label}__WORK" for p in out.rglob(f"{label}_*"))
                continue
            po = expected[row["PO_NUMBER"]]
            assert row["STATUS"] == po.expected_outcome
            folder = Path(row["DOWNLOAD_FOLDER"])
            saved = [p for p in folder.iterdir() if p.is_file() and not _email_pdf(p.name)]
            assert len(saved) == len(po.expected_files)
        assert "resume" in output


def _email_pdf(name: str) -> bool:
    """A saved e-mail's PDF, written beside it (not a file of the PO's)."""
    return name.lower().endswith((".msg.pdf", ".eml.pdf", "(e-mail).pdf"))


@pytest.mark.browser
async def test_expired_session_without_credentials_exits_4(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=22, pos=30, faults=Faults(latency_ms=60))) as sim:
        login_env = cli_env(tmp_path, COUPA_USERNAME=sim.username, COUPA_PASSWORD=sim.password)
        code, output = await finish(
            await start_cli(tmp_path, "login", "--base-url", sim.base_url, env=login_env)
        )
        assert code == 0, output
        state = tmp_path / "state.json"
        assert state.stat().st_mode & 0o777 == 0o600
        assert sim.password not in state.read_text()

        source = write_input(tmp_path / "pos.csv", [f"PO{po.number}" for po in sim.catalog.pos])
        out = tmp_path / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out), "--workers", "2")
        process = await start_cli(tmp_path, *args, env=cli_env(tmp_path))
        await _wait_for_files(sim, 3)
        sim.expire_sessions()
        code, output = await finish(process)
        assert code == 4, output
        assert "coupa_async login" in output
        statuses = [row["STATUS"] for row in read_report(out / "report.csv")]
        assert "PENDING" in statuses and "FAILED" not in statuses


@pytest.mark.browser
async def test_status_tells_what_was_done_and_what_a_rerun_would_do(tmp_path: Path) -> None:
    async def status_of_nothing() -> None:
        home = tmp_path / "elsewhere"
        home.mkdir()
        nothing = home / "nothing"
        code, output = await finish(
            await start_cli(home, "status", "--out", str(nothing), env=cli_env(home))
        )
        assert code == 2 and "No run has written" in output

    async def run(sim: Simulator) -> Path:
        code, output, out = await run_from(
            tmp_path, sim, [f"PO{po.number}" for po in sim.catalog.pos]
        )
        assert code == 3, output
        return out

    async with Simulator(SimConfig(seed=753, pos=12)) as sim:
        assert {po.expected_outcome for po in sim.catalog.pos} == OUTCOMES
        # The status of a folder no run has written is asked while the run goes on elsewhere.
        _, out = await asyncio.gather(status_of_nothing(), run(sim))
    code, output = await finish(
        await start_cli(tmp_path, "status", "--out", str(out), env=cli_env(tmp_path))
    )
    assert code == 0, output
    failed = [
        po
        for po in sim.catalog.pos
        if po.expected_outcome in ("FAILED", "PARTIAL", "PR_NOT_ACCESSIBLE")
    ]
    kept = len(sim.catalog.pos) - len(failed)
    assert f"skip {kept} settled" in output and f"retry {len(failed)} failed" in output
    assert all(f"PO{po.number}" in output for po in failed)


async def test_an_infinite_duration_is_refused_with_a_sentence(tmp_path: Path) -> None:
    env = cli_env(tmp_path, COUPA_TIMEOUTS__DOWNLOAD_S="inf")
    source = write_input(tmp_path / "pos.csv", ["PO1"])
    for args in (("config",), ("run", str(source), "--base-url", "http://127.0.0.1:9")):
        code, output = await finish(await start_cli(tmp_path, *args, env=env))
        assert code == 2, output
        assert "'timeouts.download_s'" in output and "finite number" in output
        assert "Traceback" not in output and output.count("\n") == 1


def _damaged_journal(out: Path) -> Path:
    """A journal with records whose pages past the second are overwritten: SQLite opens it,
    then finds it malformed while reading."""
    from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME, Journal
    from coupa_async.results.result import Outcome, PoResult

    journal = Journal.open(out)
    try:
        journal.add_pending([f"PO{n}" for n in range(600)])  # pages enough to overwrite
        for n in range(0, 600, 3):
            journal.record(PoResult(f"PO{n}", Outcome.FAILED, message="x" * 200))
    finally:
        journal.close()
    path = out / JOURNAL_DIR / JOURNAL_NAME
    data = bytearray(path.read_bytes())
    garbage = random.Random(7)
    for at in range(2 * 4096, len(data), 4096):
        data[at : at + 4096] = garbage.randbytes(4096)
    path.write_bytes(bytes(data))
    return path


async def test_status_and_report_on_a_damaged_journal_say_so(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    path = _damaged_journal(damaged)
    garbage = tmp_path / "garbage"
    (garbage / path.parent.name).mkdir(parents=True)
    (garbage / path.parent.name / path.name).write_bytes(random.Random(8).randbytes(20_000))
    for out in (damaged, garbage):
        for command in ("status", "report"):
            code, output = await finish(
                await start_cli(tmp_path, command, "--out", str(out), env=cli_env(tmp_path))
            )
            assert code == 2, output
            assert str(out / path.parent.name / path.name) in output
            assert "Unexpected error" not in output and "Traceback" not in output
            assert output.startswith("coupa-async: ") and output.count("\n") == 1
            assert out is garbage or "damaged" in output
