"""Signing in to Coupa and keeping the saved browser state (cookies) private to its owner."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Page

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import is_login_url
from coupa_async.errors import AuthenticationError
from coupa_async.gate import HostGate
from coupa_async.log import get_logger
from coupa_async.settings import Settings

log = get_logger("auth")


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
    await user_field.fill(username)
    await password_field.fill(password)
    await password_field.press("Enter")


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

    Raises AuthenticationError when the credentials are refused or the pages never let go.
    """
    page = await context.new_page()
    try:
        await page.goto(f"{base_url}/order_headers", timeout=timeout_s * 1000)
        for _ in range(3):  # Coupa's form, or an identity provider and then Coupa
            if not is_login_url(page.url, markers):
                break
            try:
                async with page.expect_navigation(timeout=timeout_s * 1000):
                    await fill_login_form(page, username, password, timeout_s)
            except Exception as exc:
                raise AuthenticationError(
                    f"Signing in at {base_url} did not finish within {timeout_s:.0f} s."
                ) from exc
            if (
                is_login_url(page.url, markers)
                and await page.locator("input[type=password]").count()
            ):
                refused = await page.locator(
                    ".flash_error, .flash-error, .error"
                ).all_text_contents()
                if refused:
                    raise AuthenticationError(
                        f"Coupa refused the sign-in: {' '.join(refused).strip()[:200]}. "
                        "Check COUPA_USERNAME and COUPA_PASSWORD."
                    )
        if is_login_url(page.url, markers):
            raise AuthenticationError(
                f"Still on a login page ({urlsplit(page.url).path}) after signing in. "
                "Run `python -m coupa_async login` to sign in interactively."
            )
        log.info("signed_in", base_url=base_url)
    finally:
        await page.close()


async def sign_in_with_settings(context: BrowserContext, settings: Settings) -> None:
    """``sign_in`` with the configured tenant, credentials, markers and deadline."""
    if not (settings.base_url and settings.username and settings.password):
        raise AuthenticationError("Signing in needs base_url, username and password settings.")
    await sign_in(
        context,
        settings.base_url,
        settings.username,
        settings.password.get_secret_value(),
        markers=settings.markers,
        timeout_s=settings.timeouts.navigation_s,
    )


def write_private_json(path: Path, data: Any) -> None:
    """Write JSON readable by its owner only, atomically (temporary file, then rename)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


async def save_storage_state(context: BrowserContext, path: Path) -> dict[str, Any]:
    """Save the context's cookies and local storage to ``path`` with mode 0600."""
    state = await context.storage_state()
    write_private_json(path, state)
    log.info("storage_state_saved", path=str(path), cookies=len(state.get("cookies", [])))
    return dict(state)


def load_storage_state(path: Path) -> dict[str, Any] | None:
    """The saved sign-in, or None when there is none (or it cannot be read as one)."""
    path = path.expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("storage_state_unreadable", path=str(path), error=type(exc).__name__)
        return None
    return data if isinstance(data, dict) and "cookies" in data else None


async def session_is_valid(context: BrowserContext, base_url: str, markers: CoupaMarkers) -> bool:
    """Probe the PO list: it answers without a login redirect only with a live session."""
    response = await context.request.get(f"{base_url}/order_headers", max_redirects=10)
    try:
        return response.ok and not is_login_url(response.url, markers)
    finally:
        await response.dispose()


async def interactive_login(
    context: BrowserContext, base_url: str, markers: CoupaMarkers, timeout_s: float
) -> None:
    """Open Coupa in a visible window and wait until the person has signed in (SSO included)."""
    page = await context.new_page()
    await page.goto(f"{base_url}/order_headers", timeout=timeout_s * 1000)
    deadline = asyncio.get_running_loop().time() + timeout_s
    host = urlsplit(base_url).hostname
    while asyncio.get_running_loop().time() < deadline:
        url = page.url
        if urlsplit(url).hostname == host and not is_login_url(url, markers):
            has_password = await page.locator("input[type=password]").count()
            if not has_password:
                return
        await asyncio.sleep(0.5)
    raise AuthenticationError(
        f"Nobody finished signing in within {timeout_s:.0f} s. Run the login command again."
    )


class SessionKeeper:
    """Holds the run's sign-in and renews it once, however many workers saw it expire."""

    def __init__(
        self,
        settings: Settings,
        new_context: Callable[[dict[str, Any] | None], Awaitable[BrowserContext]],
        gate: HostGate,
        state: dict[str, Any] | None,
    ) -> None:
        self.settings = settings
        self._new_context = new_context
        self._gate = gate
        self.state = state
        self.generation = 0
        self.renewals = 0
        self._renewing: asyncio.Future[None] | None = None

    @property
    def can_renew(self) -> bool:
        return bool(self.settings.username and self.settings.password)

    async def renew(self, seen_generation: int) -> None:
        """Sign in again unless someone already did since ``seen_generation``; single flight."""
        if seen_generation != self.generation:
            return
        if self._renewing is not None:
            await asyncio.shield(self._renewing)
            return
        self._renewing = asyncio.get_running_loop().create_future()
        self._gate.close()
        try:
            await self._sign_in_fresh()
            self.generation += 1
            self.renewals += 1
            self._renewing.set_result(None)
        except BaseException as exc:
            self._renewing.set_exception(
                exc if isinstance(exc, AuthenticationError) else AuthenticationError(str(exc))
            )
            self._renewing.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            self._renewing = None
            self._gate.open()

    async def _sign_in_fresh(self) -> None:
        settings = self.settings
        if not self.can_renew:
            raise AuthenticationError(
                "The Coupa session expired and cannot be renewed: no COUPA_USERNAME and "
                "COUPA_PASSWORD are set. Run `python -m coupa_async login`, then run the same "
                "command again; it resumes where it stopped."
            )
        context = await self._new_context(None)
        try:
            await sign_in_with_settings(context, settings)
            self.state = await save_storage_state(context, settings.storage_state)
        finally:
            await context.close()
        if self.generation:
            log.info("session_renewed", renewals=self.renewals)

    async def ensure_signed_in(self, probe: BrowserContext) -> None:
        """At start: keep a saved sign-in that still works, else sign in with credentials."""
        assert self.settings.base_url
        if self.state is not None and await session_is_valid(
            probe, self.settings.base_url, self.settings.markers
        ):
            return
        await self.renew(self.generation)
