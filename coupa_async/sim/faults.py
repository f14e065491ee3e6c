"""Fault configuration and injection: latency, server errors, rate limits, hangs, resets, and
the hostile answers of a broken or malicious server (see `HOSTILE_FAULTS`)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

FaultName = Literal[
    "500",
    "503",
    "429",
    "hang",
    "reset",
    "html_instead_of_file",
    "login_redirect",
    "login_page",
    "retry_after",
    "big_body",
    "gzip_bomb",
    "stall",
    "declared_size",
]
# A hostile server's answers, each with its own parameters (`HOSTILE_PARAMS`); served by
# `hostile_answers.py`, on any path, before the handler runs.
HOSTILE_FAULTS: frozenset[str] = frozenset(
    {"login_page", "retry_after", "big_body", "gzip_bomb", "stall", "declared_size"}
)
FAULT_NAMES: frozenset[str] = frozenset(
    {"500", "503", "429", "hang", "reset", "html_instead_of_file", "login_redirect"}
    | HOSTILE_FAULTS
)
# Faults decided before the handler runs; the others alter a file response while it is served.
REQUEST_FAULTS: frozenset[str] = (
    frozenset({"500", "503", "429", "hang", "login_redirect"}) | HOSTILE_FAULTS
)
BODY_FAULTS: frozenset[str] = frozenset({"reset", "html_instead_of_file"})

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
_BODY_PARAMS = frozenset({"content_type", "filename", "number"})
# The parameters each hostile fault takes (anything else is refused at injection).
HOSTILE_PARAMS: dict[str, frozenset[str]] = {
    "login_page": frozenset(),
    "retry_after": frozenset({"value"}),
    "big_body": _BODY_PARAMS | {"size", "declare_length"},
    "gzip_bomb": _BODY_PARAMS | {"size"},
    "stall": _BODY_PARAMS | {"after_bytes", "size"},
    "declared_size": _BODY_PARAMS | {"size"},
}

DEFAULT_FAULT_KINDS: tuple[str, ...] = ("po_page", "pr_page", "page_data", "file")


@dataclass
class Faults:
    """Random faults, all off by default. Mutable while the simulator runs.

    `kinds` names the request kinds the random faults (and the 429 penalty) apply to; the
    simulator's own `/__sim/*` endpoints are never faulted.
    """

    latency_ms: float = 0
    jitter_ms: float = 0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after_seconds: float = 2
    hang_rate: float = 0.0
    hang_seconds: float | None = None
    reset_rate: float = 0.0
    kinds: tuple[str, ...] = field(default=DEFAULT_FAULT_KINDS)
    # Requests arriving this soon after a 429 may have been started before the client could
    # know of it: on a busy 2-core machine a browser was seen to deliver a navigation started
    # before the 429 up to ~0.9 s later. They get 429 too but count as in flight, not as
    # ignoring Retry-After. A client that ignores Retry-After keeps sending through the rest
    # of the window and is counted.
    retry_after_grace_ms: float = 1000

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "hang_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value}")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.retry_after_seconds < 0:
            raise ValueError("Faults latency_ms, jitter_ms and retry_after_seconds must be >= 0")


@dataclass
class Injection:
    """A fault queued for the next `remaining` requests whose path contains `path_contains`
    (`remaining` None: every such request, until cleared)."""

    fault: str
    path_contains: str
    remaining: int | None
    params: dict[str, Any]


@dataclass(frozen=True)
class HostileAnswer:
    """What a hostile URL of the catalog answers: `fault` with `params` (as injected), for
    the first `times` requests (None: always), then its real content."""

    fault: str
    params: tuple[tuple[str, Any], ...] = ()
    times: int | None = None

    def __post_init__(self) -> None:
        check_hostile(self.fault, dict(self.params))
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 (None: always)")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def ends(self) -> bool:
        """Whether the real content is served once the hostile answers are used up."""
        return self.times is not None

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "params": dict(self.params), "times": self.times}


def check_hostile(fault: str, params: dict[str, Any]) -> None:
    """Raise ValueError for an unknown hostile fault, or a parameter it does not take or of
    the wrong kind."""
    known = HOSTILE_PARAMS.get(fault)
    if known is None:
        raise ValueError(f"unknown hostile fault {fault!r}; choose from {sorted(HOSTILE_PARAMS)}")
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"{fault} takes {sorted(known) or 'no parameters'}, not {sorted(unknown)}")
    size = params.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(f"{fault}: size must be a whole number of bytes >= 0, got {size!r}")
    if fault == "retry_after" and not isinstance(params.get("value"), str):
        raise ValueError("retry_after needs value: the raw Retry-After header, a string")
    if fault in ("gzip_bomb", "declared_size") and "size" in params and size is None:
        raise ValueError(f"{fault}: size must be a number of bytes")
    if fault == "big_body" and size is None and params.get("declare_length"):
        raise ValueError("big_body: an endless body (size None) has no length to declare")
    after = params.get("after_bytes", 0)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError(f"stall: after_bytes must be a whole number >= 0, got {after!r}")
    if fault == "stall" and size is not None and size <= after:
        raise ValueError("stall: the declared size must exceed after_bytes")
    for name in ("content_type", "filename", "number"):
        value = params.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{fault}: {name} must be a string")


@dataclass(frozen=True, slots=True)
class Decision:
    """What a fault does to one request."""

    fault: str
    params: dict[str, Any]


class FaultInjector:
    """Decides, reproducibly, which requests get which fault.

    Random draws come from one `random.Random` seeded from the simulator seed, so the same
    sequence of requests meets the same faults.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.rng = random.Random(f"coupa-sim-faults:{seed}")
        self._injections: list[Injection] = []
        self._penalty_until = 0.0
        self._penalty_started = 0.0

    def inject(
        self, fault: str, path_contains: str = "", count: int | None = 1, **params: Any
    ) -> None:
        """Queue `fault` for the next `count` requests whose path+query contains the text
        (`count` None or -1: every one of them, until `clear`)."""
        if fault not in FAULT_NAMES:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(FAULT_NAMES)}")
        if count == -1:
            count = None
        if count is not None and count < 1:
            raise ValueError("count must be >= 1, or -1 / None for always")
        if fault in HOSTILE_FAULTS:
            check_hostile(fault, params)
        self._injections.append(Injection(fault, path_contains, count, dict(params)))

    def clear(self) -> None:
        """Drop pending injections and any rate-limit penalty."""
        self._injections.clear()
        self._penalty_until = 0.0

    @property
    def pending(self) -> list[Injection]:
        """Injections not yet used up."""
        return [i for i in self._injections if i.remaining is None or i.remaining > 0]

    def take(self, path_qs: str, faults: Iterable[str]) -> Decision | None:
        """Use one count of the first pending injection matching the path and fault set."""
        if not self._injections:
            return None
        wanted = frozenset(faults)
        for injection in self._injections:
            if injection.fault in wanted and injection.path_contains in path_qs:
                if injection.remaining is not None:
                    injection.remaining -= 1
                    if injection.remaining <= 0:
                        self._injections.remove(injection)
                return Decision(injection.fault, injection.params)
        return None

    def penalty_remaining(self) -> float:
        """Seconds left of the current Retry-After penalty (0 when none)."""
        if self._penalty_until == 0.0:
            return 0.0
        left = self._penalty_until - time.monotonic()
        if left <= 0:
            self._penalty_until = 0.0
            return 0.0
        return left

    def start_penalty(self, seconds: float) -> None:
        """Refuse further requests with 429 for `seconds`."""
        now = time.monotonic()
        if self._penalty_until <= now:
            self._penalty_started = now
        self._penalty_until = max(self._penalty_until, now + seconds)

    def since_penalty_started(self) -> float:
        """Seconds since the running penalty's first 429 was sent."""
        return time.monotonic() - self._penalty_started

    def delay(self, faults: Faults) -> float:
        """Seconds of latency for one request."""
        if faults.latency_ms <= 0 and faults.jitter_ms <= 0:
            return 0.0
        jitter = self.rng.uniform(0, faults.jitter_ms) if faults.jitter_ms > 0 else 0.0
        return (faults.latency_ms + jitter) / 1000.0

    def roll_request(self, faults: Faults) -> Decision | None:
        """Draw the random request faults: hang, then 429, then 500/503."""
        rng = self.rng
        if faults.hang_rate > 0 and rng.random() < faults.hang_rate:
            return Decision("hang", {"seconds": faults.hang_seconds})
        if faults.rate_limit_rate > 0 and rng.random() < faults.rate_limit_rate:
            return Decision("429", {"retry_after": faults.retry_after_seconds})
        if faults.error_rate > 0 and rng.random() < faults.error_rate:
            return Decision(rng.choice(("500", "503")), {})
        return None

    def roll_reset(self, faults: Faults) -> bool:
        """Draw whether a file download is cut short."""
        return faults.reset_rate > 0 and self.rng.random() < faults.reset_rate


def retry_after_header(seconds: float) -> str:
    """Retry-After as whole seconds (HTTP allows no fractions), at least 1."""
    return str(max(1, math.ceil(seconds)))
