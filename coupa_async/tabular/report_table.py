"""What the report holds: its columns, one row of values per input row, and values as CSV text.

Columns are the reference's, then CONVERSION_ERRORS and LINKS_AND_TEXTS (REPORT_COLUMNS), then
the input's other columns; an input column named like one of ours gets the suffix ``_INPUT``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from coupa_async.results.result import PoResult
from coupa_async.tabular.rows import InputRow

REPORT_COLUMNS = (
    "PO_NUMBER",
    "STATUS",
    "SUPPLIER",
    "ATTACHMENTS_FOUND",
    "ATTACHMENTS_DOWNLOADED",
    "AttachmentName",
    "LAST_PROCESSED",
    "ERROR_MESSAGE",
    "DOWNLOAD_FOLDER",
    "COUPA_URL",
    "CONVERSION_ERRORS",
    # URL and text attachments (ATTACHMENTS_FOUND counts files only); last of ours, so that the
    # columns users already know keep their places.
    "LINKS_AND_TEXTS",
)
CLASH_SUFFIX = "_INPUT"
PENDING = "PENDING"
INVALID = "INVALID"
NOT_PROCESSED = "not processed yet"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

GOOD_STATUSES = frozenset({"COMPLETED", "NO_ATTACHMENTS"})
ATTENTION_STATUSES = frozenset({"PARTIAL", "PR_NOT_ACCESSIBLE", PENDING})
BAD_STATUSES = frozenset({"FAILED", "PO_NOT_FOUND", INVALID})

STATUS = REPORT_COLUMNS.index("STATUS")
FOLDER = REPORT_COLUMNS.index("DOWNLOAD_FOLDER")
PROCESSED = REPORT_COLUMNS.index("LAST_PROCESSED")

# What a spreadsheet takes for the start of a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")

Value = str | int | datetime | None


def report_header(columns: Iterable[str]) -> list[str]:
    """The report's column names: REPORT_COLUMNS, then ``columns`` renamed where they clash."""
    header = list(REPORT_COLUMNS)
    taken = {name.casefold() for name in header}
    for column in columns:
        name = column
        if name.casefold() in taken:
            name = f"{column}{CLASH_SUFFIX}"
        n = 2
        while name.casefold() in taken:
            name, n = f"{column}{CLASH_SUFFIX}_{n}", n + 1
        taken.add(name.casefold())
        header.append(name)
    return header


def report_row(row: InputRow, result: PoResult | None, columns: Sequence[str]) -> list[Value]:
    """The values of one report row, in the order of ``report_header(columns)``."""
    if result is None:
        status = INVALID if row.po is None else PENDING
        message = row.error if row.po is None else NOT_PROCESSED
        values: list[Value] = [row.raw_po, status, row.supplier or "", None, None, "", None]
        values += [message, "", "", "", None]
    else:
        values = [
            row.raw_po,
            result.outcome.value,
            result.supplier or row.supplier or "",
            result.found,
            result.downloaded,
            "; ".join([saved.name for saved in result.files]),
            _local(result.finished_at or result.started_at),
            result.message,
            str(result.folder) if result.folder else "",
            result.po_url,
            "; ".join(result.conversion_errors),
            result.links_and_texts,
        ]
    values += [row.extra.get(column, "") for column in columns]
    return values


def result_of(row: InputRow, results: Mapping[str, PoResult]) -> PoResult | None:
    """The result of ``row``'s PO, if it has one (invalid rows never do)."""
    return results.get(row.po.label) if row.po is not None else None


def neutralise(text: str) -> str:
    """``text`` prefixed with ``'`` if a spreadsheet would take it for a formula.

    Plain numbers such as ``-12.5`` are left alone: they cannot be formulas.
    """
    if text.startswith(FORMULA_START) and _NUMBER.fullmatch(text) is None:
        return f"'{text}"
    return text


def csv_text(value: Value) -> str:
    """A report value as the CSV report writes it."""
    if isinstance(value, str):
        return neutralise(value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    return str(value)


def csv_values(values: Iterable[Value]) -> list[str]:
    """A report row as the CSV report writes it (see ``csv_text``)."""
    return [
        value if value.__class__ is str and not value.startswith(FORMULA_START) else csv_text(value)
        for value in values
    ]


def _local(moment: datetime | None) -> datetime | None:
    """``moment`` as naive local time to the second; naive times are taken as local already."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.replace(microsecond=0)
