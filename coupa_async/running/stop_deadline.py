"""After a stop, the process ends within a deadline, whatever it was waiting for.

A stop closes contexts, the browser, the driver and the e-mail converter, each within its own
deadline; this is the bound over all of them, for what no deadline covers (a thread stuck in a
system call, a child that ignores its pipe closing, a task that swallows its cancellation).
Past it the process tree is killed and the process exits with the stop's exit code: nothing is
lost, since a result is recorded in the journal before it is announced.

The command line arms it (a library leaves its process alone): on a stop signal, and when the
command's work has returned, for the rest of the shutdown.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

import psutil

# What closing may take besides the grace: contexts, browser, driver, converter, a margin.
CLOSING_STEPS = 4
MARGIN_S = 10.0


def closing_deadline_s(close_s: float) -> float:
    """How long closing everything may take once the work has stopped."""
    return close_s * CLOSING_STEPS + MARGIN_S


class StopDeadline:
    """A timer that, once armed, ends the process at its deadline unless it has exited."""

    def __init__(self, exit_code: int) -> None:
        self.exit_code = exit_code
        self._due: float | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @property
    def armed(self) -> bool:
        return self._due is not None

    def arm(self, seconds: float, exit_code: int | None = None) -> None:
        """End the process ``seconds`` from now at the latest (an earlier deadline stays)."""
        with self._lock:
            if exit_code is not None:
                self.exit_code = exit_code
            due = time.monotonic() + seconds
            if self._due is not None and self._due <= due:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._due = due
            self._timer = threading.Timer(seconds, self._expire)
            self._timer.daemon = True  # it never keeps the process alive itself
            self._timer.start()

    def disarm(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._due = None

    def _expire(self) -> None:
        print(
            "coupa-async: closing took longer than its deadlines; ending the process now "
            "(nothing recorded is lost; run the same command again to resume)",
            file=sys.stderr,
            flush=True,
        )
        kill_children()
        os._exit(self.exit_code)


def kill_children() -> None:
    """Kill every process this one started (browser, driver, converters), deepest first."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in reversed(children):
        with contextlib.suppress(psutil.Error):
            child.kill()
