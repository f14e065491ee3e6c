"""Browser supervision: the one browser of a run, relaunched single-flight when it dies."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import anyio
from playwright.async_api import Browser, BrowserContext
from playwright.async_api import Error as PlaywrightError

from coupa_async.engine.actions import is_browser_fault
from coupa_async.errors import BrowserLaunchError
from coupa_async.log import get_logger

log = get_logger(__name__)

MAX_RELAUNCHES = 3


class _Relaunch:
    """One relaunch, for the callers that wait for it: when it ended, and how it failed."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.error: Exception | None = None


class BrowserSupervisor:
    """Holds the browser; ``recover`` relaunches it once however many workers saw it die."""

    def __init__(
        self,
        launch: Callable[[], Awaitable[Browser]],
        *,
        close_timeout_s: float = 10.0,
        max_relaunches: int = MAX_RELAUNCHES,
    ) -> None:
        self._launch = launch
        self._close_timeout_s = close_timeout_s
        self._max_relaunches = max_relaunches
        self.browser: Browser | None = None
        self.generation = 0
        self.relaunches = 0
        self._relaunching: _Relaunch | None = None  # the relaunch under way

    async def start(self) -> Browser:
        """Launch the browser; one that dies while starting (killed, out of memory, a loaded
        machine's timeout) is launched again, as a relaunch would be."""
        self.browser = await self._launch_with_retries()
        return self.browser

    async def context(self, make: Callable[[Browser], Awaitable[BrowserContext]]) -> BrowserContext:
        """A context made by ``make`` in the live browser; a browser found dead, before or
        while making it, is relaunched first (once, however many callers saw it die)."""
        seen = self.generation
        if not self.connected:
            await self.recover(seen)
        try:
            assert self.browser is not None
            return await make(self.browser)
        except PlaywrightError as exc:
            if not is_browser_fault(exc):
                raise
            log.warning("browser_gone_making_a_context", error=str(exc).splitlines()[0])
        await self.recover(seen)
        assert self.browser is not None
        return await make(self.browser)

    @property
    def connected(self) -> bool:
        return self.browser is not None and self.browser.is_connected()

    async def recover(self, seen_generation: int) -> None:
        """Relaunch the browser unless someone already did since ``seen_generation``."""
        if seen_generation != self.generation and self.connected:
            return
        if self._relaunching is not None:
            relaunch = self._relaunching
            await relaunch.done.wait()  # a waiter's cancellation leaves the relaunch be
            if relaunch.error is not None:
                raise relaunch.error
            return
        relaunch = self._relaunching = _Relaunch()
        try:
            await self._relaunch()
        except Exception as exc:
            relaunch.error = exc
            raise
        except BaseException:
            relaunch.error = BrowserLaunchError("relaunch interrupted")
            raise
        finally:
            self._relaunching = None
            relaunch.done.set()

    async def _relaunch(self) -> None:
        await self.close()
        try:
            self.browser = await self._launch_with_retries()
        except BrowserLaunchError as exc:
            raise BrowserLaunchError(
                f"The browser died and could not be started again after {self._max_relaunches} "
                f"tries ({exc}). Check memory and the browser installation, then rerun: the run "
                "resumes where it stopped."
            ) from exc
        self.generation += 1
        self.relaunches += 1
        log.warning("browser_relaunched", generation=self.generation)

    async def _launch_with_retries(self) -> Browser:
        """A launched browser, after up to ``max_relaunches`` tries 1, 2, 4… s apart; past
        them the last try's BrowserLaunchError."""
        last_error = BrowserLaunchError("the browser was not launched")
        for attempt in range(self._max_relaunches):
            if attempt:
                await anyio.sleep(2 ** (attempt - 1))
            try:
                return await self._launch()
            except BrowserLaunchError as exc:
                last_error = exc
                log.warning("browser_launch_failed", attempt=attempt + 1, error=str(exc))
        raise last_error

    async def close(self) -> None:
        if self.browser is not None:
            with contextlib.suppress(Exception), anyio.move_on_after(self._close_timeout_s):
                await self.browser.close()
