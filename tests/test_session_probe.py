"""The saved sign-in is checked over plain HTTP while the browser starts."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
import structlog
from playwright.async_api import Browser

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.errors import SignInTimeoutError
from coupa_async.signin.keeper import sign_in_with_settings
from coupa_async.signin.probe import cookie_header_for, session_works_over_http
from coupa_async.sim import SimConfig, Simulator

from .runkit import settings_for


def _cookie(name: str, domain: str, **extra: object) -> dict[str, object]:
    return {"name": name, "value": f"v-{name}", "domain": domain, "path": "/", **extra}


def test_only_the_cookies_a_browser_would_send_go_with_the_request() -> None:
    cookies = [
        _cookie("host_only", "acme.coupahost.com"),
        _cookie("parent", ".coupahost.com"),
        _cookie("other_tenant", "other.coupahost.com"),
        _cookie("idp", "login.example-idp.com"),
        _cookie("deep", "acme.coupahost.com", path="/attachments"),
        _cookie("secure", "acme.coupahost.com", secure=True),
        _cookie("expired", "acme.coupahost.com", expires=time.time() - 60),
        _cookie("session", "acme.coupahost.com", expires=-1),
    ]
    header = cookie_header_for("https://acme.coupahost.com/order_headers", cookies)
    assert header.split("; ") == [
        "host_only=v-host_only",
        "parent=v-parent",
        "secure=v-secure",
        "session=v-session",
    ]
    plain = cookie_header_for("http://acme.coupahost.com/attachments/1", cookies)
    assert "deep=v-deep" in plain and "secure=" not in plain


async def test_a_saved_sign_in_is_known_good_or_not_without_a_browser(
    tmp_path: Path, browser: Browser
) -> None:
    async with Simulator(SimConfig(seed=31, pos=3)) as sim:
        settings = settings_for(sim, tmp_path)
        context = await browser.new_context()
        await sign_in_with_settings(context, settings)
        state = dict(await context.storage_state())
        await context.close()
        markers = CoupaMarkers()
        async with aiohttp.ClientSession() as http:
            assert await session_works_over_http(http, sim.base_url, state, markers)
            sim.expire_sessions()
            assert not await session_works_over_http(http, sim.base_url, state, markers)
            assert not await session_works_over_http(http, sim.base_url, {"cookies": []}, markers)


async def test_sign_in_pages_slow_once_get_a_second_try_slow_twice_give_up(
    tmp_path: Path, browser: Browser
) -> None:
    async with Simulator(SimConfig(seed=32, pos=3)) as sim:
        settings = settings_for(sim, tmp_path, timeouts={"navigation_s": 2.0})
        # The login page and its form's answer each take 1.2 s: 2.4 s, past the 2 s deadline.
        sim.inject("hang", "/sessions", count=2, seconds=1.2)
        context = await browser.new_context()
        with structlog.testing.capture_logs() as logs:
            await sign_in_with_settings(context, settings)
        await context.close()
        assert [e["next_try"] for e in logs if e["event"] == "sign_in_slow"] == [2]

        sim.inject("hang", "/sessions", count=4, seconds=1.2)
        context = await browser.new_context()
        with pytest.raises(SignInTimeoutError, match="did not finish within 2 s"):
            await sign_in_with_settings(context, settings)
        await context.close()
