"""Input files in (CSV or XLSX), reports out (CSV and XLSX).

``read_input`` (reader) turns a file into an ``InputTable`` of ``InputRow`` (rows);
``write_reports`` (report) writes ``report.csv`` and ``report.xlsx`` from those rows and the
results of the run.
"""

from coupa_async.tabular.reader import EMPTY_PO, read_input
from coupa_async.tabular.report import (
    REPORT_COLUMNS,
    report_header,
    report_row,
    write_report_csv,
    write_report_xlsx,
    write_reports,
)
from coupa_async.tabular.rows import InputRow, InputTable

__all__ = [
    "EMPTY_PO",
    "REPORT_COLUMNS",
    "InputRow",
    "InputTable",
    "read_input",
    "report_header",
    "report_row",
    "write_report_csv",
    "write_report_xlsx",
    "write_reports",
]
