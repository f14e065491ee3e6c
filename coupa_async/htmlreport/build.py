"""The report's data from the journal, and from the input when the run has it at hand."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from coupa_async.emails.options import is_email
from coupa_async.emails.outputs import our_outputs
from coupa_async.htmlreport.model import (
    ReportAttachment,
    ReportData,
    ReportFile,
    ReportPo,
    ReportRun,
    RunState,
)
from coupa_async.results.journal import PENDING, Journal, PoRecord, RunRecord
from coupa_async.results.result import FoundAttachment, SavedFile
from coupa_async.running.metrics import MetricSample
from coupa_async.tabular.rows import InputRow

INVALID = "INVALID"
# A run still marked running whose last sample is older than this was stopped without saying.
STALE_RUN_S = 30.0


def report_data(
    journal: Journal, rows: Sequence[InputRow] | None = None, *, now: float | None = None
) -> ReportData:
    """What the journal knows, in input order when ``rows`` are given (invalid rows included),
    else every PO the journal knows; the latest run's metrics."""
    now = time.time() if now is None else now
    out_dir = journal.out_dir
    records = journal.records()
    pos = _in_input_order(rows, records, out_dir) if rows is not None else _all(records, out_dir)
    run = journal.latest_run()
    samples, events = journal.metrics(run.id) if run is not None else ([], [])
    deepest = max((len(po.levels) for po in pos), default=0)
    return ReportData(
        title=f"Coupa attachments: {out_dir.name or out_dir}",
        generated_at=now,
        run=_run_of(run, samples, now),
        pos=pos,
        samples=samples,
        events=events,
        level_names=tuple(f"Level {n}" for n in range(1, deepest + 1)),
    )


def _all(records: dict[str, PoRecord], out_dir: Path) -> list[ReportPo]:
    return [_po_of(records[label], out_dir) for label in sorted(records)]


def _in_input_order(
    rows: Sequence[InputRow], records: dict[str, PoRecord], out_dir: Path
) -> list[ReportPo]:
    pos: list[ReportPo] = []
    seen: set[str] = set()
    for row in rows:
        if row.po is None:
            pos.append(ReportPo(label=row.raw_po, outcome=INVALID, message=row.error))
            continue
        label = row.po.label
        if label in seen:
            continue
        seen.add(label)
        record = records.get(label)
        if record is None:
            pos.append(ReportPo(label=label, outcome=PENDING, levels=row.levels))
        else:
            pos.append(_po_of(record, out_dir, row.levels))
    return pos


def _po_of(record: PoRecord, out_dir: Path, levels: tuple[str, ...] = ()) -> ReportPo:
    return ReportPo(
        label=record.label,
        outcome=record.state,
        supplier=record.supplier,
        levels=levels,
        folder_href=_href(record.folder, out_dir) if record.folder is not None else None,
        # An e-mail that could not be converted is said after the PO's own message.
        message="; ".join(filter(None, (record.message, *record.conversion_errors))),
        po_url=record.po_url,
        attempts=record.attempts,
        finished_at=record.finished_at,
        found=record.found,
        files=tuple(
            _file_of(saved, out_dir, [f.name for f in record.files]) for saved in record.files
        ),
        attachments=tuple(
            _attachment_of(found, record.folder, out_dir) for found in record.attachments
        ),
    )


def _file_of(saved: SavedFile, out_dir: Path, server_names: list[str]) -> ReportFile:
    """A saved file, with whether its e-mail conversions are beside it under their plain names
    (``<name>.pdf``, ``<name>_attachments/``), ours, not a server file of that name."""
    pdf = attachments = False
    if is_email(saved.name):
        our_pdf, our_folder = our_outputs(saved.path, server_names)
        pdf = our_pdf == saved.path.with_name(f"{saved.name}.pdf")
        attachments = our_folder == saved.path.with_name(f"{saved.name}_attachments")
    href = _href(saved.path, out_dir)
    return ReportFile(saved.name, href, saved.size, saved.source, pdf, attachments)


def _attachment_of(found: FoundAttachment, folder: Path | None, out_dir: Path) -> ReportAttachment:
    """An attachment; a saved file's href is in the PO's final folder, as in manifest.csv."""
    href = None
    if found.saved_name and folder is not None:
        href = _href(folder / found.saved_name, out_dir)
    return ReportAttachment(
        source=found.source,
        place=found.place,
        kind=found.kind,
        name=found.name,
        value=found.value,
        href=href,
        size=found.size,
        sha256=found.sha256,
    )


def _href(path: Path, out_dir: Path) -> str:
    """``path`` relative to the output folder, with ``/`` (not yet percent-encoded)."""
    try:
        return path.relative_to(out_dir).as_posix()
    except ValueError:
        return path.as_posix()


def _run_of(run: RunRecord | None, samples: Sequence[MetricSample], now: float) -> ReportRun:
    if run is None:
        return ReportRun()
    last_seen = samples[-1].at if samples else run.started_at
    state: RunState
    if run.state in ("finished", "interrupted"):
        state = run.state  # type: ignore[assignment]
    elif now - last_seen > STALE_RUN_S:
        state = "interrupted"  # killed before it could say so
    else:
        state = "running"
    ended = (
        run.ended_at if run.ended_at is not None else (None if state == "running" else last_seen)
    )
    return ReportRun(state=state, started_at=run.started_at, ended_at=ended)
