"""The run journal: SQLite state per output folder, so a rerun resumes exactly where it stopped.

One row per PO, one per saved file and one per attachment its pages showed (the manifest's
rows). A PO's final state, its files and its attachments are written in one transaction, only
after its folder got its final name, and before the result is announced. WAL mode with
``synchronous=NORMAL``: a crash never corrupts it, a commit costs well under 1 ms. Beside them,
each run's metrics (one sample a second, see ``metrics``), thinned as they grow so a ten-hour run
stays small.

The journal is never opened through a link, and a damaged journal is never changed: every
SQLite error that says so becomes a JournalError naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from coupa_async.errors import InputFileError, JournalError, StorageError, storage_error
from coupa_async.results.no_links import LinkRefusedError, is_link, link_sentence, open_fd
from coupa_async.results.out_lock import OutputFolderLock
from coupa_async.results.result import (
    AttachmentKind,
    FoundAttachment,
    Outcome,
    PoResult,
    SavedFile,
    Source,
)
from coupa_async.running.metrics import MetricSample, RunEvent

SCHEMA_VERSION = 4
# Schema 1 had no metrics, schema 2 no conversion errors, schema 3 no attachments: each is read
# as it is, and upgraded when a run writes to it.
READABLE_SCHEMAS = (1, 2, 3, 4)
JOURNAL_DIR = ".coupa_async"
JOURNAL_NAME = "journal.sqlite3"
# Files SQLite keeps beside the journal in WAL mode.
SIDE_FILES = ("-wal", "-shm")
# SQLite's own words for a damaged file: SQLITE_CORRUPT, SQLITE_FORMAT, SQLITE_NOTADB.
_DAMAGED_CODES = frozenset({11, 24, 26})
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
    updated_at REAL NOT NULL,
    conversion_errors TEXT NOT NULL DEFAULT ''
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
# Every attachment a PO's pages showed, file or not, in page order (``position``).
_ATTACHMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS attachments (
    label TEXT NOT NULL REFERENCES pos(label) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    source TEXT NOT NULL,
    place TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    saved_name TEXT NOT NULL,
    size INTEGER,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (label, position)
);
"""
_ADD_CONVERSION_ERRORS = "ALTER TABLE pos ADD COLUMN conversion_errors TEXT NOT NULL DEFAULT ''"
_METRICS_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    ended_at REAL,
    state TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS samples (
    run INTEGER NOT NULL,
    at REAL NOT NULL,
    settled INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    workers INTEGER NOT NULL,
    target_workers INTEGER NOT NULL,
    pss_mb INTEGER,
    budget_mb INTEGER,
    queued INTEGER NOT NULL,
    waiting_retry INTEGER NOT NULL,
    paused INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_run ON samples (run, at);
CREATE TABLE IF NOT EXISTS events (
    run INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""
# Bounds of the metrics: samples per run (older ones thinned to every other as it grows),
# events per run, runs whose metrics are kept.
MAX_SAMPLES_PER_RUN = 4000
RECENT_FULL_SAMPLES = 600
MAX_EVENTS_PER_RUN = 1000
MAX_RUNS_KEPT = 20
_SAMPLE_COLUMNS = (
    "at, settled, bytes, workers, target_workers, pss_mb, budget_mb, queued, waiting_retry, paused"
)


P = ParamSpec("P")
R = TypeVar("R")


def journal_error(path: Path, exc: sqlite3.Error) -> JournalError:
    """The one sentence for an SQLite error reading or writing the journal at ``path``."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in _DAMAGED_CODES or type(exc) is sqlite3.DatabaseError:
        return JournalError(
            f"The journal {path} is damaged ({exc}). It was left as it is: move it aside (or "
            "rerun with --fresh, which keeps it beside the new one) and run again; a new run "
            "starts over, and files already saved stay in place."
        )
    return JournalError(
        f"Cannot read the journal {path} ({exc}). Check that its folder can be read and written, "
        "then try again."
    )


def _guarded(method: Callable[Concatenate[Journal, P], R]) -> Callable[Concatenate[Journal, P], R]:
    """``method`` with every SQLite error that escapes it said as a JournalError."""

    @functools.wraps(method)
    def guarded(self: Journal, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.ProgrammingError:
            raise  # a misuse of the connection (closed, say), not the journal's state
        except sqlite3.DatabaseError as exc:
            raise journal_error(self.path, exc) from None

    return guarded


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run into the folder: started and ended (Unix seconds), and how it ended.

    ``state`` is ``running`` until the run ends; a run killed before it could say so stays
    ``running`` (its last sample tells when it stopped)."""

    id: int
    started_at: float
    ended_at: float | None
    state: str


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
    conversion_errors: tuple[str, ...] = ()
    # Every attachment the PO's pages showed, in page order (none from a journal before schema 4).
    attachments: tuple[FoundAttachment, ...] = ()
    started_at: str = ""  # ISO time its first attempt started ("" when unknown)

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
        started = datetime.fromisoformat(self.started_at) if self.started_at else None
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
            started_at=started,
            finished_at=finished,
            attempts=self.attempts,
            conversion_errors=list(self.conversion_errors),
            attachments=list(self.attachments),
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

    def __init__(
        self, path: Path, connection: sqlite3.Connection, lock: OutputFolderLock | None = None
    ) -> None:
        self.path = path
        self.out_dir = path.parent.parent
        self._db = connection
        self._lock = lock

    # ----- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, out_dir: Path, *, fresh: bool = False, exclusive: bool = False) -> Journal:
        """Open (or create) the journal of ``out_dir``; ``fresh`` keeps a copy of the old one.

        ``exclusive`` (a run): first take the output folder's lock (``OutputFolderLock``),
        held until the journal is closed; ConfigurationError if another run holds it.
        """
        lock = OutputFolderLock.take(out_dir) if exclusive else None
        try:
            path = _ready_path(Path(out_dir), fresh)
            try:
                connection = sqlite3.connect(
                    path, isolation_level=None, timeout=10, check_same_thread=False
                )
            except sqlite3.Error as exc:
                raise JournalError(f"Cannot open the journal {path}: {exc}.") from None
            journal = cls(path, connection, lock)
            journal._prepare()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return journal

    def _prepare(self) -> None:
        db = self._db
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if version == 0 and not tables:
                db.execute("PRAGMA journal_mode=WAL")
                with self._transaction():
                    self._create(_SCHEMA + _METRICS_SCHEMA + _ATTACHMENTS_SCHEMA)
            elif version in (1, 2, 3):
                with self._transaction():
                    self._create((_METRICS_SCHEMA if version == 1 else "") + _ATTACHMENTS_SCHEMA)
                    if version < 3:
                        db.execute(_ADD_CONVERSION_ERRORS)
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
        except (sqlite3.Error, StorageError) as exc:
            self._db.close()
            if isinstance(exc, StorageError):
                raise
            raise journal_error(self.path, exc) from None

    def _create(self, schema: str) -> None:
        for statement in schema.split(";"):
            if statement.strip():
                self._db.execute(statement)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @classmethod
    def open_read_only(cls, out_dir: Path) -> Journal:
        """The journal of ``out_dir`` for reading, without writing a byte beside it; safe while
        a run writes to it.

        Raises InputFileError when ``out_dir`` or its journal does not exist, JournalError when
        the journal is from another version or damaged.
        """
        if not out_dir.is_dir():
            raise InputFileError(
                f"No run has written to {out_dir} yet: the folder does not exist. Pass the --out "
                "folder of an earlier run."
            )
        path = out_dir / JOURNAL_DIR / JOURNAL_NAME
        _refuse_links(path)
        if not path.is_file():
            raise InputFileError(
                f"No run has written to {out_dir} yet (no {JOURNAL_DIR}/{JOURNAL_NAME}). "
                "Pass the --out folder of an earlier run."
            )
        try:
            connection = sqlite3.connect(_read_only_uri(path), uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise journal_error(path, exc) from None
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            empty = version == 0 and connection.execute("SELECT 1 FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            connection.close()
            raise journal_error(path, exc) from None
        if version == 0 and empty is None:
            connection.close()
            raise InputFileError(
                f"No run has recorded anything in {out_dir} yet (its journal {path} is empty). "
                "Pass the --out folder of an earlier run."
            )
        if version not in READABLE_SCHEMAS:
            connection.close()
            raise JournalError(
                f"The journal {path} is from another version of coupa_async (schema {version}, "
                f"this one reads {SCHEMA_VERSION}). Read it with the version that wrote it."
            )
        return cls(path, connection)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; a write the disk refuses is a StorageError (the run stops,
        what was committed before stays)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise storage_error(f"the journal {self.path}", exc) from exc

    def close(self) -> None:
        """Close the connection, then drop the output folder's lock if this journal holds it."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        if self._lock is not None:
            self._lock.release()

    # ----- writing -----------------------------------------------------------------------------

    @_guarded
    def add_pending(self, labels: list[str]) -> None:
        """Note POs this run will process (those the journal already knows keep their state)."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO pos (label, state, updated_at) VALUES (?, ?, ?)",
                [(label, PENDING, now) for label in labels],
            )

    @_guarded
    def record(self, result: PoResult) -> None:
        """Write a settled PO, its files and its attachments in one transaction."""
        folder = self._relative(result.folder) if result.folder else ""
        with self._transaction():
            self._db.execute(
                """INSERT INTO pos (label, state, supplier, folder, message, po_url, pr_url,
                       found, attempts, started_at, finished_at, updated_at, conversion_errors)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(label) DO UPDATE SET state=excluded.state,
                       supplier=excluded.supplier, folder=excluded.folder,
                       message=excluded.message, po_url=excluded.po_url, pr_url=excluded.pr_url,
                       found=excluded.found, attempts=pos.attempts + excluded.attempts,
                       started_at=excluded.started_at, finished_at=excluded.finished_at,
                       updated_at=excluded.updated_at,
                       conversion_errors=excluded.conversion_errors""",
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
                    "\n".join(result.conversion_errors),
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
            self._db.execute("DELETE FROM attachments WHERE label = ?", (result.po_number,))
            self._db.executemany(
                "INSERT INTO attachments (label, position, source, place, kind, name, value,"
                " saved_name, size, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        result.po_number,
                        position,
                        found.source,
                        found.place,
                        found.kind,
                        found.name,
                        found.value,
                        found.saved_name,
                        found.size,
                        found.sha256,
                    )
                    for position, found in enumerate(result.attachments)
                ],
            )

    def _relative(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.out_dir))
        except ValueError:
            return str(path)

    # ----- reading -----------------------------------------------------------------------------

    @_guarded
    def records(self, labels: list[str] | None = None) -> dict[str, PoRecord]:
        """Every PO the journal knows (or those of ``labels``) with its files and attachments."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(pos)")}
        # A journal of schema 1 or 2, read without upgrading it, has no conversion errors.
        errors = "conversion_errors" if "conversion_errors" in columns else "''"
        started = "started_at" if "started_at" in columns else "''"
        rows = self._db.execute(
            "SELECT label, state, supplier, folder, message, po_url, pr_url, found, attempts,"
            f" finished_at, {errors}, {started} FROM pos"
        ).fetchall()
        files: dict[str, list[SavedFile]] = {}
        for label, name, path, size, sha256, source, url in self._db.execute(
            "SELECT label, name, path, size, sha256, source, url FROM files ORDER BY rowid"
        ):
            origin: Source = "PR" if source == "PR" else "PO"
            files.setdefault(label, []).append(
                SavedFile(name, self.out_dir / path, size, sha256, origin, url)
            )
        attachments = self._attachments()
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
                conversion_errors=tuple(row[10].splitlines()),
                attachments=tuple(attachments.get(row[0], ())),
                started_at=row[11] or "",
            )
            for row in rows
            if wanted is None or row[0] in wanted
        }

    def _attachments(self) -> dict[str, list[FoundAttachment]]:
        """Each PO's attachments in page order (none before schema 4)."""
        found: dict[str, list[FoundAttachment]] = {}
        if not self._has_table("attachments"):
            return found
        for label, source, place, kind, name, value, saved_name, size, sha256 in self._db.execute(
            "SELECT label, source, place, kind, name, value, saved_name, size, sha256"
            " FROM attachments ORDER BY label, position"
        ):
            origin: Source = "PR" if source == "PR" else "PO"
            what: AttachmentKind = "url" if kind == "url" else "text" if kind == "text" else "file"
            found.setdefault(label, []).append(
                FoundAttachment(origin, place, what, name, value, saved_name, size, sha256)
            )
        return found

    @_guarded
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

    # ----- metrics of the runs -----------------------------------------------------------------

    @_guarded
    def begin_run(self) -> int:
        """Note the start of a run; returns its id. Drops the metrics of all but the last runs."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (started_at, state) VALUES (?, 'running')", (time.time(),)
            )
            run_id = int(cursor.lastrowid or 0)
            oldest_kept = run_id - MAX_RUNS_KEPT + 1
            for table in ("samples", "events"):
                self._db.execute(f"DELETE FROM {table} WHERE run < ?", (oldest_kept,))
            self._db.execute("DELETE FROM runs WHERE id < ?", (oldest_kept,))
        return run_id

    @_guarded
    def end_run(self, run_id: int, state: str) -> None:
        """Note how a run ended (``finished`` or ``interrupted``)."""
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET ended_at = ?, state = ? WHERE id = ?", (time.time(), state, run_id)
            )

    @_guarded
    def add_metrics(
        self: Journal, run_id: int, samples: list[MetricSample], events: list[RunEvent]
    ) -> None:
        """Append a run's samples and events; thin the run's older samples past the bound."""
        if not samples and not events:
            return
        with self._transaction():
            self._db.executemany(
                f"INSERT INTO samples (run, {_SAMPLE_COLUMNS}) VALUES ({', '.join('?' * 11)})",
                [
                    (
                        run_id,
                        s.at,
                        s.settled,
                        s.bytes,
                        s.workers,
                        s.target_workers,
                        s.pss_mb,
                        s.budget_mb,
                        s.queued,
                        s.waiting_retry,
                        int(s.paused),
                    )
                    for s in samples
                ],
            )
            self._db.executemany(
                "INSERT INTO events (run, at, kind, detail) VALUES (?, ?, ?, ?)",
                [(run_id, e.at, e.kind, e.detail) for e in events],
            )
            _thin_samples(self._db, run_id)
            self._db.execute(
                "DELETE FROM events WHERE run = ? AND rowid NOT IN"
                " (SELECT rowid FROM events WHERE run = ? ORDER BY at DESC LIMIT ?)",
                (run_id, run_id, MAX_EVENTS_PER_RUN),
            )

    @_guarded
    def latest_run(self) -> RunRecord | None:
        """The latest run into the folder (None for a journal from before metrics)."""
        if not self._has_table("runs"):
            return None
        row = self._db.execute(
            "SELECT id, started_at, ended_at, state FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return RunRecord(*row) if row else None

    @_guarded
    def metrics(self, run_id: int) -> tuple[list[MetricSample], list[RunEvent]]:
        """A run's samples and events, oldest first."""
        if not self._has_table("samples"):
            return [], []
        rows = self._db.execute(
            f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE run = ? ORDER BY at", (run_id,)
        )
        samples = [
            MetricSample(
                at, settled, size, workers, target, pss, budget, queued, waiting, bool(paused)
            )
            for at, settled, size, workers, target, pss, budget, queued, waiting, paused in rows
        ]
        events = [
            RunEvent(at, kind, detail)
            for at, kind, detail in self._db.execute(
                "SELECT at, kind, detail FROM events WHERE run = ? ORDER BY at", (run_id,)
            )
        ]
        return samples, events

    def _has_table(self, name: str) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
            is not None
        )


