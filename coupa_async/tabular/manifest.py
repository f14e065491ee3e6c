"""``manifest.csv``: one row per attachment a PO's pages showed, file, URL or text.

Rows go in input order (each PO once), then page order. Like ``report.csv`` it grows while the
run goes on (``LiveManifest``) and is written again whole at the end (``write_manifest``), with
the report's encoding, line ends and neutralised formulas. SAVED_PATH is the saved file's path
relative to the output folder, in the PO's final folder; nothing is written inside PO folders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from coupa_async.results.result import PoResult
from coupa_async.tabular.live_csv import LiveCsv, LiveResultRows
from coupa_async.tabular.report import write_csv
from coupa_async.tabular.report_table import Value, csv_values
from coupa_async.tabular.rows import InputRow

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "PO_NUMBER",
    "SOURCE",
    "LOCATION",
    "KIND",
    "NAME",
    "SAVED_PATH",
    "SIZE",
    "SHA256",
    "VALUE",
)


def manifest_rows(result: PoResult, out_dir: Path) -> list[list[Value]]:
    """The manifest rows of one PO, in page order."""
    return [
        [
            result.po_number,
            found.source,
            found.place,
            found.kind,
            found.name,
            saved_path(result.folder, found.saved_name, Path(out_dir)),
            found.size,
            found.sha256,
            found.value,
        ]
        for found in result.attachments
    ]


def saved_path(folder: Path | None, saved_name: str, out_dir: Path) -> str:
    """``folder/saved_name`` relative to ``out_dir``; empty when nothing was saved."""
    if not saved_name or folder is None:
        return ""
    path = folder / saved_name
    for base, target in ((out_dir, path), (out_dir.absolute(), path.absolute())):
        try:
            return str(target.relative_to(base))
        except ValueError:
            continue
    return str(path)  # not under the output folder: where it is


def write_manifest(
    out_dir: Path, rows: Sequence[InputRow], results: Mapping[str, PoResult]
) -> Path:
    """Write ``<out>/manifest.csv`` atomically from the POs of ``rows`` that have a result, in
    input order; return the path written (beside it, time-stamped, when it is locked)."""
    out_dir = Path(out_dir)
    table: list[list[Value]] = []
    seen: set[str] = set()
    for row in rows:
        if row.po is None or row.po.label in seen:
            continue
        seen.add(row.po.label)
        result = results.get(row.po.label)
        if result is not None:
            table += manifest_rows(result, out_dir)
    return write_csv(out_dir / MANIFEST_NAME, MANIFEST_COLUMNS, table)


class LiveManifest(LiveResultRows):
    """Appends the manifest rows of each settled PO to ``<out>/manifest.csv``, flushing each.

    As ``LiveCsvReport``: it never stops a run, and is closed before ``write_manifest`` replaces
    the file.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_NAME
        self._csv = LiveCsv(self.path, MANIFEST_COLUMNS, "manifest_live_not_written")

    def rows_of(self, result: PoResult) -> Iterable[Sequence[str]]:
        """One row per attachment ``result`` recorded."""
        return (csv_values(values) for values in manifest_rows(result, self.out_dir))
