"""Input files in (CSV or a spreadsheet), reports out (CSV and XLSX).

``read_input`` (reader) turns a CSV file or an .xlsx, .xlsm, .xlsb, .xls or .ods workbook
(workbook) into an ``InputTable`` of ``InputRow`` (rows); ``write_reports`` (report) writes
``report.csv`` and ``report.xlsx`` (report_xlsx) from those rows and the results of the run;
``LiveCsvReport`` (live_report) keeps ``report.csv`` growing while the run goes on;
``LiveManifest`` and ``write_manifest`` (manifest) do the same for ``manifest.csv``, a row per
attachment found.
"""

from coupa_async.tabular.live_report import LiveCsvReport
from coupa_async.tabular.manifest import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    LiveManifest,
    write_manifest,
)
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
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "REPORT_COLUMNS",
    "InputRow",
    "InputTable",
    "LiveCsvReport",
    "LiveManifest",
    "read_input",
    "report_header",
    "report_row",
    "write_manifest",
    "write_report_csv",
    "write_report_xlsx",
    "write_reports",
]
