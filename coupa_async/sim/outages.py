"""Outages of the whole tenant: a closed port, reset or hung connections, maintenance and
proxy error pages; started on command or on a schedule, each for a while or until ended.

Modes:

- `refuse`: the listening socket is closed, so connecting is refused; the open connections
  (idle keep-alive ones and those of requests in progress) are closed too. When the outage
  ends the same host:port is bound again (SO_REUSEADDR, so at once).
- `reset`: still listening, but each open connection is reset when the outage begins and
  each request is answered by a TCP reset (SO_LINGER 0, then abort), without an answer.
- `maintenance`: every request gets HTTP 503 and Coupa's maintenance page (a `Retry-After`
  header only when `retry_after` is given).
- `proxy_502` / `proxy_504`: every request gets 502 / 504 and a generic proxy error page, as a
  corporate proxy sends when it cannot reach the tenant.
- `hang`: connections are accepted and requests read, but held without an answer until the
  outage ends; then they are answered normally (a client that gave up earlier is gone, its
  request is dropped). Answers already under way when it begins go on.

The simulator's own `/__sim/*` endpoints answer in every mode except `refuse` (whose port is
closed); `SimConfig.control_port` serves them on a second port no outage touches.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, get_args

from .stats import OutageRecord, Stats

OutageMode = Literal["refuse", "reset", "maintenance", "proxy_502", "proxy_504", "hang"]
OUTAGE_MODES: tuple[str, ...] = get_args(OutageMode)
DROPPING_MODES: frozenset[str] = frozenset({"refuse", "reset"})
"""Modes that close the open connections when they begin."""
ANSWER_STATUS: dict[str, int] = {"maintenance": 503, "proxy_502": 502, "proxy_504": 504}
"""Modes that answer every request, and with which status."""
REBIND_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")
# struct linger {int l_onoff; int l_linger;} (two u_shorts on Windows): on, 0 s = reset on close.
_LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


def check_outage(mode: str, seconds: float | None, retry_after: float | None = None) -> None:
    """Raise ValueError unless these describe a valid outage."""
    if mode not in OUTAGE_MODES:
        raise ValueError(f"unknown outage mode {mode!r}; choose from {', '.join(OUTAGE_MODES)}")
    if seconds is not None and not seconds > 0:
        raise ValueError("outage seconds must be > 0 (or None: until ended)")
    if retry_after is not None and retry_after < 0:
        raise ValueError("retry_after must be >= 0")


@dataclass(frozen=True)
class Outage:
    """A scheduled outage (`SimConfig.outages`). Give exactly one start:

    - `after_s`: seconds after the first PO page request was answered (the run's start as
      the tenant sees it, whatever the client's start-up and sign-in took; 0 = right after
      that first answer);
    - `after_requests`: right after the N-th PO page request was answered (the N-th gets its
      answer, the next meets the outage). PO page requests are counted from the simulator's
      start; requests turned away by an outage are not counted.

    It lasts `seconds` (None: until ended on command). An outage that comes due while another
    one runs starts when that one ends.
    """

    after_s: float | None = None
    seconds: float | None = None
    mode: OutageMode = "refuse"
    after_requests: int | None = None
    retry_after: float | None = None  # maintenance and proxy pages: the Retry-After header

    def __post_init__(self) -> None:
        check_outage(self.mode, self.seconds, self.retry_after)
        if (self.after_s is None) == (self.after_requests is None):
            raise ValueError("an Outage needs exactly one of after_s and after_requests")
        if self.after_s is not None and self.after_s < 0:
            raise ValueError("after_s must be >= 0")
        if self.after_requests is not None and self.after_requests < 1:
            raise ValueError("after_requests must be >= 1")

    def describe(self) -> str:
        start = (
            f"after {self.after_requests} PO page(s)"
            if self.after_requests is not None
            else f"{self.after_s:g} s after the first PO page"
        )
        length = f"for {self.seconds:g} s" if self.seconds is not None else "until ended"
        return f"{self.mode} {start}, {length}"


class Network(Protocol):
    """What an outage does to the simulator's listening sockets and connections."""

    async def close_listeners(self) -> None: ...

    async def reopen_listeners(self) -> None: ...

    def drop_connections(self, reset: bool, keep: asyncio.BaseTransport | None) -> int: ...


