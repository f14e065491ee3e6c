"""Request counters, served as JSON at `/__sim/stats`."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

REQUEST_KINDS: tuple[str, ...] = (
    "po_page",
    "pr_page",
    "page_data",  # a late list's data: <page>/attachments.json, <page>/attachments_fragment
    "file",
    "login",
    "idp",
    "list",
    "home",
    "asset",  # /assets/*: stylesheet, font, script bundles, images of heavy pages
    "api",  # /api/* and /oauth2/*: the REST API, and the polls and long-poll of heavy pages
    "other",
)


@dataclass(eq=False)
class OutageRecord:
    """One outage: what it was, when, and what reached the simulator meanwhile.

    `requests` counts the requests that reached the application during the outage; a
    `refuse` outage sees none (refused connections never reach the process), a `reset` one
    sees each request it resets. `connections_dropped` counts the open connections closed when
    the outage began (`refuse`, `reset`).
    """

    mode: str
    trigger: str  # "api", "http" or "schedule"
    started: float  # wall clock
    planned_seconds: float | None  # None: until ended on command
    retry_after: float | None = None
    ended: float | None = None  # wall clock; None while it lasts
    requests: int = 0
    connections_dropped: int = 0
    error: str | None = None  # why the port could not be bound again, if it could not
    _started_mono: float = field(default_factory=time.monotonic, init=False, repr=False)
    _ended_mono: float | None = field(default=None, init=False, repr=False)

    def finish(self) -> None:
        """Mark the outage over now."""
        if self.ended is None:
            self.ended = time.time()
            self._ended_mono = time.monotonic()

    @property
    def seconds(self) -> float:
        """How long it lasted (so far, while it lasts)."""
        end = self._ended_mono if self._ended_mono is not None else time.monotonic()
        return end - self._started_mono

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "trigger": self.trigger,
            "started": self.started,
            "ended": self.ended,
            "seconds": round(self.seconds, 3),
            "planned_seconds": self.planned_seconds,
            "retry_after": self.retry_after,
            "requests_during": self.requests,
            "connections_dropped": self.connections_dropped,
            "error": self.error,
        }


class Stats:
    """Counters of one simulator. Requests to `/__sim/*` are not counted."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.hostile_streams_open = 0
        self.outages: list[OutageRecord] = []
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the in-flight and open-stream counts and a running outage are
        live and kept)."""
        self.outages = [record for record in self.outages if record.ended is None]
        self.requests: dict[str, int] = dict.fromkeys(REQUEST_KINDS, 0)
        self.total = 0
        self.peak_concurrency = self.in_flight
        self.logins = 0
        self.login_redirects = 0
        self.rate_limited = 0
        self.requests_during_retry_after = 0
        self.requests_in_flight_at_429 = 0
        self.faults: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.bytes_sent = 0
        self.files_completed = 0
        # Per file (its catalog url_path), the wall-clock times its whole body was sent.
        self.file_completions: dict[str, list[float]] = {}
        self.first_request_at: float | None = None  # wall clock, for start-up benchmarks
        self.last_request_at: float | None = None
        self.requests_by_host: dict[str, int] = {}  # by the request's Host header
        # Per path that answered a hostile `retry_after` 429: how many such answers, and how
        # many requests reached the path from its first one on (that one included).
        self.retry_after_answered: dict[str, int] = {}
        self.retry_after_reached: dict[str, int] = {}
        self.hostile_bytes: dict[str, int] = {}  # body bytes sent, by hostile fault
        # Hostile streams that ended, by how: complete, client_gone, stopped.
        self.hostile_streams_ended: dict[str, int] = {}
        # The REST API: requests its rate limiter let through, the most of them inside any
        # 1-second window, its 429s, and the requests that came while a Retry-After it gave
        # was running (in flight: within the grace after that 429; else: ignoring it).
        self.api_served = 0
        self.api_peak_per_second = 0
        self.api_rate_limited = 0
        self.api_requests_during_retry_after = 0
        self.api_requests_in_flight_at_429 = 0
        self.api_tokens_issued = 0
        self.api_tokens_refused = 0
        self._api_window: deque[float] = deque()

    def begin(self, kind: str) -> None:
        """A request of this kind has arrived."""
        self.requests[kind] += 1
        self.total += 1
        self.last_request_at = time.time()
        if self.first_request_at is None:
            self.first_request_at = self.last_request_at
        self.in_flight += 1
        if self.in_flight > self.peak_concurrency:
            self.peak_concurrency = self.in_flight

    def arrived(self, host: str, path: str) -> None:
        """Where a request went (counted by `begin` already)."""
        self.requests_by_host[host] = self.requests_by_host.get(host, 0) + 1
        if path in self.retry_after_answered:
            self.retry_after_reached[path] += 1

    def retry_after_answer(self, path: str) -> None:
        """A hostile `retry_after` 429 was answered at `path`."""
        if path not in self.retry_after_answered:
            self.retry_after_answered[path] = 0
            self.retry_after_reached[path] = 1  # this request, which arrived before
        self.retry_after_answered[path] += 1

    def hostile_sent(self, fault: str, count: int) -> None:
        """`count` body bytes of a hostile answer were handed over."""
        self.hostile_bytes[fault] = self.hostile_bytes.get(fault, 0) + count
        self.bytes_sent += count

    def stream_opened(self) -> None:
        self.hostile_streams_open += 1

    def stream_closed(self, how: str) -> None:
        """A hostile stream ended: "complete", "client_gone" or "stopped"."""
        self.hostile_streams_open -= 1
        self.hostile_streams_ended[how] = self.hostile_streams_ended.get(how, 0) + 1

    def end(self, status: int | None, body_bytes: int) -> None:
        """The request is over (status None: it ended without an answer)."""
        self.in_flight -= 1
        self.bytes_sent += body_bytes
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def file_completed(self, url_path: str, at: float) -> None:
        """A file's whole body was sent (``at``: wall clock, as its last chunk was handed over)."""
        self.files_completed += 1
        self.file_completions.setdefault(url_path, []).append(at)

    def api_request_served(self, now: float) -> None:
        """The API's rate limiter let a request through at `now` (monotonic seconds)."""
        self.api_served += 1
        window = self._api_window
        while window and window[0] <= now - 1.0:
            window.popleft()
        window.append(now)
        if len(window) > self.api_peak_per_second:
            self.api_peak_per_second = len(window)

    def api_refused(self, during_retry_after: bool | None) -> None:
        """The API answered 429; `during_retry_after`: None for the 429 that starts a
        Retry-After, else whether the request came past the grace of a running one."""
        self.api_rate_limited += 1
        if during_retry_after is True:
            self.api_requests_during_retry_after += 1
        elif during_retry_after is False:
            self.api_requests_in_flight_at_429 += 1

    def fault(self, name: str) -> None:
        self.faults[name] = self.faults.get(name, 0) + 1

    @property
    def outage(self) -> str | None:
        """The mode of the running outage, None when there is none."""
        running = [record.mode for record in self.outages if record.ended is None]
        return running[-1] if running else None

    @property
    def outages_started(self) -> int:
        return len(self.outages)

    @property
    def outage_seconds(self) -> float:
        """Seconds spent in outages (the running one up to now)."""
        return sum(record.seconds for record in self.outages)

    @property
    def requests_during_outages(self) -> int:
        return sum(record.requests for record in self.outages)

    def snapshot(self) -> dict[str, Any]:
        """All counters as a JSON-ready dict."""
        return {
            "requests": dict(self.requests),
            "total": self.total,
            "in_flight": self.in_flight,
            "peak_concurrency": self.peak_concurrency,
            "logins": self.logins,
            "login_redirects": self.login_redirects,
            "rate_limited": self.rate_limited,
            "requests_during_retry_after": self.requests_during_retry_after,
            "requests_in_flight_at_429": self.requests_in_flight_at_429,
            "faults": dict(sorted(self.faults.items())),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "bytes_sent": self.bytes_sent,
            "files_completed": self.files_completed,
            "file_completions": {
                path: list(times) for path, times in self.file_completions.items()
            },
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
            "outage": self.outage,
            "outages_started": self.outages_started,
            "outage_seconds": round(self.outage_seconds, 3),
            "requests_during_outages": self.requests_during_outages,
            "outages": [record.to_json() for record in self.outages],
            "requests_by_host": dict(sorted(self.requests_by_host.items())),
            "retry_after": {
                path: {"answered": answered, "reached": self.retry_after_reached[path]}
                for path, answered in sorted(self.retry_after_answered.items())
            },
            "hostile_bytes": dict(sorted(self.hostile_bytes.items())),
            "hostile_streams_open": self.hostile_streams_open,
            "hostile_streams_ended": dict(sorted(self.hostile_streams_ended.items())),
            "api": {
                "served": self.api_served,
                "peak_per_second": self.api_peak_per_second,
                "rate_limited": self.api_rate_limited,
                "requests_during_retry_after": self.api_requests_during_retry_after,
                "requests_in_flight_at_429": self.api_requests_in_flight_at_429,
                "tokens_issued": self.api_tokens_issued,
                "tokens_refused": self.api_tokens_refused,
            },
        }
