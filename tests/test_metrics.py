"""Run metrics: samples and events from status snapshots, kept bounded in the journal."""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import replace
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from coupa_async.engine.status import WorkerStatus
from coupa_async.htmlreport.build import report_data
from coupa_async.memory.watch import MemoryFigures
from coupa_async.results.journal import (
    JOURNAL_DIR,
    JOURNAL_NAME,
    MAX_EVENTS_PER_RUN,
    MAX_RUNS_KEPT,
    MAX_SAMPLES_PER_RUN,
    SCHEMA_VERSION,
    Journal,
)
from coupa_async.results.result import Outcome, PoResult
from coupa_async.running.metrics import MetricSample, MetricsRecorder, RunEvent
from coupa_async.running.run_status import PoolStatus


def status(**changes: object) -> PoolStatus:
    base = PoolStatus(
        workers=(
            WorkerStatus(1, "working", "PO1", 0, 0.0),
            WorkerStatus(2, "idle", None, 0, 0.0),
        ),
        target_workers=2,
        queued=10,
        waiting_retry=0,
        in_flight=1,
        done=0,
        outcomes={},
        rate_per_s=0.0,
        eta_s=None,
        paused_s=0.0,
        session_renewals=0,
        browser_relaunches=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_sample_holds_the_figures_of_its_status() -> None:
    memory = MemoryFigures(900, 612, True, 4000, None, False, 2, 2)
    recorder = MetricsRecorder(Clock())
    sample = recorder.take(status(done=7, bytes_received=1234, memory=memory, paused_s=1.5))
    assert sample == MetricSample(
        at=1_000.0,
        settled=7,
        bytes=1234,
        workers=1,
        target_workers=2,
        pss_mb=612,
        budget_mb=900,
        queued=10,
        waiting_retry=0,
        paused=True,
    )


def test_events_are_read_off_the_changes_between_samples() -> None:
    clock = Clock()
    recorder = MetricsRecorder(clock)
    recorder.take(status())
    clock.now += 1
    recorder.take(status(target_workers=1, session_renewals=1, paused_s=30.0))
    clock.now += 1
    recorder.take(status(target_workers=1, session_renewals=1, paused_s=29.0))  # no change
    clock.now += 1
    recorder.take(status(target_workers=2, session_renewals=1, browser_relaunches=1))
    _, events = recorder.unsaved()
    assert [(e.at, e.kind) for e in events] == [
        (1_001.0, "scaled"),
        (1_001.0, "session_renewed"),
        (1_001.0, "host_paused"),
        (1_003.0, "scaled"),
        (1_003.0, "browser_relaunched"),
    ]
    assert events[0].detail == "2 → 1 workers"
    assert recorder.unsaved() == ([], [])  # handed out once


def test_recent_rates_cover_the_window_only() -> None:
    clock = Clock()
    recorder = MetricsRecorder(clock)
    assert recorder.recent_rate_per_min() is None
    for second in range(121):
        clock.now = 1_000.0 + second
        # 1 PO a second for the first minute, then 1 every 2 seconds; 1 MB a second throughout
        settled = second if second <= 60 else 60 + (second - 60) // 2
        recorder.take(status(done=settled, bytes_received=second * 1_000_000))
    assert recorder.recent_rate_per_min(60) == pytest.approx(30.0)
    assert recorder.recent_bytes_per_s(10) == pytest.approx(1_000_000)


def samples_every_second(start: float, count: int) -> list[MetricSample]:
    return [MetricSample(start + i, i, i * 10, 2, 2, 500, 900, 5, 0, False) for i in range(count)]


def test_ten_hours_of_samples_stay_bounded_and_cover_the_run(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    run = journal.begin_run()
    ten_hours = samples_every_second(0.0, 36_000)
    for batch in range(0, len(ten_hours), 10):  # as the run saves them: every 10 s
        journal.add_metrics(run, ten_hours[batch : batch + 10], [])
    samples, _ = journal.metrics(run)
    assert len(samples) <= MAX_SAMPLES_PER_RUN
    assert samples[0].at == 0.0 and samples[-1].at == 35_999.0
    assert [s.at for s in samples] == sorted(s.at for s in samples)
    # The last minutes keep one sample a second; the start of the run is coarser, not gone.
    assert [s.at for s in samples[-60:]] == [float(t) for t in range(35_940, 36_000)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(samples)]
    assert max(gaps) <= 32  # even: no stretch of the run left bare
    journal.close()


def test_events_and_runs_are_bounded(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    runs = [journal.begin_run() for _ in range(MAX_RUNS_KEPT + 5)]
    first_kept = runs[-MAX_RUNS_KEPT]
    for run in runs:
        journal.add_metrics(run, samples_every_second(float(run), 2), [])
    events = [RunEvent(float(i), "host_paused", "Coupa asked to wait 2 s") for i in range(1500)]
    journal.add_metrics(runs[-1], [], events)
    assert len(journal.metrics(runs[-1])[1]) == MAX_EVENTS_PER_RUN
    assert journal.metrics(runs[-1])[1][-1].at == 1499.0  # the latest are kept
    journal.begin_run()
    assert journal.metrics(runs[0]) == ([], [])
    assert len(journal.metrics(first_kept + 1)[0]) == 2
    journal.close()


def test_a_journal_from_before_metrics_is_read_as_it_is_and_upgraded_by_a_run(
    tmp_path: Path,
) -> None:
    folder = tmp_path / JOURNAL_DIR
    folder.mkdir()
    db = sqlite3.connect(folder / JOURNAL_NAME)
    db.executescript(
        """
        CREATE TABLE pos (label TEXT PRIMARY KEY, state TEXT NOT NULL,
            supplier TEXT NOT NULL DEFAULT '', folder TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '', po_url TEXT NOT NULL DEFAULT '',
            pr_url TEXT NOT NULL DEFAULT '', found INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL DEFAULT '',
            finished_at TEXT NOT NULL DEFAULT '', updated_at REAL NOT NULL);
        CREATE TABLE files (label TEXT NOT NULL REFERENCES pos(label) ON DELETE CASCADE,
            name TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
            sha256 TEXT NOT NULL, source TEXT NOT NULL, url TEXT NOT NULL,
            PRIMARY KEY (label, name));
        INSERT INTO pos (label, state, message, updated_at)
            VALUES ('PO1', 'FAILED', 'the page never loaded', 0);
        PRAGMA user_version = 1;
        """
    )
    db.close()

    reader = Journal.open_read_only(tmp_path)
    assert reader.latest_run() is None
    data = report_data(reader)
    assert [(po.label, po.outcome, po.message) for po in data.pos] == [
        ("PO1", "FAILED", "the page never loaded")
    ]
    assert data.run.state == "unknown" and not data.samples
    reader.close()

    journal = Journal.open(tmp_path)
    assert journal.records()["PO1"].state == "FAILED"
    run = journal.begin_run()
    journal.add_metrics(run, samples_every_second(5.0, 3), [])
    assert len(journal.metrics(run)[0]) == 3
    journal.close()
    db = sqlite3.connect(folder / JOURNAL_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_the_report_tells_a_finished_a_running_and_a_killed_run_apart(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.record(PoResult("PO2", Outcome.NO_ATTACHMENTS, supplier="Acme"))
    run = journal.begin_run()
    journal.add_metrics(run, samples_every_second(10_000.0, 5), [])
    last = 10_004.0
    assert report_data(journal, now=last + 2).run.state == "running"
    killed = report_data(journal, now=last + 600).run
    assert (killed.state, killed.ended_at) == ("interrupted", last)
    journal.end_run(run, "finished")
    finished = report_data(journal, now=last + 600)
    assert finished.run.state == "finished" and finished.run.started_at is not None
    assert [s.at for s in finished.samples] == [10_000.0 + i for i in range(5)]
    journal.close()


async def test_the_recorder_saves_every_ten_samples_and_what_is_left_when_the_run_ends() -> None:
    saved: list[tuple[int, int]] = []  # (samples, events) per call of the saver

    async def save(samples: list[MetricSample], events: list[RunEvent]) -> None:
        saved.append((len(samples), len(events)))

    clock = Clock()
    recorder = MetricsRecorder(clock, save=save)
    done = itertools.count(1)

    def now_status() -> PoolStatus:
        clock.now += 1
        return status(done=next(done), outcomes={Outcome.COMPLETED: 1})

    with anyio.move_on_after(60):  # a deadline against a hang; 25 samples take milliseconds
        async with anyio.create_task_group() as group:
            group.start_soon(recorder.keep_sampling, now_status, 0.0)
            while len(recorder.recent) < 25:
                await anyio.lowlevel.checkpoint()
            group.cancel_scope.cancel()
    taken = len(recorder.recent)
    assert [samples for samples, _ in saved] == [10, 10]  # every ten samples, as they come
    await recorder.finish(now_status)  # the run as it ends: one more sample, the rest saved
    assert [samples for samples, _ in saved] == [10, 10, taken + 1 - 20]
    assert recorder.unsaved() == ([], [])  # nothing saved twice, nothing left behind


async def test_without_a_saver_the_recorder_keeps_its_samples_for_reading() -> None:
    recorder = MetricsRecorder(Clock())
    await recorder.finish(lambda: status(done=1))
    samples, _ = recorder.unsaved()
    assert len(samples) == 1 and len(recorder.recent) == 1
