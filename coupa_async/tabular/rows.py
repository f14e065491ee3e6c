"""What reading an input file yields: its rows, their PO numbers, priorities and folder levels."""

from __future__ import annotations

from dataclasses import dataclass, field

from coupa_async.coupa.numbers import PoNumber
from coupa_async.running.priority import DEFAULT_PRIORITY


@dataclass(slots=True)
class InputRow:
    """One non-blank row of the input file.

    ``po`` is None when the row is invalid; ``error`` then says why. ``line`` is the line of a
    CSV file or the row number of a sheet, as the user sees them. ``extra`` holds the row's
    other columns (see ``InputTable.columns``), ``levels`` the non-empty values right of a
    ``<|>`` column: folder levels used instead of the supplier. Lower ``priority`` goes first.
    """

    line: int
    raw_po: str
    po: PoNumber | None
    error: str = ""
    supplier: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    priority: int = DEFAULT_PRIORITY
    levels: tuple[str, ...] = ()


@dataclass(slots=True)
class InputTable:
    """The rows of an input file in file order, duplicates included.

    ``columns`` are the input's columns other than the PO column and ``<|>``, in file order: the
    keys of every row's ``extra`` and the columns the report carries. ``warnings`` are for the
    user (e.g. which sheet was read); ``read_as`` says how the file was read.
    """

    rows: list[InputRow]
    columns: list[str]
    warnings: list[str] = field(default_factory=list)
    read_as: str = ""
