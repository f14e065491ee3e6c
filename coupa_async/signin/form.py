"""Signing in with a username and password: fill the forms, and read what the pages answer.

Success and refusal are watched at the same time, by polling what the page shows, so a wrong
password, a locked account or a second factor are told as soon as the page says so, not after a
timeout. Works for Coupa's own form and simple identity-provider forms.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Page, Request
from playwright.async_api import Error as PlaywrightError

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import is_login_url
from coupa_async.engine.actions import is_browser_fault
from coupa_async.errors import (
    AuthenticationError,
    CoupaAsyncError,
    SignInInterruptedError,
    SignInRefusedError,
    SignInTimeoutError,
)
from coupa_async.log import add_known_secret, error_summary, get_logger
from coupa_async.session.contact import unreachable_from_browser

log = get_logger(__name__)


async def fill_login_form(page: Page, username: str, password: str, timeout_s: float) -> None:
    """Fill the login form found by its password field and submit it.

    Works for Coupa's own form and simple identity-provider forms; the fields are found by type
    and position, not by ids, which differ between tenants.
    """
    password_field = page.locator("input[type=password]:visible").first
    await password_field.wait_for(timeout=timeout_s * 1000)
    form = password_field.locator("xpath=ancestor::form[1]")
    user_field = form.locator(
        "input[type=email]:visible, input[type=text]:visible, input:not([type]):visible"
    ).first
    await user_field.fill(username, timeout=timeout_s * 1000)
    await password_field.fill(password, timeout=timeout_s * 1000)
    await password_field.press("Enter", timeout=timeout_s * 1000)


class SignInState(StrEnum):
    """What a page met while signing in says."""

    SIGNED_IN = "signed_in"
    FORM = "form"  # a login form to fill
    WAITING = "waiting"  # loading, or the answer to a submitted form is still coming
    REFUSED = "refused"  # wrong username or password
    REJECTED = "rejected"  # the form came back with another error after a submit
    LOCKED = "locked"
    SECOND_FACTOR = "second_factor"


@dataclass(frozen=True)
class SignInView:
    """What a sign-in page shows now (read in one go from the page)."""

    url: str
    ready: bool
    password_field: bool
    code_field: bool
    flash: str
    text: str
    submitted: bool  # this document is the one our form submit was made on


_LOOK = """
(sel) => {
  const shown = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const all = (list) => list.flatMap((s) => {
    try { return [...document.querySelectorAll(s)].filter(shown); } catch (e) { return []; }
  });
  return {
    ready: document.readyState !== "loading",
    password: all(["input[type=password]"]).length > 0,
    code: all(sel.code).length > 0,
    flash: all(sel.flash).map((e) => e.innerText.trim()).filter(Boolean).join(" ").slice(0, 300),
    text: document.body ? document.body.innerText.slice(0, 20000) : "",
    submitted: window.__coupaAsyncSubmitted === true,
  };
}
"""
_MARK_SUBMITTED = "() => { window.__coupaAsyncSubmitted = true; }"
POLL_S = 0.1
MAX_SUBMITS = 3


def _found(text: str, phrases: list[str]) -> str | None:
    return next((phrase for phrase in phrases if phrase.casefold() in text), None)


def judge_sign_in(
    view: SignInView, tenant_host: str, markers: CoupaMarkers, *, submitted: bool
) -> tuple[SignInState, str]:
    """The state of a sign-in from what the page shows, and the words that tell it.

    A page on the tenant that is no login page and asks for no password or code is signed in.
    Else a refusal, a locked account or a code field are said as soon as they show; the texts
    of a second factor count only after a submit (login pages may mention them in passing).
    """
    if not view.ready:
        return SignInState.WAITING, ""
    on_tenant = (urlsplit(view.url).hostname or "") == tenant_host
    asks = view.password_field or view.code_field
    if on_tenant and not asks and not is_login_url(view.url, markers):
        return SignInState.SIGNED_IN, ""
    text = " ".join(view.text.split()).casefold()
    if said := _found(text, markers.sign_in_error_texts):
        return SignInState.REFUSED, said
    if said := _found(text, markers.account_locked_texts):
        return SignInState.LOCKED, said
    if view.code_field:
        return SignInState.SECOND_FACTOR, "a field for a code"
    if view.password_field:
        if view.submitted:
            return SignInState.WAITING, ""
        if submitted and view.flash:
            return SignInState.REJECTED, view.flash
        return SignInState.FORM, ""
    if submitted and (said := _found(text, markers.second_factor_texts)):
        return SignInState.SECOND_FACTOR, said
    return SignInState.WAITING, ""


async def _look(page: Page, markers: CoupaMarkers) -> SignInView | None:
    """The page's sign-in view, or None while a navigation replaces the document."""
    selectors = {"code": markers.second_factor_selectors, "flash": markers.sign_in_error_selectors}
    try:
        seen = await page.evaluate(_LOOK, selectors)
    except PlaywrightError as exc:
        if page.is_closed():
            raise SignInInterruptedError(
                "The sign-in page was closed before signing in finished. Run again."
            ) from None
        log.debug("sign_in_look_skipped", error=error_summary(exc))
        return None
    return SignInView(
        url=page.url,
        ready=bool(seen["ready"]),
        password_field=bool(seen["password"]),
        code_field=bool(seen["code"]),
        flash=str(seen["flash"]),
        text=str(seen["text"]),
        submitted=bool(seen["submitted"]),
    )


