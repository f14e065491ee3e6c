"""The one table of exit codes, the errors that carry them, and the missing-tenant message."""

from __future__ import annotations

import pytest

from coupa_async import errors
from coupa_async.errors import (
    AuthenticationError,
    BrowserLaunchError,
    BrowserNotFoundError,
    ConfigurationError,
    CoupaAsyncError,
    ExitCode,
    InputFileError,
    JournalError,
    LayoutError,
    OutageGiveUpError,
    RunStoppedError,
    SignInRefusedError,
    TenantUnreachableError,
    missing_base_url,
)
from coupa_async.running.table_run import RunSummary


def test_exit_codes_are_the_documented_numbers() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "USAGE": 2,
        "ATTENTION": 3,
        "AUTH": 4,
        "OUTAGE": 5,
        "STORAGE": 6,
        "INTERRUPTED": 130,
    }


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CoupaAsyncError, 1),
        (BrowserLaunchError, 1),
        (RunStoppedError, 1),
        (LayoutError, 1),
        (ConfigurationError, 2),
        (InputFileError, 2),
        (BrowserNotFoundError, 2),
        (TenantUnreachableError, 2),
        (JournalError, 2),
        (AuthenticationError, 4),
        (SignInRefusedError, 4),
        (OutageGiveUpError, 5),
    ],
)
def test_each_error_exits_with_its_code(error: type[CoupaAsyncError], code: int) -> None:
    assert isinstance(error.exit_code, ExitCode)
    assert error.exit_code == code


def test_every_error_class_is_in_the_one_module() -> None:
    from coupa_async.results import journal, layout

    assert journal.JournalError is JournalError and layout.LayoutError is LayoutError
    assert issubclass(LayoutError, ValueError)
    raised = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert all(issubclass(error, CoupaAsyncError) for error in raised)


@pytest.mark.parametrize(
    ("summary", "code"),
    [
        (RunSummary(), ExitCode.OK),
        (RunSummary(invalid=1), ExitCode.ATTENTION),
        (RunSummary(pending=2), ExitCode.ATTENTION),
        (RunSummary(pending=2, interrupted=True), ExitCode.INTERRUPTED),
    ],
)
def test_run_summary_exit_code(summary: RunSummary, code: ExitCode) -> None:
    assert summary.exit_code is code


def test_missing_base_url() -> None:
    error = missing_base_url()
    assert isinstance(error, ConfigurationError) and error.exit_code == 2
    text = str(error)
    for hint in ("No Coupa address", "--base-url", "COUPA_BASE_URL", ".env", "demo"):
        assert hint in text
    assert missing_base_url() is not error  # a fresh exception each time
