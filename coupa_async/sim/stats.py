"""Request counters, served as JSON at `/__sim/stats`."""

from __future__ import annotations

import time
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
    "other",
)


class Stats:
    """Counters of one simulator. Requests to `/__sim/*` are not counted."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the in-flight count is live and is kept)."""
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
        self.first_request_at: float | None = None  # wall clock, for start-up benchmarks
        self.last_request_at: float | None = None

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

    def end(self, status: int | None, body_bytes: int) -> None:
        """The request is over (status None: it ended without an answer)."""
        self.in_flight -= 1
        self.bytes_sent += body_bytes
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def fault(self, name: str) -> None:
        self.faults[name] = self.faults.get(name, 0) + 1

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
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
        }
