"""Input files in (CSV or a spreadsheet), reports out (CSV and XLSX).

``read_input`` (reader) turns a CSV file or an .xlsx, .xlsm, .xlsb, .xls or .ods workbook
(workbook) into an ``InputTable`` of ``InputRow`` (rows); ``write_reports`` (report) writes
``report.csv`` and ``report.xlsx`` (report_xlsx) from those rows and the results of the run;
``LiveCsvReport`` (live_report) keeps ``report.csv`` growing while the run goes on.
"""

from coupa_async.tabular.live_report import LiveCsvReport
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
    "LiveCsvReport",
    "read_input",
    "report_header",
    "report_row",
    "write_report_csv",
    "write_report_xlsx",
    "write_reports",
]
