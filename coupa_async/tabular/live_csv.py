"""A CSV file that grows while the run goes on: rows appended and flushed, never a stop.

The shared part of the live ``report.csv`` and the live ``manifest.csv``: the report's encoding
and line ends; a file that cannot be written (locked, disk full) is a warning, after which
nothing more is written. The file is always a new one of our own: whatever held its name (a
link to a file elsewhere, say) is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from coupa_async.log import get_logger
from coupa_async.results.no_links import open_fresh
from coupa_async.results.result import PoResult
from coupa_async.tabular.report import CSV_ENCODING, CSV_LINE_END

log = get_logger(__name__)


class LiveCsv:
    """``path`` opened for writing, its ``header`` written at once; ``event`` is logged when it
    cannot be written."""

    def __init__(self, path: Path, header: Sequence[str], event: str) -> None:
        self.path = path
        self._event = event
        self._file: IO[str] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = io.TextIOWrapper(
                open_fresh(path), encoding=CSV_ENCODING, errors="replace", newline=""
            )
            self._writer = csv.writer(self._file, lineterminator=CSV_LINE_END)
            self._writer.writerow(header)
            self._file.flush()
        except OSError as exc:
            self._give_up(exc)

    @property
    def writing(self) -> bool:
        """Whether rows are still written (not closed, not given up)."""
        return self._file is not None

    def write(self, rows: Iterable[Sequence[str]]) -> None:
        """Append ``rows`` (as CSV text already) and flush them."""
        if self._file is None:
            return
        try:
            self._writer.writerows(rows)
            self._file.flush()
        except OSError as exc:
            self._give_up(exc)

    def close(self) -> None:
        """Close the file; later writes do nothing."""
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:
                log.warning(self._event, path=str(self.path), reason=str(exc))

    def _give_up(self, exc: OSError) -> None:
        log.warning(self._event, path=str(self.path), reason=str(exc))
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # already reported
                file.close()


class LiveResultRows:
    """A ``LiveCsv`` fed with settled POs: the rows of each result, appended and flushed.

    Subclasses say which rows a result gives (``rows_of``); closing, and the ``with`` form, are
    shared.
    """

    _csv: LiveCsv

    def rows_of(self, result: PoResult) -> Iterable[Sequence[str]]:
        """The CSV rows (texts) of one settled PO."""
        raise NotImplementedError

    def append(self, result: PoResult) -> None:
        """Add the rows of ``result`` and flush them."""
        self.extend((result,))

    def extend(self, results: Iterable[PoResult]) -> None:
        """Add the rows of each of ``results`` (POs settled earlier, say), then flush."""
        if self._csv.writing:
            self._csv.write(row for result in results for row in self.rows_of(result))

    def close(self) -> None:
        """Close the file; later ``append`` calls do nothing."""
        self._csv.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
