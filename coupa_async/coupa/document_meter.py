"""The size of a rendered page's documents, counted as their bytes arrive in the browser, and
the loading stopped past a bound: a page of hundreds of megabytes (or a small compressed one
that inflates without end) must not fill the browser's memory.

Playwright tells a response's size only once it has ended, so the count comes from Chromium's
own network events (``Network.dataReceived``: decoded bytes) on a DevTools session of the
page, listened to only while the page's document loads.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

from coupa_async.coupa.bounded import BodyLimits
from coupa_async.errors import PageTooLargeError

T = TypeVar("T")

# One DevTools session per page, made on its first render and kept while the page lives.
_sessions: weakref.WeakKeyDictionary[Page, CDPSession] = weakref.WeakKeyDictionary()

CDP_CALL_S = 5.0
# Kept small: this session only counts, it never asks for a body.
_ENABLE = {"maxTotalBufferSize": 1024, "maxResourceBufferSize": 1024}


async def _session_of(page: Page) -> CDPSession:
    session = _sessions.get(page)
    if session is None:
        session = await page.context.new_cdp_session(page)
        _sessions[page] = session
    return session


class DocumentMeter:
    """Counts the decoded bytes of the documents ``page`` loads while entered; ``guard`` stops a
    navigation whose documents pass ``limits.max_bytes`` and raises PageTooLargeError."""

    def __init__(self, page: Page, limits: BodyLimits) -> None:
        self.page = page
        self.limits = limits
        self.size = 0
        self.exceeded = anyio.Event()
        self._documents: set[str] = set()
        self._session: CDPSession | None = None

    async def __aenter__(self) -> Self:
        try:
            # A crashed renderer may leave a DevTools call unanswered: each has a deadline.
            with anyio.fail_after(CDP_CALL_S):
                session = await _session_of(self.page)
                session.on("Network.responseReceived", self._on_response)
                session.on("Network.dataReceived", self._on_data)
                await session.send("Network.enable", _ENABLE)
        except (PlaywrightError, TimeoutError):
            return self  # not a Chromium page (or gone): loading is bounded by its deadline
        self._session = session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        session.remove_listener("Network.responseReceived", self._on_response)
        session.remove_listener("Network.dataReceived", self._on_data)
        with contextlib.suppress(PlaywrightError, TimeoutError), anyio.fail_after(CDP_CALL_S):
            await session.send("Network.disable")

    def _on_response(self, params: dict[str, Any]) -> None:
        if params.get("type") == "Document":
            self._documents.add(str(params.get("requestId")))

    def _on_data(self, params: dict[str, Any]) -> None:
        if str(params.get("requestId")) not in self._documents:
            return
        self.size += int(params.get("dataLength") or 0)
        if self.size > self.limits.max_bytes:
            self.exceeded.set()

    async def guard(self, navigation: Awaitable[T], url: str) -> T:
        """``navigation``'s result, unless the documents grow past the bound first."""
        loaded: list[T] = []
        failed: list[Exception] = []  # the navigation's own error, raised as itself below

        async def load(done: anyio.CancelScope) -> None:
            try:
                loaded.append(await navigation)
            except Exception as exc:
                failed.append(exc)
            done.cancel()

        async def watch(done: anyio.CancelScope) -> None:
            await self.exceeded.wait()
            done.cancel()

        async with anyio.create_task_group() as race:  # the first to end stops the other
            race.start_soon(load, race.cancel_scope)
            race.start_soon(watch, race.cancel_scope)
        if not self.exceeded.is_set():
            if failed:
                raise failed[0]
            if loaded:
                return loaded[0]
        await self._stop_loading()
        megabytes = self.limits.max_bytes / (1024 * 1024)
        raise PageTooLargeError(
            f"the page grew past {megabytes:,.0f} MB while loading ({self.limits.setting}) "
            f"and was not read; raise the setting if it is really that large: {url}"
        )

    async def _stop_loading(self) -> None:
        with contextlib.suppress(PlaywrightError, TimeoutError), anyio.fail_after(10):
            if self._session is not None:
                await self._session.send("Page.stopLoading")
            await self.page.goto("about:blank")
