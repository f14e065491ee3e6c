"""``report.csv`` while the run goes on: a row per input row as soon as its PO settles.

Someone watching sees it grow, and a run that crashes still leaves the rows of the POs it
settled. The columns and values are the final report's; the final ``write_reports`` replaces
the file with every input row, in input order. Input rows without a result (invalid, pending)
appear only there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from coupa_async.results.result import PoResult
from coupa_async.tabular.live_csv import LiveCsv, LiveResultRows
from coupa_async.tabular.report import CSV_NAME
from coupa_async.tabular.report_table import csv_values, report_header, report_row
from coupa_async.tabular.rows import InputRow


class LiveCsvReport(LiveResultRows):
    """Appends the report rows of each settled PO to ``<out>/report.csv``, flushing each.

    It never stops a run: when the file cannot be written (locked, disk full) it logs a warning
    and writes no more. Close it before the final report replaces the file (Windows cannot
    replace an open file).
    """

    def __init__(self, out_dir: Path, rows: Iterable[InputRow], columns: Sequence[str]) -> None:
        self.path = Path(out_dir) / CSV_NAME
        self._columns = list(columns)
        self._rows: dict[str, list[InputRow]] = {}
        for row in rows:
            if row.po is not None:
                self._rows.setdefault(row.po.label, []).append(row)
        self._csv = LiveCsv(self.path, report_header(self._columns), "report_live_not_written")

    def rows_of(self, result: PoResult) -> Iterable[Sequence[str]]:
        """One row per input row naming ``result``'s PO."""
        return (
            csv_values(report_row(row, result, self._columns))
            for row in self._rows.get(result.po_number, ())
        )
