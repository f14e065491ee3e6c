"""While the tenant asks to wait (429 with Retry-After), the requests that rendered pages' own
scripts send to it (polls, lists, analytics of its own) wait in the browser too, not only those
the workers send: the host's pause holds every request to it.

Requests are routed through Python only while a pause lasts: a route on every context costs a
round trip per request, too much to keep for a whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable

import anyio
from playwright.async_api import BrowserContext, Response, Route
from playwright.async_api import Error as PlaywrightError

from coupa_async.coupa.pages import retry_after_seconds
from coupa_async.gate import HostGates, host_of
from coupa_async.log import get_logger

log = get_logger(__name__)

Spawn = Callable[[Awaitable[None], str], None]


class PauseHold:
    """Watches each context for 429s (any host: that host pauses) and, while the tenant is
    paused, holds the contexts' requests to it until the pause ends."""

    def __init__(self, gates: HostGates, spawn: Spawn) -> None:
        self.gates = gates
        self._spawn = spawn
        self._contexts: weakref.WeakSet[BrowserContext] = weakref.WeakSet()
        self._routed: list[BrowserContext] = []
        self._holding = False
        self.held = 0  # requests held over the run
        gates.tenant.on_pause.append(self._tenant_paused)

    def watch(self, context: BrowserContext) -> None:
        """For each new context (the engine's ``on_context``)."""
        self._contexts.add(context)
        context.on("response", self._on_response)

    def _on_response(self, response: Response) -> None:
        if response.status == 429:
            gate = self.gates.for_url(response.url)
            gate.pause_for(retry_after_seconds(response.headers.get("retry-after")))

    def _tenant_paused(self) -> None:
        if not self._holding:
            self._holding = True
            self._spawn(self._hold_while_paused(), "hold requests during a pause")

    def _is_tenant(self, url: str) -> bool:
        return host_of(url) == self.gates.tenant.host

    async def _held(self, route: Route) -> None:
        tenant = self.gates.tenant
        self.held += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(tenant.remaining_pause_s + 1):
                await tenant.pause_over()
        with contextlib.suppress(PlaywrightError):  # the page may be gone meanwhile
            await route.fallback()

    async def _hold_while_paused(self) -> None:
        tenant = self.gates.tenant
        try:
            for context in list(self._contexts):
                with contextlib.suppress(PlaywrightError):
                    await context.route(self._is_tenant, self._held)
                    self._routed.append(context)
            log.debug("holding_requests", host=tenant.host, for_s=tenant.remaining_pause_s)
            await tenant.pause_over()
        finally:
            routed, self._routed = self._routed, []
            self._holding = False
            with anyio.CancelScope(shield=True):  # cleanup, even when the run is cancelled
                for context in routed:
                    with contextlib.suppress(PlaywrightError, TimeoutError):
                        async with asyncio.timeout(5):
                            await context.unroute(self._is_tenant, self._held)
