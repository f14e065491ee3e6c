"""A run's metrics, report.html and manifest.csv, from the command line: during the run, at
Ctrl+C, at the end."""

from __future__ import annotations

import asyncio
import csv
import signal
from pathlib import Path

import pytest

from coupa_async.htmlreport.build import report_data
from coupa_async.results.journal import KEPT, PENDING, Journal
from coupa_async.sim import Faults, SimConfig, Simulator
from coupa_async.tabular import MANIFEST_COLUMNS, MANIFEST_NAME
from coupa_async.tabular.report_table import neutralise

from .clikit import cli_env, finish, start_cli, write_input

pytestmark = pytest.mark.browser


def settled_in(out: Path) -> int:
    try:
        journal = Journal.open_read_only(out)
    except Exception:  # not created yet
        return 0
    try:
        return sum(1 for record in journal.records().values() if record.state != PENDING)
    finally:
        journal.close()


def manifest_matches_journal(out: Path, labels: list[str]) -> None:
    """manifest.csv holds the journal's attachments of every settled PO, in input then page
    order."""
    with (out / MANIFEST_NAME).open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
        rows = [(r["PO_NUMBER"], r["LOCATION"], r["KIND"], r["NAME"]) for r in reader]
    journal = Journal.open_read_only(out)
    records = journal.records()
    journal.close()
    expected = [
        (label, neutralise(found.place), found.kind, neutralise(found.name))
        for label in labels
        if label in records
        for found in records[label].attachments
    ]
    assert rows == expected


async def test_a_run_keeps_its_metrics_and_report_html_from_start_to_resume(
    tmp_path: Path,
) -> None:
    # Sixteen POs hold every outcome; the latency keeps the first run going while the report is
    # written, with POs still pending at Ctrl+C.
    async with Simulator(SimConfig(seed=13, pos=16, faults=Faults(latency_ms=150))) as sim:
        labels = [f"PO{po.number}" for po in sim.catalog.pos]
        source = write_input(tmp_path / "pos.csv", labels)
        env = cli_env(tmp_path, COUPA_USERNAME=sim.username, COUPA_PASSWORD=sim.password)
        out = tmp_path / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out))
        process = await start_cli(tmp_path, *args, "--workers", "2", env=env)
        async with asyncio.timeout(90):
            while settled_in(out) < 3:
                await asyncio.sleep(0.2)

        # While the run goes on, the report is written from its journal.
        code, output = await finish(await start_cli(tmp_path, "report", "--out", str(out), env=env))
        assert code == 0, output
        assert (out / "report.html").is_file()
        reader = Journal.open_read_only(out)
        during = report_data(reader)
        reader.close()
        assert during.run.state == "running"
        assert any(po.outcome != PENDING for po in during.pos)

        # The latency only kept the first run going while the report was written: its rest,
        # and the rerun, need none.
        sim.config.faults = Faults()
        process.send_signal(signal.SIGINT)
        code, output = await finish(process, timeout=60)
        assert code == 130, output
        journal = Journal.open_read_only(out)
        stopped = report_data(journal)
        first_run = journal.latest_run()
        journal.close()
        assert first_run is not None and stopped.run.state == "interrupted"
        settled_first = sum(1 for po in stopped.pos if po.outcome != PENDING)
        kept_first = sum(1 for po in stopped.pos if po.outcome in KEPT)
        assert stopped.samples, "the run's last sample is saved as it ends"
        assert stopped.samples[-1].settled == settled_first
        html = (out / "report.html").read_text(encoding="utf-8")
        assert all(po.label in html for po in stopped.pos)
        manifest_matches_journal(out, labels)

        # The rerun finishes the rest: a second run, with its own metrics.
        code, output = await finish(await start_cli(tmp_path, *args, env=env))
        assert code in (0, 3), output
        journal = Journal.open_read_only(out)
        finished = report_data(journal)
        second_run = journal.latest_run()
        journal.close()
        assert second_run is not None and second_run.id == first_run.id + 1
        assert finished.run.state == "finished"
        assert sorted(po.label for po in finished.pos) == sorted(labels)
        assert all(po.outcome != PENDING for po in finished.pos)
        # It settled what the first left pending or failed, no more.
        assert finished.samples[-1].settled == len(labels) - kept_first
        assert "report.html" in output and MANIFEST_NAME in output
        manifest_matches_journal(out, labels)  # the first run's POs, skipped now, included
