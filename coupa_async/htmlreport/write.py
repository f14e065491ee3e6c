"""Write ``<out>/report.html`` whole: to a hidden file beside it, then renamed over it."""

from __future__ import annotations

from pathlib import Path

from coupa_async.htmlreport.model import ReportData
from coupa_async.htmlreport.render import render_report
from coupa_async.tabular.atomic import write_atomically

REPORT_HTML_NAME = "report.html"


def write_html_report(out_dir: Path, data: ReportData) -> Path:
    """Write ``<out_dir>/report.html`` atomically; return the path written.

    As for report.csv: if report.html is locked by another program (open on Windows), the report
    goes to a time-stamped name beside it instead, and that path is returned.
    """
    content = render_report(data).encode("utf-8")
    return write_atomically(Path(out_dir) / REPORT_HTML_NAME, lambda handle: handle.write(content))
