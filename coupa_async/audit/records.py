"""The journal of an output folder, read without writing a byte beside it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from coupa_async.errors import InputFileError
from coupa_async.journal import (
    JOURNAL_DIR,
    JOURNAL_NAME,
    SCHEMA_VERSION,
    Journal,
    JournalError,
    PoRecord,
)


def read_records(out: Path) -> dict[str, PoRecord]:
    """Every PO the journal in ``out`` knows, with its files.

    Raises InputFileError when ``out`` or its journal does not exist, JournalError when the
    journal is from another version or damaged.
    """
    if not out.is_dir():
        raise InputFileError(
            f"The folder {out} does not exist. Pass the --out folder of an earlier run."
        )
    path = out / JOURNAL_DIR / JOURNAL_NAME
    if not path.is_file():
        raise InputFileError(
            f"No run has written to {out} yet (no {JOURNAL_DIR}/{JOURNAL_NAME}). "
            "Pass the --out folder of an earlier run."
        )
    try:
        connection = sqlite3.connect(_read_only_uri(path), uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise JournalError(f"Cannot open the journal {path}: {exc}.") from None
    try:
        _check_version(connection, path)
        return Journal(path, connection).records()
    except sqlite3.DatabaseError as exc:
        raise JournalError(
            f"The journal {path} is damaged ({exc}). It was left as it is; the audit needs "
            "a readable journal."
        ) from None
    finally:
        connection.close()


def _read_only_uri(path: Path) -> str:
    # A closed journal holds everything in its main file: "immutable" reads it without creating
    # the -wal and -shm files SQLite otherwise leaves beside a WAL database. A -wal left by a
    # killed (or still running) run holds committed POs that only SQLite can read back; reading
    # it updates SQLite's -shm index, never the data.
    wal = Path(f"{path}-wal")
    has_wal = wal.is_file() and wal.stat().st_size > 0
    return f"{path.absolute().as_uri()}?mode=ro" + ("" if has_wal else "&immutable=1")


def _check_version(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise JournalError(
            f"The journal {path} is from another version of coupa_async (schema {version}, "
            f"this one reads {SCHEMA_VERSION}). Audit it with the version that wrote it."
        )
