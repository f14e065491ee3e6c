"""Converting saved e-mails in worker processes: off the event loop, and off the workers.

A conversion parses and renders in pure Python, which would hold the event loop (and, in a
thread, the interpreter lock the browser's traffic needs). It runs in a small process pool
started on the first e-mail. A conversion past its deadline is stopped in its process by a
timer; should that not end it, the process is killed and a new pool serves the next e-mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import FrameType

from coupa_async.emails import (
    ConversionLimits,
    ConversionOutcome,
    EmailMode,
    FontSet,
    convert_email,
    find_fonts,
)
from coupa_async.errors import storage_error
from coupa_async.log import get_logger

log = get_logger("emails")

# Past the deadline, the process's own timer has this long to end the conversion before the
# process is killed.
KILL_MARGIN_S = 5.0
# A process converts this many e-mails, then a fresh one takes over (bounds any leak).
TASKS_PER_PROCESS = 200
CLOSE_WAIT_S = 3.0
# Errors of the disk itself stop the run (the run's sentence for a full disk); other errors
# writing a conversion are the conversion's.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class ConversionTimeout(Exception):
    """Raised in the converting process when its deadline passes."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise ConversionTimeout


def convert_with_deadline(
    path: Path, mode: EmailMode, fonts: FontSet, limits: ConversionLimits, timeout_s: float
) -> ConversionOutcome:
    """``convert_email`` stopped after ``timeout_s`` (run in the converting process)."""
    timer = getattr(signal, "setitimer", None)
    if timer is None:  # Windows: the parent's deadline kills the process instead
        return convert_email(path, mode, fonts, limits)
    signal.signal(signal.SIGALRM, _on_alarm)
    timer(signal.ITIMER_REAL, timeout_s)
    try:
        return convert_email(path, mode, fonts, limits)
    except ConversionTimeout:
        return _failed(path, f"{path.name} was not converted within {timeout_s:g} s")
    finally:
        timer(signal.ITIMER_REAL, 0)


def _failed(path: Path, sentence: str) -> ConversionOutcome:
    return ConversionOutcome(
        source=path.name, pdf=None, extracted=[], skipped=False, error=sentence
    )


class EmailConverter:
    """Converts saved ``.msg``/``.eml`` files per ``convert.emails``; one call per e-mail."""

    def __init__(
        self,
        mode: EmailMode,
        *,
        font_files: Sequence[Path] = (),
        processes: int = 1,
        timeout_s: float = 120.0,
        limits: ConversionLimits | None = None,
    ) -> None:
        self.mode = mode
        self.font_files = tuple(font_files)
        self.processes = processes
        self.timeout_s = timeout_s
        self.limits = limits or ConversionLimits()
        self.converted = 0
        self.failed = 0
        self._fonts: FontSet | None = None
        self._pool: ProcessPoolExecutor | None = None
        # As many conversions in flight as processes: a deadline concerns one known e-mail.
        self._slots = asyncio.Semaphore(processes)
        self._warned_fonts = False

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    async def convert(self, path: Path) -> ConversionOutcome:
        """Convert one saved e-mail; a problem of the e-mail is the outcome's ``error``.

        Raises StorageError when the disk is full.
        """
        async with self._slots:
            fonts = await self._fonts_found()
            pool = self._ensure_pool()
            future = asyncio.get_running_loop().run_in_executor(
                pool, convert_with_deadline, path, self.mode, fonts, self.limits, self.timeout_s
            )
            try:
                outcome = await asyncio.wait_for(future, self.timeout_s + KILL_MARGIN_S)
            except TimeoutError:
                self._kill_pool()
                outcome = _failed(
                    path, f"{path.name} was not converted within {self.timeout_s:g} s"
                )
            except BrokenProcessPool:
                self._pool = None
                outcome = _failed(
                    path,
                    f"The converting process ended while converting {path.name} (out of memory?)",
                )
            except OSError as exc:
                if exc.errno in DISK_FULL:
                    raise storage_error(f"the conversion of {path.name}", exc) from exc
                outcome = _failed(
                    path, f"The conversion of {path.name} could not be written: {exc.strerror}"
                )
        self._count(outcome)
        return outcome

    def _count(self, outcome: ConversionOutcome) -> None:
        if outcome.error is not None:
            self.failed += 1
        elif not outcome.skipped:
            self.converted += 1
        if outcome.missing_font and not self._warned_fonts:
            self._warned_fonts = True
            log.warning(
                "email_font_missing",
                detail="No font covering the e-mails' text was found: PDFs show '?' for "
                "characters it lacks. Install fonts-dejavu-core (and fonts-noto-cjk for "
                "Chinese, Japanese, Korean), or set convert.font_files.",
            )

    async def _fonts_found(self) -> FontSet:
        if self._fonts is None:
            self._fonts = await asyncio.to_thread(find_fonts, self.font_files)
            log.debug(
                "email_fonts",
                regular=str(self._fonts.regular),
                fallbacks=[str(p) for p in self._fonts.fallbacks],
            )
        return self._fonts

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Spawned, not forked: a fork of a process with the event loop's threads and the
            # browser's pipes would inherit them.
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=TASKS_PER_PROCESS,
            )
        return self._pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor has no public way to stop a busy process before Python 3.14.
        for process in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the processes: one still converting gets ``CLOSE_WAIT_S``, then is killed (the
        e-mail's PO was not recorded, so the rerun converts it)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)

        def wait_or_kill() -> None:
            for process in processes:
                process.join(CLOSE_WAIT_S)
                if process.is_alive():
                    process.kill()
                    process.join(CLOSE_WAIT_S)

        await asyncio.to_thread(wait_or_kill)
