"""Write a file so that a reader never sees half of it, also when the old one is locked."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

from coupa_async.log import get_logger
from coupa_async.results.layout import hidden_temp_name
from coupa_async.results.no_links import open_new

log = get_logger(__name__)


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` through ``write`` into a new hidden file beside it, then rename it over.

    Returns the path written: if ``path`` is locked by another program (open in Excel on
    Windows), the new file gets a time-stamped name beside it instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(hidden_temp_name(path.name))
    try:
        with open_new(temp) as handle:  # created here, never through a link
            write(handle)
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
