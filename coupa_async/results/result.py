"""What processing one PO produced: the typed result the engine, journal and report use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal


class Outcome(StrEnum):
    """Final outcome of one PO, as users already know them from the folder names."""

    COMPLETED = "COMPLETED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    NO_ATTACHMENTS = "NO_ATTACHMENTS"
    PO_NOT_FOUND = "PO_NOT_FOUND"
    PR_NOT_ACCESSIBLE = "PR_NOT_ACCESSIBLE"
    INVALID = "INVALID"

    @property
    def is_success(self) -> bool:
        """COMPLETED and NO_ATTACHMENTS need no attention from the user."""
        return self in (Outcome.COMPLETED, Outcome.NO_ATTACHMENTS)


Source = Literal["PO", "PR"]
# What an attachment is: a file (bytes to save), a URL (a link to an outside address, no bytes)
# or a text (shown inline, no bytes).
AttachmentKind = Literal["file", "url", "text"]


@dataclass(frozen=True, slots=True)
class SavedFile:
    """One attachment saved on disk: as the job reports it, and as the journal records it.

    ``source`` says whether it came from the PO page or its requisition (``PR``).
    """

    name: str
    path: Path
    size: int
    sha256: str
    source: Source
    url: str


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One attachment that could not be saved, and why."""

    url: str
    name: str
    reason: str
    source: Source


@dataclass(frozen=True, slots=True)
class FoundAttachment:
    """One attachment a page showed, file or not: where it was and what became of it.

    ``place`` says where on the page: ``header``, ``line 2``, ``comment by Jane Doe at
    2024-03-01 10:22``, ``requisition header``, ``requisition line 1``. ``value`` is the URL of a
    file or URL attachment, or the text of a text attachment. ``saved_name``, ``size`` and
    ``sha256`` are set for a file saved into the PO's folder.
    """

    source: Source
    place: str
    kind: AttachmentKind
    name: str
    value: str = ""
    saved_name: str = ""
    size: int | None = None
    sha256: str = ""


@dataclass(slots=True)
class PoResult:
    """Everything known about one PO after processing it."""

    po_number: str
    outcome: Outcome
    supplier: str = ""
    files: list[SavedFile] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    message: str = ""
    po_url: str = ""
    pr_url: str = ""
    folder: Path | None = None
    started_at: datetime | None = None  # when its first attempt started
    finished_at: datetime | None = None
    attempts: int = 1
    mode: str = ""
    # One sentence per saved e-mail that could not be converted; never changes the outcome.
    conversion_errors: list[str] = field(default_factory=list)
    # Every attachment the pages showed (files, URLs, texts), in page order: the manifest's rows.
    attachments: list[FoundAttachment] = field(default_factory=list)

    @property
    def found(self) -> int:
        """Attachments found (saved or not)."""
        return len(self.files) + len(self.problems)

    @property
    def links_and_texts(self) -> int:
        """URL and text attachments found: recorded, never fetched, never a file problem."""
        return sum(1 for found in self.attachments if found.kind != "file")

    @property
    def downloaded(self) -> int:
        return len(self.files)

    @property
    def seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()
