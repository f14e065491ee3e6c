"""Keeping a run signed in: signing in with the settings or by hand, renewing an expired
session once for all workers, and stopping when the tenant keeps refusing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import is_login_url
from coupa_async.engine.actions import is_browser_fault
from coupa_async.errors import (
    AuthenticationError,
    CoupaAsyncError,
    SessionDoubtError,
    SignInInterruptedError,
    SignInTimeoutError,
)
from coupa_async.log import add_known_secret, error_summary, get_logger
from coupa_async.session.gate import HostGate
from coupa_async.settings import Settings
from coupa_async.signin.form import sign_in
from coupa_async.signin.probe import raise_if_unreachable
from coupa_async.signin.saved_state import write_state

log = get_logger(__name__)

SIGN_IN_TRIES = 2
# Login pages met with a new sign-in before anything was read with it that stop the run.
DOUBTS_TO_STOP = 3
STUCK_MARGIN_S = 10.0
CLOSE_S = 5.0


async def sign_in_with_settings(context: BrowserContext, settings: Settings) -> None:
    """``sign_in`` with the configured tenant, credentials, markers and deadline.

    Sign-in pages that are only slow (no refusal, no error, just not done by the deadline: a
    busy identity provider, a loaded machine) get one more try before the run gives up.
    """
    if not (settings.base_url and settings.username and settings.password):
        raise AuthenticationError("Signing in needs base_url, username and password settings.")
    for attempt in range(1, SIGN_IN_TRIES + 1):
        try:
            await sign_in(
                context,
                settings.base_url,
                settings.username,
                settings.password.get_secret_value(),
                markers=settings.markers,
                timeout_s=settings.timeouts.navigation_s,
            )
            return
        except SignInTimeoutError as exc:
            if attempt == SIGN_IN_TRIES:
                raise
            log.warning("sign_in_slow", detail=str(exc), next_try=attempt + 1)


async def interactive_login(
    context: BrowserContext, base_url: str, markers: CoupaMarkers, timeout_s: float
) -> None:
    """Open Coupa in a visible window and wait until the person has signed in (SSO included)."""
    page = await context.new_page()
    url = f"{base_url}/order_headers"
    try:
        await page.goto(url, timeout=timeout_s * 1000)
    except PlaywrightError as exc:
        raise_if_unreachable(exc, url)
        raise
    deadline = anyio.current_time() + timeout_s
    host = urlsplit(base_url).hostname
    while anyio.current_time() < deadline:
        url = page.url
        if urlsplit(url).hostname == host and not is_login_url(url, markers):
            has_password = await page.locator("input[type=password]").count()
            if not has_password:
                return
        await anyio.sleep(0.5)
    raise AuthenticationError(
        f"Nobody finished signing in within {timeout_s:.0f} s. Run the login command again."
    )


def as_sign_in_error(exc: Exception) -> CoupaAsyncError:
    """``exc`` as the error a failed sign-in reports: itself, or an AuthenticationError."""
    if isinstance(exc, CoupaAsyncError):
        return exc
    return AuthenticationError(f"Signing in to Coupa failed: {error_summary(exc)}.")


def _browser_went_away(exc: BaseException) -> bool:
    """The sign-in failed because its page, context or browser is gone (not because of Coupa)."""
    return isinstance(exc, SignInInterruptedError) or is_browser_fault(exc)


class SessionKeeper:
    """Holds the run's sign-in and renews it once, however many workers saw it expire."""

    def __init__(
        self,
        settings: Settings,
        new_context: Callable[[dict[str, Any] | None], Awaitable[BrowserContext]],
        gate: HostGate,
        state: dict[str, Any] | None,
        browser_stuck: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self._new_context = new_context
        self._browser_stuck = browser_stuck  # relaunches a browser that stopped answering
        self._gate = gate
        self.state = state
        self.generation = 0
        self.renewals = 0
        self.sign_ins = 0  # with the password, over the run (the first one included)
        self._signed_in_at: float | None = None  # monotonic time of the last sign-in
        self._vouched = -1  # the newest generation an item settled with
        self._doubts = 0  # login pages met with the newest sign-in before it was vouched for
        self._starting = False  # the run's first sign-in: not an answer to a login page
        self._renewed_after_expiry = False  # the newest sign-in answered a login page
        self._renewing: asyncio.Future[None] | None = None

    @property
    def cookies(self) -> list[dict[str, Any]]:
        """The cookies of the current sign-in."""
        return list((self.state or {}).get("cookies", []))

    @property
    def can_renew(self) -> bool:
        return bool(self.settings.username and self.settings.password)

    async def renew(self, seen_generation: int) -> None:
        """Sign in again unless someone already did since ``seen_generation``; single flight.

        Every caller of one renewal, the first one included, gets the same error when it fails:
        a CoupaAsyncError (an AuthenticationError for anything that is not one already).
        """
        if seen_generation != self.generation:
            return
        if self._renewing is not None:
            await asyncio.shield(self._renewing)
            return
        self._check_budget()
        renewing = self._renewing = asyncio.get_running_loop().create_future()
        self._gate.close()
        try:
            await self._sign_in_fresh()
        except Exception as exc:
            error = as_sign_in_error(exc)
            renewing.set_exception(error)
            renewing.exception()  # retrieved: waiters re-raise it themselves
            if error is exc:
                raise
            raise error from exc
        except BaseException:  # cancelled: the waiters must not wait for ever
            renewing.set_exception(
                AuthenticationError("Signing in again was interrupted before it finished.")
            )
            renewing.exception()
            raise
        else:
            self.generation += 1
            self.renewals += 1
            renewing.set_result(None)
        finally:
            self._renewing = None
            self._gate.open()

    def vouch(self, generation: int) -> None:
        """An item settled with the cookies of ``generation``: that sign-in works."""
        self._vouched = max(self._vouched, generation)
        if generation == self.generation:
            self._doubts = 0

    def _check_budget(self) -> None:
        """Refuse a sign-in that would only feed a loop: past the run's budget, or right after
        a renewal whose session nothing has been read with yet (the tenant refuses it)."""
        limits = self.settings.limits
        if self.sign_ins >= limits.sign_ins_per_run:
            raise AuthenticationError(
                f"Signed in {self.sign_ins} times in this run, as many as "
                "limits.sign_ins_per_run allows, and Coupa still answers with its login page. "
                "Stopped so the identity provider does not lock the account; check that pages "
                "open in a browser with this account, then run the same command again: it "
                "resumes where it stopped."
            )
        if not self._renewed_after_expiry or self._vouched >= self.generation:
            return
        assert self._signed_in_at is not None
        age_s = time.monotonic() - self._signed_in_at
        if age_s >= limits.sign_in_repeat_s:
            return
        self._doubts += 1
        if self._doubts < DOUBTS_TO_STOP:
            # One page refusing the session is that page's problem, not a reason to sign in.
            raise SessionDoubtError(
                f"a login page came back {age_s:.0f} s after signing in anew, before anything "
                "was read with the new session; not signing in again for it"
            )
        raise AuthenticationError(
            f"Coupa sent its login page {self._doubts} times within {age_s:.0f} s of signing "
            "in anew, before any PO could be read with the new session, so the tenant does not "
            "accept it (a proxy or single sign-on that drops the session?). Stopped so the "
            "identity provider is not asked again; open a PO in a browser with this account, "
            "then run the same command again: it resumes where it stopped."
        )

    async def _sign_in_fresh(self) -> None:
        settings = self.settings
        if not self.can_renew:
            raise AuthenticationError(
                "The Coupa session expired and cannot be renewed: no COUPA_USERNAME and "
                "COUPA_PASSWORD are set. Run `python -m coupa_async login`, then run the same "
                "command again; it resumes where it stopped."
            )
        # Each try ends within its pages' own deadlines; this bound is for a browser that
        # stops answering altogether (a call to it that never returns).
        bound_s = settings.timeouts.navigation_s * (SIGN_IN_TRIES + 1) + STUCK_MARGIN_S
        for attempt in range(1, SIGN_IN_TRIES + 1):
            try:
                with anyio.fail_after(bound_s) as bound:
                    state = await self._sign_in_once()
                break
            except TimeoutError:
                if not bound.cancel_called:
                    raise  # a deadline of the sign-in's own, told as it is
                log.warning("sign_in_stuck", waited_s=bound_s, next_try=attempt + 1)
                if attempt == SIGN_IN_TRIES:
                    raise AuthenticationError(
                        f"The browser stopped answering while signing in (twice, {bound_s:.0f} s "
                        "each). Check memory and the browser installation, then run again: "
                        "the run resumes where it stopped."
                    ) from None
                if self._browser_stuck is not None:
                    await self._browser_stuck()
            except (SignInInterruptedError, PlaywrightError) as exc:
                if attempt == SIGN_IN_TRIES or not _browser_went_away(exc):
                    raise
                log.warning("sign_in_interrupted", detail=error_summary(exc))
        self.sign_ins += 1
        self._signed_in_at = time.monotonic()
        self._renewed_after_expiry = not self._starting
        self._doubts = 0
        for cookie in state.get("cookies", []):
            if isinstance(cookie, dict):
                add_known_secret(str(cookie.get("value", "")))
        self.state = state
        try:
            await anyio.to_thread.run_sync(write_state, settings.storage_state, state)
        except OSError as exc:
            # The new sign-in works for this run; only the next run has to sign in again.
            log.warning(
                "storage_state_not_saved",
                path=str(settings.storage_state),
                error=error_summary(exc),
            )
        if self.generation:
            log.info("session_renewed", renewals=self.renewals + 1)

    async def _sign_in_once(self) -> dict[str, Any]:
        # A browser that died under an earlier try is relaunched by the context factory.
        context = await self._new_context(None)
        try:
            await sign_in_with_settings(context, self.settings)
            return dict(await context.storage_state())
        finally:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                with anyio.fail_after(CLOSE_S):
                    await context.close()

    async def ensure_signed_in(self, saved_state_works: bool) -> None:
        """At start: keep a saved sign-in that still works, else sign in with credentials."""
        if self.state is not None and saved_state_works:
            return
        self._starting = True
        try:
            await self.renew(self.generation)
        finally:
            self._starting = False
