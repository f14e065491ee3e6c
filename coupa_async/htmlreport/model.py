"""What the HTML report shows: plain data, built from the journal (and the input, when known)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from coupa_async.running.metrics import MetricSample, RunEvent

RunState = Literal["finished", "interrupted", "running", "unknown"]


@dataclass(frozen=True, slots=True)
class ReportFile:
    """One saved file; ``href`` is its path relative to the output folder, with ``/``."""

    name: str
    href: str
    size: int
    source: str  # "PO" or "PR" (from the requisition)
    # A saved e-mail's conversions beside it: ``<name>.pdf`` and ``<name>_attachments/``.
    pdf: bool = False
    attachments: bool = False


@dataclass(frozen=True, slots=True)
class ReportAttachment:
    """One attachment a PO's pages showed, file or not: a row of manifest.csv.

    ``kind`` is ``file``, ``url`` or ``text``; ``value`` the URL (file, url) or the text (text).
    ``href`` is the saved file's path relative to the output folder, with ``/``; None when the
    attachment was not saved (a URL, a text, a file that could not be saved).
    """

    source: str  # "PO" or "PR" (from the requisition)
    place: str
    kind: str
    name: str
    value: str = ""
    href: str | None = None
    size: int | None = None
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class ReportPo:
    """One PO as the report lists it.

    ``outcome`` is an Outcome value, or ``PENDING`` (not settled yet) or ``INVALID`` (an input
    row without a valid number). ``levels`` are the input's hierarchy columns, when known.
    ``folder_href`` is the PO's folder relative to the output folder, with ``/``.
    """

    label: str
    outcome: str
    supplier: str = ""
    levels: tuple[str, ...] = ()
    folder_href: str | None = None
    message: str = ""
    po_url: str = ""
    attempts: int = 0
    finished_at: str = ""  # ISO 8601, as the journal keeps it
    found: int = 0
    files: tuple[ReportFile, ...] = ()
    # Every attachment in page order (none from a journal before attachments were recorded).
    attachments: tuple[ReportAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportRun:
    """The latest run into the folder: when it started and ended (Unix seconds), how it ended."""

    state: RunState = "unknown"
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything ``render_report`` needs; nothing in it has been escaped yet."""

    title: str
    generated_at: float
    run: ReportRun
    pos: Sequence[ReportPo]
    # The latest run's metrics, oldest first (may be empty: a journal from before metrics).
    samples: Sequence[MetricSample] = field(default_factory=tuple)
    events: Sequence[RunEvent] = field(default_factory=tuple)
    level_names: tuple[str, ...] = ()  # the input's hierarchy column names, when known
