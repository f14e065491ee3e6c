"""The gate every request to a host passes: closed while the host asks us to wait (429), and
for the tenant also while the session is being renewed or Coupa cannot be reached, so no worker
sends anything meanwhile. One gate per host: a file host's 429 holds that host only."""

from __future__ import annotations

import asyncio
import math
from urllib.parse import urlsplit

from coupa_async.log import get_logger

log = get_logger(__name__)

# Loop clocks and the server's clock tick differently; arrive a little after the deadline.
RETRY_AFTER_MARGIN_S = 0.05
DEFAULT_MAX_PAUSE_S = 300.0


def host_of(url: str) -> str:
    """The host and port of ``url``, lower case: what one gate stands for."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2].lower()
    except ValueError:
        return ""


class PauseCap:
    """A Retry-After bounded by ``max_s`` (limits.retry_after_max_s); the first cut is logged once.

    ``event`` and ``fields`` name the log line; ``who_asked`` begins its sentence.
    """

    def __init__(self, max_s: float, event: str, who_asked: str, **fields: object) -> None:
        self.max_s = max_s
        self._event = event
        self._who_asked = who_asked
        self._fields = fields
        self._told = False

    def bound(self, seconds: float) -> float:
        """``seconds`` as a pause: 0 for a negative or NaN wait, at most ``max_s``."""
        if math.isnan(seconds) or seconds < 0:
            return 0.0
        if seconds <= self.max_s:
            return seconds
        if not self._told:
            self._told = True
            log.warning(
                self._event,
                **self._fields,
                asked_s=seconds if math.isfinite(seconds) else "no end",
                paused_s=self.max_s,
                detail=f"{self._who_asked} limits.retry_after_max_s ({self.max_s:.0f} s); "
                "waiting that long at most each time",
            )
        return self.max_s


class HostGate:
    """Open by default; ``pause_for`` and ``close`` hold every caller of ``wait``.

    A pause is never longer than ``max_pause_s`` (limits.retry_after_max_s), whatever the host
    asked: the first longer ask is said once, in a warning that names the setting.
    """

    def __init__(self, host: str = "", *, max_pause_s: float = DEFAULT_MAX_PAUSE_S) -> None:
        self.host = host
        self.max_pause_s = max_pause_s
        self._open = asyncio.Event()
        self._open.set()
        self._closed_for: set[str] = set()
        self._paused_until = 0.0
        self.pauses = 0
        self._cap = PauseCap(
            max_pause_s,
            "retry_after_capped",
            f"{host or 'the host'} asked to wait longer than",
            host=host,
        )

    @property
    def is_open(self) -> bool:
        return self._open.is_set() and self.remaining_pause_s == 0

    @property
    def remaining_pause_s(self) -> float:
        return max(0.0, self._paused_until - asyncio.get_running_loop().time())

    async def wait(self) -> None:
        """Return once the host may be contacted."""
        while True:
            await self._open.wait()
            delay = self.remaining_pause_s
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    async def pause_over(self) -> None:
        """Return once no pause is left (a renewal or an outage may still hold ``wait``)."""
        while True:
            left = self.remaining_pause_s
            if left <= 0:
                return
            await asyncio.sleep(left)

    def pause_for(self, seconds: float) -> None:
        """No request before ``seconds`` from now (the host's Retry-After), capped."""
        seconds = self._cap.bound(seconds)
        until = asyncio.get_running_loop().time() + seconds + RETRY_AFTER_MARGIN_S
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1

    def close(self, reason: str = "session") -> None:
        """Hold every caller until ``open`` is called with the same reason (and no other)."""
        self._closed_for.add(reason)
        self._open.clear()

    def open(self, reason: str = "session") -> None:
        self._closed_for.discard(reason)
        if not self._closed_for:
            self._open.set()

    def closed_for(self, reason: str) -> bool:
        return reason in self._closed_for


class HostGates:
    """The run's gates, one per host: the tenant's (which sign-ins and outages close too) and
    one for each other host that asked to wait."""

    def __init__(self, tenant_url: str | None, *, max_pause_s: float = DEFAULT_MAX_PAUSE_S) -> None:
        self.max_pause_s = max_pause_s
        self.tenant = HostGate(host_of(tenant_url or ""), max_pause_s=max_pause_s)
        self._others: dict[str, HostGate] = {}

    def for_url(self, url: str) -> HostGate:
        """The gate of ``url``'s host (the tenant's for a relative or tenant URL)."""
        host = host_of(url)
        if not host or host == self.tenant.host:
            return self.tenant
        gate = self._others.get(host)
        if gate is None:
            gate = self._others[host] = HostGate(host, max_pause_s=self.max_pause_s)
        return gate

    def is_tenant(self, url: str) -> bool:
        return self.for_url(url) is self.tenant
