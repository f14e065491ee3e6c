"""From a failed task's exception to what the engine does about it: one pure function."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from playwright.async_api import Error as PlaywrightError

from coupa_async.errors import (
    BrowserFaultError,
    HostUnreachableError,
    RateLimitedError,
    SessionExpiredError,
    StorageError,
    TransientError,
)
from coupa_async.log import error_summary

# What Playwright says when the page, its context or the browser is gone.
BROWSER_GONE = ("Target closed", "has been closed", "crashed", "Browser closed", "disconnected")


class Action(StrEnum):
    """What to do with a task that raised. Only the last three charge the item an attempt."""

    RENEW_SESSION = "renew_session"  # put back; sign in again
    PAUSE_HOST = "pause_host"  # put back; no request to the host until the pause ends
    DROP_PAGE = "drop_page"  # put back; replace the page (and the browser if it died)
    CHECK_OUTAGE = "check_outage"  # put back if the host is down, else retry
    RETRY = "retry"  # charge an attempt; retry after a backoff, or give up
    RETRY_NEW_PAGE = "retry_new_page"  # as RETRY, and the page (stuck) is not reused
    DEFECT = "defect"  # as RETRY, logged with its traceback: a bug, not the host
    STOP_RUN = "stop_run"  # put back; the run stops (a full disk: nothing more can be saved)


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    retry_after_s: float = 0.0  # PAUSE_HOST: the pause; RETRY: the least wait before the retry

    @property
    def charges(self) -> bool:
        return self.action in (Action.RETRY, Action.RETRY_NEW_PAGE, Action.DEFECT)


def is_browser_fault(exc: BaseException) -> bool:
    """Whether a Playwright error means the page, context or browser is gone."""
    return any(sign in str(exc) for sign in BROWSER_GONE)


def action_for(exc: BaseException, task_timeout_s: float) -> Verdict:
    """The action for ``exc``, raised by a task that ran up to ``task_timeout_s``."""
    reason = error_summary(exc)
    if isinstance(exc, SessionExpiredError):
        return Verdict(Action.RENEW_SESSION, reason)
    if isinstance(exc, StorageError):
        return Verdict(Action.STOP_RUN, reason)
    if isinstance(exc, RateLimitedError):
        if exc.other_host:  # not the host the run works with: charged, retried after its pause
            return Verdict(Action.RETRY, reason, exc.retry_after_s)
        return Verdict(Action.PAUSE_HOST, reason, exc.retry_after_s)
    if isinstance(exc, BrowserFaultError):
        return Verdict(Action.DROP_PAGE, reason)
    if isinstance(exc, PlaywrightError):
        return Verdict(Action.DROP_PAGE if is_browser_fault(exc) else Action.RETRY, reason)
    if isinstance(exc, HostUnreachableError):
        return Verdict(Action.CHECK_OUTAGE, reason)
    if isinstance(exc, TimeoutError):
        return Verdict(
            Action.RETRY_NEW_PAGE, str(exc) or f"no result within {task_timeout_s:.0f} s"
        )
    if isinstance(exc, TransientError):
        return Verdict(Action.RETRY, str(exc) or type(exc).__name__)
    return Verdict(Action.DEFECT, f"unexpected error: {type(exc).__name__}: {exc}")