def abort_transport(transport: asyncio.BaseTransport, reset: bool) -> None:
    """Close a connection at once, without flushing; with `reset`, by a TCP reset (RST)."""
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()


@dataclass(eq=False)
class ActiveOutage:
    """The outage in progress."""

    mode: str
    seconds: float | None
    retry_after: float | None
    record: OutageRecord
    over: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.Task[None] | None = None

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - self.record.seconds)

    def to_json(self) -> dict[str, Any]:
        remaining = self.remaining()
        return {
            "mode": self.mode,
            "seconds": self.seconds,
            "remaining": None if remaining is None else round(remaining, 3),
            "retry_after": self.retry_after,
            "started": self.record.started,
            "requests_during": self.record.requests,
        }


class OutageController:
    """Starts and ends outages; one at a time.

    Every change runs in a task of its own (shielded from the caller's cancellation, so a
    client that goes away cannot leave the port half bound); `shutdown()` waits for them.
    """

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._network: Network | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sleepers: set[asyncio.Task[Any]] = set()  # waiting only: cancelled on shutdown
        self._pending: list[Outage] = []
        self._queue: deque[Outage] = deque()
        self._closing = True
        self.active: ActiveOutage | None = None
        self.po_pages = 0

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, network: Network, schedule: Sequence[Outage]) -> None:
        """Arm the schedule; called when the simulator starts serving."""
        self._network = network
        self._lock = asyncio.Lock()
        self._pending = list(schedule)
        self._queue.clear()
        self._closing = False
        self.active = None
        self.po_pages = 0

    async def shutdown(self) -> None:
        """Cancel the timers, let a change in progress finish, end the running outage (the
        port is not bound again); called when the simulator stops."""
        self._closing = True
        while self._tasks:
            for task in list(self._sleepers):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queue.clear()
        self._pending.clear()
        active, self.active = self.active, None
        if active is not None:
            active.record.finish()
            active.over.set()

    @property
    def running(self) -> bool:
        return not self._closing

    # --- commands -----------------------------------------------------------------------------

    async def begin(
        self,
        mode: str,
        seconds: float | None = None,
        retry_after: float | None = None,
        *,
        trigger: str = "api",
        keep: asyncio.BaseTransport | None = None,
    ) -> ActiveOutage:
        """Start an outage now, ending the running one first. `keep`: a connection to leave
        open (the one asking; the caller closes it after its answer)."""
        check_outage(mode, seconds, retry_after)
        return await self._run(self._begin(mode, seconds, retry_after, trigger, keep))

    async def end(self) -> bool:
        """End the running outage now; False when there was none."""
        return await self._run(self._end(None))

    def po_page_answered(self) -> list[Outage]:
        """Count a PO page request answered outside an outage; returns the outages now due
        (and starts the clocks of the timed ones at the first)."""
        if self._closing:
            return []
        self.po_pages += 1
        due = [o for o in self._pending if o.after_requests == self.po_pages]
        if self.po_pages == 1:
            for outage in self._pending:
                if outage.after_s == 0:
                    due.append(outage)
                elif outage.after_s is not None:
                    self._spawn(self._timed(outage), sleeper=True)
        for outage in due:
            self._pending.remove(outage)
        return due

    async def begin_due(
        self, due: Sequence[Outage], keep: asyncio.BaseTransport | None = None
    ) -> ActiveOutage | None:
        """Start the first due outage (queue the rest); returns it, or None when it waits."""
        return await self._run(self._begin_due(due, keep))

    def describe(self) -> dict[str, Any]:
        """The state served at `/__sim/outage`."""
        return {
            "active": self.active.to_json() if self.active is not None else None,
            "po_pages": self.po_pages,
            "scheduled": [o.describe() for o in self._pending],
            "queued": [o.describe() for o in self._queue],
        }

    # --- internals ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, T], sleeper: bool = False) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_retrieve)
        if sleeper:
            self._sleepers.add(task)
            task.add_done_callback(self._sleepers.discard)
        return task

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closing:
            coro.close()
            raise RuntimeError("the simulator is not running")
        return await asyncio.shield(self._spawn(coro))

    def _not_cancellable(self) -> None:
        """The current task leaves the sleepers: from here on it changes state, so shutdown
        waits for it instead of cancelling it."""
        task = asyncio.current_task()
        if task is not None:
            self._sleepers.discard(task)

    def _locked(self) -> asyncio.Lock:
        assert self._lock is not None, "start() first"
        return self._lock

    async def _begin(
        self,
        mode: str,
        seconds: float | None,
        retry_after: float | None,
        trigger: str,
        keep: asyncio.BaseTransport | None,
    ) -> ActiveOutage:
        async with self._locked():
            if self._closing:
                raise RuntimeError("the simulator is not running")
            current = self.active
            both_refuse = current is not None and current.mode == "refuse" and mode == "refuse"
            if current is not None:
                await self._finish(current, reopen=not both_refuse)
            return await self._open(
                mode, seconds, retry_after, trigger, keep, listening=not both_refuse
            )

    async def _begin_due(
        self, due: Sequence[Outage], keep: asyncio.BaseTransport | None
    ) -> ActiveOutage | None:
        async with self._locked():
            begun = None
            for outage in due:
                if self._closing:
                    break
                if self.active is None:
                    begun = await self._open_scheduled(outage, keep)
                else:
                    self._queue.append(outage)
            return begun

    async def _timed(self, outage: Outage) -> None:
        assert outage.after_s is not None
        await asyncio.sleep(outage.after_s)
        self._not_cancellable()
        async with self._locked():
            if self._closing:
                return
            if self.active is None:
                await self._open_scheduled(outage, None)
            else:
                self._queue.append(outage)

    async def _open_scheduled(
        self, outage: Outage, keep: asyncio.BaseTransport | None
    ) -> ActiveOutage:
        return await self._open(
            outage.mode, outage.seconds, outage.retry_after, "schedule", keep, listening=True
        )

    async def _open(
        self,
        mode: str,
        seconds: float | None,
        retry_after: float | None,
        trigger: str,
        keep: asyncio.BaseTransport | None,
        listening: bool,
    ) -> ActiveOutage:
        """Start an outage (the lock is held and none is running)."""
        network = self._network
        assert network is not None
        record = OutageRecord(mode, trigger, time.time(), seconds, retry_after)
        active = ActiveOutage(mode, seconds, retry_after, record)
        self.active = active
        self._stats.outages.append(record)
        if mode == "refuse" and listening:
            await network.close_listeners()
        if mode in DROPPING_MODES:
            record.connections_dropped = network.drop_connections(mode == "reset", keep)
        if seconds is not None and not self._closing:
            active.timer = self._spawn(self._end_later(active, seconds), sleeper=True)
        return active

    async def _end_later(self, active: ActiveOutage, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._not_cancellable()
        await self._end(active)

    async def _end(self, expected: ActiveOutage | None) -> bool:
        async with self._locked():
            active = self.active
            if active is None or (expected is not None and active is not expected):
                return False
            await self._finish(active, reopen=True)
            while self._queue and self.active is None and not self._closing:
                await self._open_scheduled(self._queue.popleft(), None)
            return True

    async def _finish(self, active: ActiveOutage, reopen: bool) -> None:
        """End `active` (the lock is held); a `refuse` outage binds its port again first."""
        timer = active.timer
        if timer is not None and timer is not asyncio.current_task() and timer in self._sleepers:
            timer.cancel()
        if active.mode == "refuse" and reopen and not self._closing:
            try:
                await self._reopen()
            except OSError as exc:
                active.record.error = f"cannot bind the port again: {exc}"
                raise
        self.active = None
        active.record.finish()
        active.over.set()

    async def _reopen(self) -> None:
        """Bind the listening sockets again, retrying a busy port for a few seconds."""
        network = self._network
        assert network is not None
        deadline = time.monotonic() + REBIND_TIMEOUT_SECONDS
        while True:
            try:
                await network.reopen_listeners()
                return
            except OSError:
                if self._closing or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a task's exception seen (the caller that awaited it may have been cancelled)."""
    if not task.cancelled():
        task.exception()
