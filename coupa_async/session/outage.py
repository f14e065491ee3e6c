"""Tell an outage of Coupa (VPN down, Wi-Fi change, proxy restart, maintenance) from a bad request.

A request that gets no answer from the host is checked at once with one light probe of the
tenant. If the probe gets no answer either, Coupa is down for everyone: the host gate closes (no
worker sends anything, POs in flight go back to the queue without being charged), and the probe
is repeated with backoff (1 s doubling to 30 s) until the tenant answers; then the gate opens.
If the probe is answered, the failure was the PO's own: an ordinary transient error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import anyio

from coupa_async.log import get_logger
from coupa_async.session.gate import HostGate

log = get_logger(__name__)

# Texts of network-level failures in Chromium (net::ERR_…), Playwright's request API (Node
# errors) and aiohttp: no answer came from the host at all.
NETWORK_SIGNS = (
    "ERR_CONNECTION_REFUSED",
    "ERR_CONNECTION_RESET",
    "ERR_CONNECTION_CLOSED",
    "ERR_CONNECTION_ABORTED",
    "ERR_CONNECTION_FAILED",
    "ERR_CONNECTION_TIMED_OUT",
    "ERR_EMPTY_RESPONSE",
    "ERR_NAME_NOT_RESOLVED",
    "ERR_NAME_RESOLUTION_FAILED",
    "ERR_INTERNET_DISCONNECTED",
    "ERR_NETWORK_CHANGED",
    "ERR_ADDRESS_UNREACHABLE",
    "ERR_NETWORK_ACCESS_DENIED",
    "ERR_PROXY_CONNECTION_FAILED",
    "ERR_TUNNEL_CONNECTION_FAILED",
    "ERR_TIMED_OUT",
    "ECONNREFUSED",
    "ECONNRESET",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EPIPE",
    "socket hang up",
    "Cannot connect to host",
    "Server disconnected",
    "Connection reset by peer",
)
# Answers that come from something in front of Coupa, or from Coupa in maintenance.
OUTAGE_STATUSES = frozenset({502, 503, 504})
PROBE_TIMEOUT_S = 10.0
FIRST_PROBE_DELAY_S = 1.0
MAX_PROBE_DELAY_S = 30.0

Probe = Callable[[], Awaitable[str | None]]  # None: the tenant answered; else why not


def is_network_failure(message: str) -> bool:
    """Whether an error text says the host gave no answer at all."""
    return any(sign.lower() in message.lower() for sign in NETWORK_SIGNS)


@dataclass(frozen=True, slots=True)
class Outage:
    """One outage: when it began and ended (wall clock), and how many probes it took."""

    started: datetime
    ended: datetime | None
    probes: int
    reason: str

    @property
    def seconds(self) -> float:
        end = self.ended or datetime.now().astimezone()
        return (end - self.started).total_seconds()


class OutageWatch:
    """Decides whether Coupa is down, holds the host gate while it is, and probes until it is up.

    ``spawn`` runs the probe loop in the owner's task group; ``give_up`` is called once when the
    tenant has been unreachable for ``give_up_s``.
    """

    def __init__(
        self,
        gate: HostGate,
        probe: Probe,
        spawn: Callable[[Awaitable[None], str], None],
        give_up: Callable[[str], None],
        *,
        give_up_s: float,
        first_delay_s: float = FIRST_PROBE_DELAY_S,
        max_delay_s: float = MAX_PROBE_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.gate = gate
        self.probe = probe
        self.spawn = spawn
        self.give_up = give_up
        self.give_up_s = give_up_s
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.clock = clock
        self.sleep = sleep
        self.outages: list[Outage] = []
        self.next_probe_at: float | None = None  # loop time of the next probe while down
        self._down_since: float | None = None
        self._checking: asyncio.Future[bool | None] | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    @property
    def unreachable_since(self) -> datetime | None:
        return self.outages[-1].started if self.down and self.outages else None

    @property
    def next_probe_in_s(self) -> float | None:
        if not self.down or self.next_probe_at is None:
            return None
        return max(0.0, self.next_probe_at - asyncio.get_running_loop().time())

    async def confirm(self, failure: str) -> bool:
        """After a request got no answer: True when Coupa is down (now or just found to be)."""
        while True:
            if self.down:
                return True
            if self._checking is None:
                break
            # One probe answers every worker that failed meanwhile; None: it was interrupted.
            answer = await asyncio.shield(self._checking)
            if answer is not None:
                return answer
        checking = self._checking = asyncio.get_running_loop().create_future()
        try:
            reason = await self.probe()
            if reason is not None:
                self._go_down(f"{failure}; a check of the tenant failed too: {reason}")
            checking.set_result(reason is not None)
            return reason is not None
        except Exception as exc:
            checking.set_exception(exc)
            checking.exception()  # retrieved: waiters re-raise it themselves
            raise
        except BaseException:  # cancelled: the waiters check again themselves
            checking.set_result(None)
            raise
        finally:
            self._checking = None

    def _go_down(self, reason: str) -> None:
        self._down_since = self.clock()
        started = datetime.now().astimezone()
        self.outages.append(Outage(started, None, 1, reason))
        self.gate.close("outage")
        self.next_probe_at = asyncio.get_running_loop().time() + self.first_delay_s
        log.warning(
            "coupa_unreachable",
            since=started.strftime("%H:%M:%S"),
            next_try_s=round(self.first_delay_s),
            reason=reason,
        )
        self.spawn(self._probe_until_up(), "outage-probe")

    async def _probe_until_up(self) -> None:
        delay = self.first_delay_s
        while self._down_since is not None:
            await self.sleep(delay)
            down_for = self.clock() - self._down_since
            if down_for >= self.give_up_s:
                self.next_probe_at = None
                self.give_up(
                    f"Coupa has been unreachable since {self._since_text()} "
                    f"({down_for / 60:.0f} min)"
                )
                return
            reason = await self.probe()
            self._count_probe()
            if reason is None:
                self._go_up()
                return
            delay = min(delay * 2, self.max_delay_s)
            self.next_probe_at = asyncio.get_running_loop().time() + delay
            log.debug("coupa_still_unreachable", since=self._since_text(), next_try_s=delay)

    def _count_probe(self) -> None:
        last = self.outages[-1]
        self.outages[-1] = Outage(last.started, last.ended, last.probes + 1, last.reason)

    def _go_up(self) -> None:
        last = self.outages[-1]
        ended = datetime.now().astimezone()
        self.outages[-1] = Outage(last.started, ended, last.probes, last.reason)
        self._down_since = None
        self.next_probe_at = None
        self.gate.open("outage")
        log.warning(
            "coupa_reachable",
            since=self._format(last.started),
            down_s=round((ended - last.started).total_seconds(), 1),
            probes=last.probes,
        )

    def _since_text(self) -> str:
        return self._format(self.outages[-1].started) if self.outages else "?"

    @staticmethod
    def _format(moment: datetime) -> str:
        return moment.strftime("%H:%M:%S")


def http_probe(http: aiohttp.ClientSession, url: str, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """A probe: one light request to ``url``, past the gate; None when it answers, else why not."""

    async def probe() -> str | None:
        try:
            with anyio.fail_after(timeout_s):
                async with http.get(url, allow_redirects=False) as response:
                    if response.status in OUTAGE_STATUSES:
                        return f"HTTP {response.status}"
                    return None
        except TimeoutError:
            return f"no answer within {timeout_s:.0f} s"
        except (aiohttp.ClientError, OSError) as exc:
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    return probe
