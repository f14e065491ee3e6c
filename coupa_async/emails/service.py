"""Converting saved e-mails in worker processes: off the event loop, and off the workers.

A conversion parses and renders in pure Python, which would hold the event loop (and, in a
thread, the interpreter lock the browser's traffic needs). It runs in converting processes
(``coupa_async.emails.worker``), started on the first e-mail and spoken to over pipes: not
``multiprocessing``, whose spawned children import the caller's main script again (a library
must not ask its callers for an ``if __name__ == "__main__"`` guard).

A conversion past its deadline is stopped in its process by a timer; should that not end it,
the process is killed and a new one serves the next e-mail. A process that dies under a
conversion (killed from outside, out of memory) gets one more try in a fresh process before
the e-mail is blamed.

Every converting process starts with ``child_environ()``: it parses files from outside, so
it sees none of our secrets (no ``COUPA_*`` variable, no proxy variable: it has no network).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio

from coupa_async.emails.fonts import FontSet, find_fonts
from coupa_async.emails.options import ConversionLimits, EmailMode
from coupa_async.emails.outcome import ConversionOutcome
from coupa_async.emails.worker import fonts_data, not_converted_in_time
from coupa_async.errors import storage_error
from coupa_async.log import error_summary, get_logger
from coupa_async.session.child_env import child_environ

log = get_logger(__name__)

# Past the deadline, the process's own timer has this long to end the conversion before the
# process is killed.
KILL_MARGIN_S = 5.0
# A process converts this many e-mails, then a fresh one takes over (bounds any leak).
TASKS_PER_PROCESS = 200
# Errors of the disk itself stop the run (the run's sentence for a full disk); other errors
# writing a conversion are the conversion's.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Tries of one e-mail when its process dies under it.
TRIES_ON_CRASH = 2
# An idle converting process ends after this long (it holds ~130 MB of parsed fonts and
# libraries); the next e-mail starts a new one (~0.5 s).
IDLE_END_S = 30.0


def _failed(path: Path, sentence: str) -> ConversionOutcome:
    return ConversionOutcome(source=path.name, error=sentence)


class ProcessGone(Exception):
    """The converting process ended (or stopped answering) under a conversion."""


class ConverterProcess:
    """One converting process and its pipes; one request at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.served = 0

    @classmethod
    async def start(cls) -> ConverterProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coupa_async.emails.worker",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_environ(proxy="drop"),
        )
        return cls(process)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def ask(self, request: dict[str, Any], deadline_s: float) -> dict[str, Any]:
        """The answer to ``request``; ProcessGone when the process ends first, TimeoutError
        past ``deadline_s`` (the process is killed then)."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        self.served += 1
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            await stdin.drain()
            with anyio.fail_after(deadline_s):
                line = await stdout.readline()
        except TimeoutError:
            self.kill()
            raise
        except (ConnectionError, OSError) as exc:
            raise ProcessGone(str(exc)) from None
        if not line:
            raise ProcessGone("no answer")
        return json.loads(line)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def close(self, wait_s: float) -> None:
        """Close its stdin (it ends after the conversion in hand); killed after ``wait_s``."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            with anyio.fail_after(wait_s):
                await self.process.wait()
        except TimeoutError:
            self.kill()
            await self.process.wait()


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
        self._idle: list[ConverterProcess] = []
        self._all: set[ConverterProcess] = set()
        self._slots = asyncio.Semaphore(processes)
        self._warned_fonts = False
        self._closed = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._ending: set[asyncio.Task[Any]] = set()

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    async def convert(self, path: Path, reserved: Sequence[str] = ()) -> ConversionOutcome:
        """Convert one saved e-mail; a problem of the e-mail is the outcome's ``error``.

        ``reserved``: the names of the server's files beside it, never taken by our outputs.
        Raises StorageError when the disk is full.
        """
        request = {
            "path": str(path),
            "reserved": list(reserved),
            "mode": self.mode,
            "fonts": fonts_data(await self._fonts_found()),
            "limits": asdict(self.limits),
            "timeout_s": self.timeout_s,
        }
        for _ in range(TRIES_ON_CRASH):
            try:
                answer = await self._ask(request)
            except ProcessGone as exc:
                log.debug("email_converter_gone", file=path.name, detail=str(exc))
                continue
            except TimeoutError:
                outcome = _failed(path, not_converted_in_time(path.name, self.timeout_s))
            except OSError as exc:  # the converting process could not be started
                outcome = _failed(
                    path,
                    f"{path.name} was not converted: the converting process could not start "
                    f"({error_summary(exc)})",
                )
            else:
                outcome = self._outcome(path, answer)
            break
        else:
            outcome = _failed(
                path,
                f"The converting process ended twice while converting {path.name} (out of memory?)",
            )
        self._count(outcome)
        return outcome

    def _outcome(self, path: Path, answer: dict[str, Any]) -> ConversionOutcome:
        """The worker's answer as an outcome; a full disk raises StorageError."""
        if "os_error" in answer:
            code, reason = answer["os_error"], answer["strerror"]
            if code in DISK_FULL:
                raise storage_error(f"the conversion of {path.name}", OSError(code, reason))
            return _failed(path, f"The conversion of {path.name} could not be written: {reason}")
        return ConversionOutcome(**answer["outcome"])

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._slots:
            process = await self._take()
            try:
                answer = await process.ask(request, self.timeout_s + KILL_MARGIN_S)
            except BaseException:
                process.kill()  # a cancelled or failed request leaves the process unusable
                self._all.discard(process)
                raise
            self._give_back(process)
            return answer

    async def _take(self) -> ConverterProcess:
        while self._idle:
            process = self._idle.pop()
            if process.alive:
                return process
            self._all.discard(process)
        if self._closed:  # the run's follow-ups all end before it closes
            raise RuntimeError("the e-mail converter is closed")
        process = await ConverterProcess.start()
        self._all.add(process)
        return process

    def _give_back(self, process: ConverterProcess) -> None:
        if process.alive and process.served < TASKS_PER_PROCESS and not self._closed:
            self._idle.append(process)
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_timer = asyncio.get_running_loop().call_later(IDLE_END_S, self._end_idle)
        else:
            self._end(process)

    def _end_idle(self) -> None:
        self._idle_timer = None
        idle, self._idle = self._idle, []
        for process in idle:
            self._end(process)

    def _end(self, process: ConverterProcess) -> None:
        """Let ``process`` end on its own (stdin closed), reaped in the background."""
        self._all.discard(process)
        task = asyncio.get_running_loop().create_task(process.close(KILL_MARGIN_S))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

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
            self._fonts = await anyio.to_thread.run_sync(find_fonts, self.font_files)
            log.debug(
                "email_fonts",
                regular=str(self._fonts.regular),
                fallbacks=[str(p) for p in self._fonts.fallbacks],
            )
        return self._fonts

    async def aclose(self, wait_s: float = 3.0) -> None:
        """End the processes: one still converting gets ``wait_s``, then is killed (its PO
        was not recorded, so the rerun converts it)."""
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        processes, self._idle = list(self._all), []
        self._all.clear()
        async with anyio.create_task_group() as group:
            for process in processes:
                group.start_soon(process.close, wait_s)
            for task in list(self._ending):  # those idle ones already ending
                group.start_soon(_reaped, task)


async def _reaped(task: asyncio.Task[Any]) -> None:
    await task
