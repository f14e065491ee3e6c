"""The self-contained HTML run report: ``<out>/report.html``, built from plain data."""

from coupa_async.htmlreport.build import report_data
from coupa_async.htmlreport.model import (
    ReportAttachment,
    ReportData,
    ReportFile,
    ReportPo,
    ReportRun,
)
from coupa_async.htmlreport.render import render_report
from coupa_async.htmlreport.write import REPORT_HTML_NAME, write_html_report

__all__ = [
    "REPORT_HTML_NAME",
    "ReportAttachment",
    "ReportData",
    "ReportFile",
    "ReportPo",
    "ReportRun",
    "render_report",
    "report_data",
    "write_html_report",
]
