"""What an audit found: where the journal and the disk, the report or the site disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from coupa_async.errors import ExitCode
from coupa_async.results.journal import PENDING, PoRecord


class Check(StrEnum):
    """Which check a disagreement comes from."""

    FOLDER = "folder"
    FILE = "file"
    LEFTOVER = "leftover"
    DUPLICATE = "two folders"
    REPORT = "report"
    SITE = "site"
    API = "api"  # Coupa's REST API, a second witness (audit --api)


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One thing the journal says that is not so."""

    po: str  # the PO label, or "" for what belongs to no PO (a report file, say)
    check: Check
    journal: str  # what the journal says
    found: str  # what was found instead
    where: Path | None = None  # the folder or file concerned


@dataclass(frozen=True, slots=True)
class Unchecked:
    """A PO chosen for the online check whose pages (or API answers) could not be read."""

    po: str
    reason: str
    where: Path | None = None


@dataclass
class AuditReport:
    """The whole audit of one output folder."""

    out_dir: Path
    settled: int = 0  # POs the journal shows as settled, all checked offline
    pending: int = 0
    files_hashed: int = 0
    bytes_hashed: int = 0
    reports_read: list[Path] = field(default_factory=list)
    offline_s: float = 0.0
    online: bool = False  # whether the site was consulted
    online_planned: int = 0
    online_checked: int = 0
    online_s: float = 0.0
    sample_seed: int | None = None
    # audit --api: POs compared with the API, and those whose files were downloaded and hashed
    api: bool = False
    api_planned: int = 0
    api_checked: int = 0
    api_sampled: int = 0
    api_files_hashed: int = 0
    api_requests: int = 0
    api_s: float = 0.0
    interrupted: bool = False
    disagreements: list[Disagreement] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """0 proven; 3 a disagreement, or a PO that could not be checked; 130 interrupted."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.disagreements or self.unchecked:
            return ExitCode.ATTENTION
        return ExitCode.OK


def shown(path: Path | None, out: Path) -> str:
    """A path as a person reads it in a listing: from ``out`` down when it is inside."""
    if path is None:
        return "no folder"
    try:
        return str(path.relative_to(out)) or "."
    except ValueError:
        return str(path)


def state_said(record: PoRecord | None) -> str:
    """What the journal says of a PO, in a word or two."""
    if record is None:
        return "nothing of this PO"
    if record.state == PENDING:
        return "PENDING: not settled"
    return record.state