def _thin_samples(db: sqlite3.Connection, run_id: int) -> None:
    """Past the bound, samples older than the last ``RECENT_FULL_SAMPLES`` keep one per step
    of S seconds, S the smallest power of two that brings the run to three quarters of the
    bound: the recent minutes keep one sample a second, the rest of a long run an even,
    coarser picture."""
    count = db.execute("SELECT count(*) FROM samples WHERE run = ?", (run_id,)).fetchone()[0]
    if count <= MAX_SAMPLES_PER_RUN:
        return
    cutoff = db.execute(
        "SELECT at FROM samples WHERE run = ? ORDER BY at DESC LIMIT 1 OFFSET ?",
        (run_id, RECENT_FULL_SAMPLES - 1),
    ).fetchone()[0]
    wanted = MAX_SAMPLES_PER_RUN * 3 // 4 - RECENT_FULL_SAMPLES
    step = 2
    while (
        db.execute(
            "SELECT count(DISTINCT CAST(at / ? AS INTEGER)) FROM samples WHERE run = ? AND at < ?",
            (step, run_id, cutoff),
        ).fetchone()[0]
        > wanted
    ):
        step *= 2
    db.execute(
        "DELETE FROM samples WHERE run = ? AND at < ? AND rowid NOT IN (SELECT min(rowid)"
        " FROM samples WHERE run = ? AND at < ? GROUP BY CAST(at / ? AS INTEGER))",
        (run_id, cutoff, run_id, cutoff, step),
    )


