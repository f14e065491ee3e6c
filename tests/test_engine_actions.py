"""From a task's exception to the engine's action: every kind of failure, in one table."""

from __future__ import annotations

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from coupa_async.engine.actions import Action, Verdict, action_for, is_browser_fault
from coupa_async.errors import (
    AuthenticationError,
    BrowserFaultError,
    HostUnreachableError,
    PoJobError,
    RateLimitedError,
    SessionExpiredError,
    TransientError,
    storage_error,
)

TASK_TIMEOUT_S = 300.0


@pytest.mark.parametrize(
    ("exc", "action", "reason", "retry_after_s"),
    [
        pytest.param(
            SessionExpiredError("Coupa answered with its sign-in page"),
            Action.RENEW_SESSION,
            "Coupa answered with its sign-in page",
            0.0,
            id="session-expired",
        ),
        pytest.param(
            RateLimitedError("429 Too Many Requests", retry_after_s=12.5),
            Action.PAUSE_HOST,
            "429 Too Many Requests",
            12.5,
            id="rate-limited",
        ),
        pytest.param(
            RateLimitedError("429 without Retry-After", retry_after_s=0.0),
            Action.PAUSE_HOST,
            "429 without Retry-After",
            0.0,
            id="rate-limited-no-delay",
        ),
        pytest.param(
            BrowserFaultError("the page crashed while reading PO 17"),
            Action.DROP_PAGE,
            "the page crashed while reading PO 17",
            0.0,
            id="browser-fault",
        ),
        pytest.param(
            PlaywrightError("Target page, context or browser has been closed"),
            Action.DROP_PAGE,
            "Target page, context or browser has been closed",
            0.0,
            id="playwright-closed",
        ),
        pytest.param(
            PlaywrightError("Page.goto: Page crashed\nCall log:\n  - navigating to /po/1"),
            Action.DROP_PAGE,
            "Page.goto: Page crashed",
            0.0,
            id="playwright-crashed",
        ),
        pytest.param(
            PlaywrightError("Browser closed."),
            Action.DROP_PAGE,
            "Browser closed.",
            0.0,
            id="playwright-browser-closed",
        ),
        pytest.param(
            PlaywrightError("Target closed"),
            Action.DROP_PAGE,
            "Target closed",
            0.0,
            id="playwright-target-closed",
        ),
        pytest.param(
            PlaywrightError("Browser has been disconnected"),
            Action.DROP_PAGE,
            "Browser has been disconnected",
            0.0,
            id="playwright-disconnected",
        ),
        pytest.param(
            PlaywrightError("Locator.click: Element is not attached to the DOM\nCall log:\n  x"),
            Action.RETRY,
            "Locator.click: Element is not attached to the DOM",
            0.0,
            id="playwright-ordinary",
        ),
        pytest.param(
            PlaywrightTimeoutError("Page.goto: Timeout 30000ms exceeded."),
            Action.RETRY,
            "Page.goto: Timeout 30000ms exceeded.",
            0.0,
            id="playwright-timeout-is-a-playwright-error",
        ),
        pytest.param(
            HostUnreachableError("connection refused by tenant.example.com"),
            Action.CHECK_OUTAGE,
            "connection refused by tenant.example.com",
            0.0,
            id="host-unreachable",
        ),
        pytest.param(
            TimeoutError(),
            Action.RETRY_NEW_PAGE,
            "no result within 300 s",
            0.0,
            id="timeout-without-message",
        ),
        pytest.param(
            TimeoutError("the attachment list did not settle"),
            Action.RETRY_NEW_PAGE,
            "the attachment list did not settle",
            0.0,
            id="timeout-with-message",
        ),
        pytest.param(
            TransientError("HTTP 503 from /purchase_orders/17"),
            Action.RETRY,
            "HTTP 503 from /purchase_orders/17",
            0.0,
            id="transient",
        ),
        pytest.param(
            TransientError(),
            Action.RETRY,
            "TransientError",
            0.0,
            id="transient-without-message",
        ),
        pytest.param(
            ValueError("bad literal 'x'"),
            Action.DEFECT,
            "unexpected error: ValueError: bad literal 'x'",
            0.0,
            id="value-error",
        ),
        pytest.param(
            KeyError("supplier"),
            Action.DEFECT,
            "unexpected error: KeyError: 'supplier'",
            0.0,
            id="key-error",
        ),
        pytest.param(
            AuthenticationError("sign-in refused"),
            Action.DEFECT,
            "unexpected error: AuthenticationError: sign-in refused",
            0.0,
            id="other-coupa-error",
        ),
        pytest.param(
            PoJobError("a PO job error of no particular kind"),
            Action.DEFECT,
            "unexpected error: PoJobError: a PO job error of no particular kind",
            0.0,
            id="plain-po-job-error",
        ),
    ],
)
def test_action_for_each_kind_of_failure(
    exc: BaseException, action: Action, reason: str, retry_after_s: float
) -> None:
    verdict = action_for(exc, TASK_TIMEOUT_S)
    assert verdict == Verdict(action, reason, retry_after_s)


def test_the_timeout_reason_names_the_task_timeout_given() -> None:
    assert action_for(TimeoutError(), 42.0).reason == "no result within 42 s"


def test_a_host_unreachable_error_is_checked_not_merely_retried() -> None:
    # HostUnreachableError is a TransientError: the more specific action must win.
    assert isinstance(HostUnreachableError("x"), TransientError)
    assert action_for(HostUnreachableError("x"), TASK_TIMEOUT_S).action is Action.CHECK_OUTAGE


def test_a_defect_reason_names_the_type_even_without_a_message() -> None:
    verdict = action_for(RuntimeError(), TASK_TIMEOUT_S)
    assert verdict.action is Action.DEFECT
    assert verdict.reason == "unexpected error: RuntimeError: "


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Target page, context or browser has been closed", True),
        ("Page crashed", True),
        ("Target closed", True),
        ("Browser closed.", True),
        ("Browser has been disconnected", True),
        ("Timeout 30000ms exceeded.", False),
        ("net::ERR_CONNECTION_REFUSED at https://tenant.example.com", False),
        ("", False),
    ],
)
def test_is_browser_fault(text: str, gone: bool) -> None:
    assert is_browser_fault(PlaywrightError(text)) is gone


@pytest.mark.parametrize(
    ("action", "charges"),
    [
        (Action.RENEW_SESSION, False),
        (Action.PAUSE_HOST, False),
        (Action.DROP_PAGE, False),
        (Action.CHECK_OUTAGE, False),
        (Action.RETRY, True),
        (Action.RETRY_NEW_PAGE, True),
        (Action.DEFECT, True),
        (Action.STOP_RUN, False),
    ],
)
def test_which_actions_charge_an_attempt(action: Action, charges: bool) -> None:
    assert Verdict(action, "why").charges is charges


def test_every_action_is_in_the_charges_table() -> None:
    assert {a.value for a in Action} == {
        "renew_session",
        "pause_host",
        "drop_page",
        "check_outage",
        "retry",
        "retry_new_page",
        "defect",
        "stop_run",
    }


def test_a_full_disk_stops_the_run_without_charging_the_item() -> None:
    verdict = action_for(storage_error("a file", OSError(28, "No space left on device")), 60)
    assert verdict.action is Action.STOP_RUN and not verdict.charges
    assert "No space left on device" in verdict.reason
