"""Signing in to Coupa and keeping the saved browser state (cookies) private to its owner."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Page

from coupa_async.errors import AuthenticationError
from coupa_async.log import get_logger

log = get_logger("auth")

LOGIN_PATH_MARKERS = ("/sessions/new", "/login", "saml", "/sso/", "/oauth2/")
IDP_HOST_MARKERS = ("okta", "login.microsoftonline.com", "adfs", "auth0", "onelogin", "ping")


def is_login_url(url: str) -> bool:
    """True for Coupa's own login form and the usual identity-provider pages."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.lower()
    return any(marker in host for marker in IDP_HOST_MARKERS) or any(
        marker in path for marker in LOGIN_PATH_MARKERS
    )


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
    timeout_s: float = 30.0,
) -> None:
    """Sign in with a username and password through whatever login pages Coupa shows.

    Raises AuthenticationError when the credentials are refused or the pages never let go.
    """
    page = await context.new_page()
    try:
        await page.goto(f"{base_url}/order_headers", timeout=timeout_s * 1000)
        for _ in range(3):  # Coupa's form, or an identity provider and then Coupa
            if not is_login_url(page.url):
                break
            try:
                async with page.expect_navigation(timeout=timeout_s * 1000):
                    await fill_login_form(page, username, password, timeout_s)
            except Exception as exc:
                raise AuthenticationError(
                    f"Signing in at {base_url} did not finish within {timeout_s:.0f} s."
                ) from exc
            if is_login_url(page.url) and await page.locator("input[type=password]").count():
                refused = await page.locator(
                    ".flash_error, .flash-error, .error"
                ).all_text_contents()
                if refused:
                    raise AuthenticationError(
                        f"Coupa refused the sign-in: {' '.join(refused).strip()[:200]}. "
                        "Check COUPA_USERNAME and COUPA_PASSWORD."
                    )
        if is_login_url(page.url):
            raise AuthenticationError(
                f"Still on a login page ({urlsplit(page.url).path}) after signing in. "
                "Run `python -m coupa_async login` to sign in interactively."
            )
        log.info("signed_in", base_url=base_url)
    finally:
        await page.close()


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