def _ready_path(out_dir: Path, fresh: bool) -> Path:
    """The journal's path in ``out_dir``, its folder made, no link at any of its names, the old
    journal moved aside when ``fresh``, and the file itself created (never through a link)."""
    folder = out_dir / JOURNAL_DIR
    path = folder / JOURNAL_NAME
    _refuse_links(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(
            f"Cannot create {folder}: {exc.strerror}. Choose an output folder you can write."
        ) from None
    _refuse_links(path)
    if fresh and path.exists():
        aside = path.with_name(f"{JOURNAL_NAME}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
        for suffix in ("", *SIDE_FILES):
            source = Path(f"{path}{suffix}")
            if source.exists():
                os.replace(source, Path(f"{aside}{suffix}"))
    try:
        os.close(open_fd(path, os.O_RDWR | os.O_CREAT, 0o644))  # so SQLite creates nothing
    except LinkRefusedError:
        raise JournalError(link_sentence(path)) from None
    except OSError as exc:
        raise JournalError(f"Cannot open the journal {path}: {exc.strerror or exc}.") from None
    return path


def _refuse_links(path: Path) -> None:
    """JournalError if the journal's folder, the journal or a file SQLite keeps beside it is a
    link (``out`` itself may be one: that is the user's choice)."""
    for name in (path.parent, path, *(Path(f"{path}{suffix}") for suffix in SIDE_FILES)):
        if is_link(name):
            raise JournalError(link_sentence(name))


def _read_only_uri(path: Path) -> str:
    # A closed journal holds everything in its main file: "immutable" reads it without creating
    # the -wal and -shm files SQLite otherwise leaves beside a WAL database. A -wal left by a
    # killed (or still running) run holds committed POs that only SQLite can read back; reading
    # it updates SQLite's -shm index, never the data.
    wal = Path(f"{path}-wal")
    has_wal = wal.is_file() and wal.stat().st_size > 0
    return f"{path.absolute().as_uri()}?mode=ro" + ("" if has_wal else "&immutable=1")


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""
