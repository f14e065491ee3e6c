"""The run journal: SQLite state per output folder, so a rerun resumes exactly where it stopped.

One row per PO and one per saved file. A PO's final state and its files are written in one
transaction, only after its folder got its final name, and before the result is announced.
WAL mode with ``synchronous=NORMAL``: a crash never corrupts it, a commit costs well under 1 ms.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from coupa_async.errors import JournalError
from coupa_async.result import Outcome, PoResult, SavedFile, Source

SCHEMA_VERSION = 1
JOURNAL_DIR = ".coupa_async"
JOURNAL_NAME = "journal.sqlite3"
PENDING = "PENDING"
# Settled for good: a rerun skips these while their folder and files are still there.
KEPT = (Outcome.COMPLETED.value, Outcome.NO_ATTACHMENTS.value, Outcome.PO_NOT_FOUND.value)
FAILED_STATES = (Outcome.FAILED.value, Outcome.PARTIAL.value, Outcome.PR_NOT_ACCESSIBLE.value)

_SCHEMA = """
CREATE TABLE pos (
    label TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    supplier TEXT NOT NULL DEFAULT '',
    folder TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    po_url TEXT NOT NULL DEFAULT '',
    pr_url TEXT NOT NULL DEFAULT '',
    found INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL DEFAULT '',
    finished_at TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
CREATE TABLE files (
    label TEXT NOT NULL REFERENCES pos(label) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (label, name)
);
"""


# A file the journal recorded is the SavedFile the job reported; the old name is kept for the
# audit, which imports it from here.
KnownFile = SavedFile


@dataclass(frozen=True, slots=True)
class PoRecord:
    """What the journal knows of one PO."""

    label: str
    state: str
    supplier: str
    folder: Path | None
    message: str
    po_url: str
    pr_url: str
    found: int
    attempts: int
    finished_at: str
    files: tuple[SavedFile, ...]

    def intact(self) -> bool:
        """The final folder and every recorded file are still there, with their sizes."""
        if self.folder is None or not self.folder.is_dir():
            return False
        for known in self.files:
            try:
                if known.path.stat().st_size != known.size:
                    return False
            except OSError:
                return False
        return True

    def saved_files(self) -> list[SavedFile]:
        """The recorded files, as a list (a result's ``files``)."""
        return list(self.files)

    def as_result(self) -> PoResult:
        """The journal's facts as a result, for the report of a PO this run skipped."""
        finished = datetime.fromisoformat(self.finished_at) if self.finished_at else None
        files = self.saved_files()
        outcome = Outcome(self.state) if self.state in Outcome.__members__ else Outcome.FAILED
        result = PoResult(
            po_number=self.label,
            outcome=outcome,
            supplier=self.supplier,
            files=files,
            message=self.message,
            po_url=self.po_url,
            pr_url=self.pr_url,
            folder=self.folder,
            finished_at=finished,
            attempts=self.attempts,
        )
        return result


@dataclass
class ResumePlan:
    """What this run does with each PO of the input."""

    skip: list[PoRecord]
    retry: list[str]
    new: list[str]
    left_alone: list[str]
    # What the journal knew of the POs it looked at, so callers need not read it again.
    records: dict[str, PoRecord] = field(default_factory=dict)

    @property
    def to_process(self) -> list[str]:
        return [*self.retry, *self.new]


class Journal:
    """SQLite journal of one output folder, over one connection.

    The connection may be used from any thread (``run_table`` calls it through
    ``asyncio.to_thread`` so that a slow commit never blocks the loop), but by one thread at a
    time: callers serialise their calls.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.out_dir = path.parent.parent
        self._db = connection

    # ----- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, out_dir: Path, *, fresh: bool = False) -> Journal:
        """Open (or create) the journal of ``out_dir``; ``fresh`` keeps a copy of the old one."""
        folder = out_dir / JOURNAL_DIR
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(
                f"Cannot create {folder}: {exc.strerror}. Choose an output folder you can write."
            ) from None
        path = folder / JOURNAL_NAME
        if fresh and path.exists():
            aside = path.with_name(f"{JOURNAL_NAME}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{path}{suffix}")
                if source.exists():
                    os.replace(source, Path(f"{aside}{suffix}"))
        try:
            connection = sqlite3.connect(
                path, isolation_level=None, timeout=10, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalError(f"Cannot open the journal {path}: {exc}.") from None
        journal = cls(path, connection)
        journal._prepare()
        return journal

    def _prepare(self) -> None:
        db = self._db
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if version == 0 and not tables:
                db.execute("PRAGMA journal_mode=WAL")
                with self._transaction():
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                self._db.close()
                raise JournalError(
                    f"The journal {self.path} is from another version of coupa_async "
                    f"(schema {version}, this one reads {SCHEMA_VERSION}). It was left as it is. "
                    "Use the version that wrote it, or rerun with --fresh (the old journal is "
                    "kept beside the new one)."
                )
            else:
                check = db.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(check)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(
                f"The journal {self.path} is damaged ({exc}). It was left as it is. Move it "
                "away, or rerun with --fresh (the damaged journal is kept beside the new one)."
            ) from None

    @contextlib.contextmanager
    def _transaction(self):  # type: ignore[no-untyped-def]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    # ----- writing -----------------------------------------------------------------------------

    def add_pending(self, labels: list[str]) -> None:
        """Note POs this run will process (those the journal already knows keep their state)."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO pos (label, state, updated_at) VALUES (?, ?, ?)",
                [(label, PENDING, now) for label in labels],
            )

    def record(self, result: PoResult) -> None:
        """Write a settled PO and its files in one transaction."""
        folder = self._relative(result.folder) if result.folder else ""
        with self._transaction():
            self._db.execute(
                """INSERT INTO pos (label, state, supplier, folder, message, po_url, pr_url,
                       found, attempts, started_at, finished_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(label) DO UPDATE SET state=excluded.state,
                       supplier=excluded.supplier, folder=excluded.folder,
                       message=excluded.message, po_url=excluded.po_url, pr_url=excluded.pr_url,
                       found=excluded.found, attempts=pos.attempts + excluded.attempts,
                       started_at=excluded.started_at, finished_at=excluded.finished_at,
                       updated_at=excluded.updated_at""",
                (
                    result.po_number,
                    result.outcome.value,
                    result.supplier,
                    folder,
                    result.message,
                    result.po_url,
                    result.pr_url,
                    result.found,
                    result.attempts,
                    _iso(result.started_at),
                    _iso(result.finished_at or datetime.now(UTC)),
                    time.time(),
                ),
            )
            self._db.execute("DELETE FROM files WHERE label = ?", (result.po_number,))
            self._db.executemany(
                "INSERT INTO files (label, name, path, size, sha256, source, url)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        result.po_number,
                        saved.name,
                        self._relative(saved.path),
                        saved.size,
                        saved.sha256,
                        saved.source,
                        saved.url,
                    )
                    for saved in result.files
                ],
            )

    def _relative(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.out_dir))
        except ValueError:
            return str(path)

    # ----- reading -----------------------------------------------------------------------------

    def records(self, labels: list[str] | None = None) -> dict[str, PoRecord]:
        """Every PO the journal knows (or those of ``labels``) with its files."""
        rows = self._db.execute(
            "SELECT label, state, supplier, folder, message, po_url, pr_url, found, attempts,"
            " finished_at FROM pos"
        ).fetchall()
        files: dict[str, list[SavedFile]] = {}
        for label, name, path, size, sha256, source, url in self._db.execute(
            "SELECT label, name, path, size, sha256, source, url FROM files ORDER BY rowid"
        ):
            origin: Source = "PR" if source == "PR" else "PO"
            files.setdefault(label, []).append(
                SavedFile(name, self.out_dir / path, size, sha256, origin, url)
            )
        wanted = set(labels) if labels is not None else None
        return {
            row[0]: PoRecord(
                label=row[0],
                state=row[1],
                supplier=row[2],
                folder=self.out_dir / row[3] if row[3] else None,
                message=row[4],
                po_url=row[5],
                pr_url=row[6],
                found=row[7],
                attempts=row[8],
                finished_at=row[9],
                files=tuple(files.get(row[0], ())),
            )
            for row in rows
            if wanted is None or row[0] in wanted
        }

    def plan(self, labels: list[str], *, retry_failed_only: bool = False) -> ResumePlan:
        """Skip what is settled and intact; retry failed, partial and interrupted POs."""
        known = self.records(labels)
        plan = ResumePlan([], [], [], [], known)
        for label in labels:
            record = known.get(label)
            if record is None or record.state == PENDING:
                (plan.left_alone if retry_failed_only else plan.new).append(label)
            elif record.state in KEPT and record.intact():
                plan.skip.append(record)
            elif retry_failed_only and record.state not in FAILED_STATES:
                plan.left_alone.append(label)
            else:
                plan.retry.append(label)
        return plan


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""
