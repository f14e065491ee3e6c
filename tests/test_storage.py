"""A full disk mid-run: one sentence, exit 6, nothing recorded lost, and the rerun finishes."""

from __future__ import annotations

import asyncio
import resource
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME, KEPT, PENDING, Journal
from coupa_async.sim import SimConfig, Simulator
from tests.test_cli import cli_env, finish, read_report, start_cli, write_input

pytestmark = pytest.mark.browser

# No file of the tool's process may grow past this: the catalog's one big file (26 MB) meets
# it, the journal (its WAL stays under ~4 MB) does not.
FILE_SIZE_LIMIT = 8 * 2**20


def _small_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: an error, not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@pytest.mark.long
async def test_a_full_disk_stops_the_run_calmly_and_the_rerun_finishes(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=2, pos=20)) as sim:
        big = [po for po in sim.catalog.pos if any(f.size > FILE_SIZE_LIMIT for f in po.files)]
        assert len(big) == 1
        labels = [f"PO{po.number}" for po in sim.catalog.pos]
        source = write_input(tmp_path / "pos.csv", labels)
        env = cli_env(tmp_path, COUPA_USERNAME=sim.username, COUPA_PASSWORD=sim.password)
        out = tmp_path / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coupa_async",
            *args,
            "--workers",
            "2",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_small_disk,
        )
        code, output = await finish(process)
        assert code == 6, output
        assert "is the disk full?" in output and "run the same command again" in output
        assert "Traceback" not in output and "Unexpected error" not in output

        expected = {f"PO{po.number}": po.expected_outcome for po in sim.catalog.pos}
        db = sqlite3.connect(out / JOURNAL_DIR / JOURNAL_NAME)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        assert not list(out.rglob("*.part")) and not list(out.rglob("*.tmp"))
        journal = Journal.open_read_only(out)
        records = journal.records()
        journal.close()
        big_label = f"PO{big[0].number}"
        assert records[big_label].state == PENDING  # put back, not charged, not settled
        for label, record in records.items():
            if record.state != PENDING:
                assert record.state == expected[label], label  # nothing settled wrongly
                if record.state in KEPT:
                    assert record.intact(), label

        code, output = await finish(await start_cli(tmp_path, *args, env=env))
        assert code in (0, 3), output
        rows = read_report(out / "report.csv")
        assert {row["PO_NUMBER"]: row["STATUS"] for row in rows} == expected
        assert all(p.name.endswith(f"_{expected[big_label]}") for p in out.rglob(f"{big_label}_*"))
        assert not list(out.rglob("*.part"))
