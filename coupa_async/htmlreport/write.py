"""Write ``<out>/report.html`` whole: to a hidden file beside it, then renamed over it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from coupa_async.htmlreport.model import ReportData
from coupa_async.htmlreport.render import render_report
from coupa_async.layout import hidden_temp_name
from coupa_async.log import get_logger

log = get_logger("report")

REPORT_HTML_NAME = "report.html"


def write_html_report(out_dir: Path, data: ReportData) -> Path:
    """Write ``<out_dir>/report.html`` atomically; return the path written.

    As for report.csv: if report.html is locked by another program (open on Windows), the report
    goes to a time-stamped name beside it instead, and that path is returned.
    """
    path = Path(out_dir) / REPORT_HTML_NAME
    content = render_report(data).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(hidden_temp_name(path.name))
    try:
        with temp.open("xb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(temp, path)
        except PermissionError:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            other = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
            os.replace(temp, other)
            log.warning("report_locked", path=str(path), written=str(other))
            return other
        return path
    finally:
        temp.unlink(missing_ok=True)
