"""The exceptions a user of coupa_async can meet, and the exit codes of the command.

Each message says what happened and what to do.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code of ``coupa-async``, as the README documents them."""

    OK = 0  # every PO COMPLETED or NO_ATTACHMENTS; the audit agrees
    ERROR = 1  # an unexpected error, or the demo differs from the simulator's catalog
    USAGE = 2  # bad usage, input or configuration, or the tenant cannot be reached: nothing ran
    ATTENTION = 3  # finished, but some POs need attention (or the audit found disagreements)
    AUTH = 4  # the session expired and could not be renewed, or the sign-in was refused
    OUTAGE = 5  # Coupa stayed unreachable longer than network.outage_give_up_s; resumable
    STORAGE = 6  # the disk is full or the output folder cannot be written; resumable
    INTERRUPTED = 130  # Ctrl+C or SIGTERM; resumable


class CoupaAsyncError(Exception):
    """Base of every error raised by coupa_async."""

    exit_code: ExitCode = ExitCode.ERROR


class ConfigurationError(CoupaAsyncError):
    """A setting is missing, unknown or has a bad value."""

    exit_code = ExitCode.USAGE


def missing_base_url() -> ConfigurationError:
    """The error for a run, login or library call with no tenant address configured."""
    return ConfigurationError(
        "No Coupa address is set. Pass --base-url https://<tenant>.coupahost.com, or set "
        "COUPA_BASE_URL (in the environment or in .env) or base_url in playwright.config. "
        "To try the tool without an account first: python -m coupa_async demo"
    )


class InputFileError(CoupaAsyncError):
    """The input file cannot be read as a list of PO numbers."""

    exit_code = ExitCode.USAGE


class BrowserNotFoundError(CoupaAsyncError):
    """No browser could be found or installed."""

    exit_code = ExitCode.USAGE


class JournalError(CoupaAsyncError):
    """The journal of an output folder cannot be used: unknown version, damaged, or not writable."""

    exit_code = ExitCode.USAGE


class StorageError(CoupaAsyncError):
    """The disk is full, or the output folder or journal cannot be written: the run stops, the
    rest stays pending, and nothing recorded so far is lost."""

    exit_code = ExitCode.STORAGE


def storage_error(what: str, exc: BaseException) -> StorageError:
    """The one sentence for a write that failed: what, why, and what to do."""
    detail = getattr(exc, "strerror", None) or str(exc)
    return StorageError(
        f"Cannot write {what} ({detail}): is the disk full? The run stopped; nothing recorded "
        "so far is lost. Free some space, then run the same command again to resume."
    )


class LayoutError(CoupaAsyncError, ValueError):
    """A path would leave the output folder, or a folder is not where the layout expects it."""


class TenantUnreachableError(CoupaAsyncError):
    """The Coupa address cannot be reached, or what answers there is not Coupa (first contact).

    ``cause`` names the kind of failure (``dns``, ``refused``, ``timeout``, ``tls``, ``proxy``,
    ``proxy_auth``, ``dropped``, ``not_coupa``…); the message says what to check.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, cause: str = "unreachable") -> None:
        super().__init__(message)
        self.cause = cause


class BrowserLaunchError(CoupaAsyncError):
    """A browser was found but would not start."""

    exit_code = ExitCode.ERROR


class AuthenticationError(CoupaAsyncError):
    """Signing in to Coupa failed, or an expired session could not be renewed."""

    exit_code = ExitCode.AUTH


class SessionDoubtError(CoupaAsyncError):
    """A login page came back right after a new sign-in, before anything was read with it: no
    new sign-in for it; the item that met it is charged. Enough of them stop the run."""


class SignInTimeoutError(AuthenticationError):
    """The sign-in pages neither let go nor refused within the deadline (slow, not wrong)."""


class SignInInterruptedError(AuthenticationError):
    """The sign-in's page or browser went away under it (a crash, not a refusal)."""


class SignInRefusedError(AuthenticationError):
    """Coupa or the identity provider answered the sign-in with a refusal.

    ``reason``: ``credentials`` (wrong username or password), ``locked`` (the account is locked)
    or ``second_factor`` (a code a headless run cannot give).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RunStoppedError(CoupaAsyncError):
    """The run could not go on (for example results could not be recorded); resumable."""

    exit_code = ExitCode.ERROR


class OutageGiveUpError(CoupaAsyncError):
    """Coupa stayed unreachable longer than ``network.outage_give_up_s``; resumable."""

    exit_code = ExitCode.OUTAGE


class PoJobError(CoupaAsyncError):
    """A PO could not be processed this time; the engine decides what happens next."""


class SessionExpiredError(PoJobError):
    """Coupa answered with a login page: sign in again and retry the PO, without charging it."""


class RateLimitedError(PoJobError):
    """A host answered 429: nobody may send to it until ``retry_after_s`` has passed.

    ``url`` is what answered. ``other_host`` names the host when it is not the tenant (a file
    host): the pause holds that host only, and the PO is retried after it, charged, so a host
    that never stops asking cannot hold a PO for ever.
    """

    def __init__(
        self,
        message: str,
        retry_after_s: float,
        *,
        url: str | None = None,
        other_host: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.url = url
        self.other_host = other_host


class TransientError(PoJobError):
    """A timeout, a 5xx answer or a network error: retry later with backoff."""


class PageTooLargeError(TransientError):
    """A page went past ``limits.page_max_mb`` (or inflated past the compression bound): not
    read, so the PO fails with that sentence once its attempts are used."""


class HostUnreachableError(TransientError):
    """A request got no answer from the host (refused, reset, DNS, no route, a proxy's 502/503/504,
    a maintenance page): the engine checks whether Coupa as a whole is down before charging the PO.
    """


class BrowserFaultError(PoJobError):
    """The page, context or browser died: retry elsewhere, never charged to the PO."""


class ApiAccessError(ConfigurationError):
    """Coupa's REST API refused the client itself: wrong id or secret, or a scope it lacks
    (exit 2: nothing can be done with the API until a setting or the client changes)."""


def missing_api_client(without: str) -> ApiAccessError:
    """The error for an API command with no API client configured; ``without`` says what to do
    instead (``"audit without --api"``)."""
    return ApiAccessError(
        "No Coupa API client is set: set api.client_id and api.client_secret (COUPA_API__CLIENT_ID "
        "and COUPA_API__CLIENT_SECRET, from the OAuth2 client your Coupa administrator creates), "
        f"or {without}."
    )


class ApiRefusalError(CoupaAsyncError):
    """The API will not serve one object: 403 (outside the client's scopes or rights) or 404.

    ``scope`` names the missing scope of an ``insufficient_scope`` answer.
    """

    def __init__(self, message: str, status: int, scope: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.scope = scope


class ApiAnswerError(TransientError):
    """The API answered something it is not documented to (not JSON, or another shape)."""
