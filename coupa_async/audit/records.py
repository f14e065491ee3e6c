"""The journal of an output folder, read without writing a byte beside it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from coupa_async.results.journal import Journal, JournalError, PoRecord


def read_records(out: Path) -> dict[str, PoRecord]:
    """Every PO the journal in ``out`` knows, with its files.

    Raises InputFileError when ``out`` or its journal does not exist, JournalError when the
    journal is from another version or damaged.
    """
    journal = Journal.open_read_only(out)
    try:
        return journal.records()
    except sqlite3.DatabaseError as exc:
        raise JournalError(
            f"The journal {journal.path} is damaged ({exc}). It was left as it is; the audit "
            "needs a readable journal."
        ) from None
    finally:
        journal.close()
