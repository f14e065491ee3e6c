"""Does a saved session still work? Asked of the tenant over the browser or plain HTTP."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import is_login_url
from coupa_async.log import get_logger
from coupa_async.session.contact import unreachable_from_browser, unreachable_from_http

log = get_logger(__name__)

SESSION_PROBE_TIMEOUT_S = 15.0


async def session_is_valid(context: BrowserContext, base_url: str, markers: CoupaMarkers) -> bool:
    """Probe the PO list: it answers without a login redirect only with a live session.

    Raises TenantUnreachableError when the tenant cannot be reached (no raw browser error).
    """
    url = f"{base_url}/order_headers"
    try:
        response = await context.request.get(url, max_redirects=10)
    except PlaywrightError as exc:
        raise_if_unreachable(exc, url)
        raise
    try:
        return response.ok and not is_login_url(response.url, markers)
    finally:
        await response.dispose()


def cookie_header_for(url: str, cookies: list[dict[str, Any]]) -> str:
    """The Cookie header a browser would send to ``url`` from saved-state ``cookies``."""
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path or "/"
    now = time.time()
    sent = []
    for cookie in cookies:
        domain = str(cookie.get("domain", "")).lower()
        bare = domain.lstrip(".")
        if not (host == bare or (domain.startswith(".") and host.endswith(domain))):
            continue
        if not path.startswith(str(cookie.get("path") or "/")):
            continue
        if cookie.get("secure") and parts.scheme != "https":
            continue
        expires = cookie.get("expires", -1)
        if isinstance(expires, int | float) and 0 < expires < now:
            continue
        sent.append(f"{cookie['name']}={cookie['value']}")
    return "; ".join(sent)


async def session_works_over_http(
    http: aiohttp.ClientSession, base_url: str, state: dict[str, Any], markers: CoupaMarkers
) -> bool:
    """Whether the saved sign-in still opens the PO list, asked over plain HTTP (no browser).

    Raises TenantUnreachableError when the tenant cannot be reached (no raw error).
    """
    url = f"{base_url}/order_headers"
    headers = {"Cookie": cookie_header_for(url, list(state.get("cookies", [])))}
    try:
        with anyio.fail_after(SESSION_PROBE_TIMEOUT_S):
            async with http.get(url, headers=headers, max_redirects=10) as response:
                return response.ok and not is_login_url(str(response.url), markers)
    except aiohttp.TooManyRedirects:
        return False
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise unreachable_from_http(exc, url, timeout_s=SESSION_PROBE_TIMEOUT_S) from None


def raise_if_unreachable(exc: PlaywrightError, url: str) -> None:
    """A network error becomes TenantUnreachableError, without the browser's call log."""
    unreachable = unreachable_from_browser(exc, url)
    if unreachable is not None:
        raise unreachable from None
