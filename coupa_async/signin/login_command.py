"""``coupa-async login``: sign in once, save the session for the runs that follow."""

from __future__ import annotations

import os
import sys

from coupa_async.errors import AuthenticationError, ExitCode, missing_base_url
from coupa_async.session.chromium import launch_browser, new_context, start_playwright
from coupa_async.session.contact import ensure_contact
from coupa_async.settings import Settings
from coupa_async.signin.keeper import interactive_login, sign_in_with_settings
from coupa_async.signin.saved_state import save_storage_state


def _can_show_a_window() -> bool:
    return sys.platform in ("win32", "darwin") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


async def login(settings: Settings) -> ExitCode:
    """With COUPA_USERNAME/PASSWORD: headless. Otherwise a visible browser the person signs in.

    Checks first that the tenant answers (TenantUnreachableError, exit code 2, when not). The
    session is saved to the tenant's own file (``settings.storage_state``).
    """
    base_url = settings.base_url
    if not base_url:
        raise missing_base_url()
    automatic = bool(settings.username and settings.password)
    if not automatic and not _can_show_a_window():
        raise AuthenticationError(
            "Signing in needs a visible browser window, and this session has no display. "
            "Run the login command on your desktop, or set COUPA_USERNAME and COUPA_PASSWORD "
            "when your tenant uses Coupa's own login form."
        )
    await ensure_contact(settings)
    headless = settings.browser.headless if automatic else False
    settings = settings.model_copy(
        update={"browser": settings.browser.model_copy(update={"headless": headless})}
    )
    async with start_playwright() as playwright:
        browser = await launch_browser(playwright, settings)
        try:
            context = await new_context(browser, settings)
            if automatic:
                await sign_in_with_settings(context, settings)
            else:
                print(f"Sign in to Coupa in the browser window ({base_url}).")
                await interactive_login(
                    context, base_url, settings.markers, settings.timeouts.login_s
                )
            await save_storage_state(context, settings.storage_state)
        finally:
            await browser.close()
    print(
        f"Signed in to {settings.base_url}. Session saved to {settings.storage_state} "
        "(readable by you only)."
    )
    return ExitCode.OK