def _refusal(
    state: SignInState, said: str, username: str, base_url: str, page_url: str
) -> SignInRefusedError | None:
    login = f"python -m coupa_async login --base-url {base_url}"
    host = urlsplit(page_url).hostname or ""
    where = "" if host == urlsplit(base_url).hostname else f" (at the identity provider {host})"
    if state is SignInState.REFUSED:
        return SignInRefusedError(
            f"Coupa refused the username or password for {username}{where}: the sign-in page "
            f'says "{said}". Check COUPA_USERNAME and COUPA_PASSWORD (or sign in once with '
            f"`{login}`).",
            "credentials",
        )
    if state is SignInState.REJECTED:
        return SignInRefusedError(
            f"Coupa did not accept the sign-in for {username}{where}: the sign-in page says "
            f'"{said}". Check COUPA_USERNAME and COUPA_PASSWORD, or sign in once with `{login}`.',
            "credentials",
        )
    if state is SignInState.LOCKED:
        return SignInRefusedError(
            f'The account {username} is locked{where}: the sign-in page says "{said}". Ask '
            f"your Coupa administrator (or IT) to unlock it, then sign in once with `{login}` "
            "and run again.",
            "locked",
        )
    if state is SignInState.SECOND_FACTOR:
        return SignInRefusedError(
            f"Signing in as {username}{where} asks for a second factor ({said}), which a run "
            f"without a window cannot give. On your desktop, unset COUPA_PASSWORD and run "
            f"`{login}`: sign in in the browser window, code included; later runs reuse that "
            "session.",
            "second_factor",
        )
    return None


async def sign_in(
    context: BrowserContext,
    base_url: str,
    username: str,
    password: str,
    *,
    markers: CoupaMarkers,
    timeout_s: float = 30.0,
) -> None:
    """Sign in with a username and password through whatever login pages Coupa shows.

    Watches for success and for a refusal at the same time, so a wrong password, a locked
    account or a second factor are told within a poll (0.1 s) of the page saying so. Raises
    SignInRefusedError for those, TenantUnreachableError when a page cannot be reached, and
    AuthenticationError when the pages never let go within ``timeout_s``.
    """
    add_known_secret(password, any_length=True)
    page = await context.new_page()
    failures: list[tuple[str, str]] = []

    def on_failed(request: Request) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            failures.append((request.url, request.failure or ""))

    page.on("requestfailed", on_failed)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    tenant_host = urlsplit(base_url).hostname or ""
    try:
        url = f"{base_url}/order_headers"
        try:
            await page.goto(url, timeout=timeout_s * 1000, wait_until="commit")
        except PlaywrightError as exc:
            _raise_for_failed_navigation(failures, tenant_host, timeout_s)  # names the host
            raise _unreachable(exc, url, timeout_s) from None
        submits = 0
        while True:
            _raise_for_failed_navigation(failures, tenant_host, timeout_s)
            view = await _look(page, markers)
            if view is not None:
                state, said = judge_sign_in(view, tenant_host, markers, submitted=submits > 0)
                if state is SignInState.SIGNED_IN:
                    log.info("signed_in", base_url=base_url)
                    return
                refusal = _refusal(state, said, username, base_url, view.url)
                if refusal is not None:
                    log.debug("sign_in_refused", reason=refusal.reason, said=said)
                    raise refusal
                if state is SignInState.FORM:
                    if submits >= MAX_SUBMITS:
                        raise AuthenticationError(
                            f"Still on a login page ({urlsplit(view.url).path}) after signing "
                            f"in {submits} times. Run `python -m coupa_async login` to sign in "
                            "interactively."
                        )
                    await _submit(page, username, password, deadline - loop.time())
                    submits += 1
            if loop.time() >= deadline:
                raise SignInTimeoutError(
                    f"Signing in at {base_url} did not finish within {timeout_s:.0f} s "
                    f"(the browser is at {_shown_url(page.url)}). Run `python -m coupa_async "
                    "login` to sign in interactively."
                )
            await asyncio.sleep(POLL_S)
    finally:
        page.remove_listener("requestfailed", on_failed)
        with contextlib.suppress(PlaywrightError):
            await page.close()


async def _submit(page: Page, username: str, password: str, left_s: float) -> None:
    """Mark the document as submitted, then fill and send its form (a navigation may follow)."""
    try:
        await page.evaluate(_MARK_SUBMITTED)
        await fill_login_form(page, username, password, max(1.0, min(left_s, 10.0)))
    except PlaywrightError as exc:  # the page moved on meanwhile: look again
        log.debug("sign_in_submit_interrupted", error=error_summary(exc))


def _raise_for_failed_navigation(
    failures: list[tuple[str, str]], tenant_host: str, timeout_s: float
) -> None:
    """A page of the sign-in (Coupa's, or an identity provider's) could not be reached."""
    for url, failure in failures:
        what = "Coupa" if urlsplit(url).hostname == tenant_host else "the sign-in page"
        problem = unreachable_from_browser(failure, url, timeout_s=timeout_s, what=what)
        if problem is not None:
            raise problem


def _unreachable(exc: PlaywrightError, url: str, timeout_s: float) -> CoupaAsyncError:
    if is_browser_fault(exc):
        return SignInInterruptedError(
            f"The browser closed while opening {_shown_url(url)} to sign in. Run again."
        )
    return unreachable_from_browser(exc, url, timeout_s=timeout_s) or AuthenticationError(
        f"Could not open {_shown_url(url)} to sign in: {error_summary(exc)}."
    )


def _shown_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url
