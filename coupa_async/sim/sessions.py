"""Server-side sessions, CSRF tokens and SSO assertions."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from .config import SimConfig

SESSION_COOKIE = "_coupa_session"
_MAX_TOKENS = 10_000
V = TypeVar("V")


@dataclass(slots=True)
class Session:
    id: str
    created: float
    requests: int = 0


class SessionStore:
    """Sessions that end by age (`session_ttl_seconds`) or use (`session_max_requests`).

    The limits are read from the config on every check, so tests may change them at run time.
    """

    def __init__(self, config: SimConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._csrf: OrderedDict[str, None] = OrderedDict()
        self._assertions: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> str:
        """Start a session; returns its id (the cookie value)."""
        sid = secrets.token_urlsafe(24)
        self._sessions[sid] = Session(sid, self._clock())
        return sid

    def use(self, sid: str | None) -> bool:
        """Count one request against the session; False when it is missing or has expired."""
        if sid is None:
            return False
        session = self._sessions.get(sid)
        if session is None:
            return False
        config = self._config
        ttl = config.session_ttl_seconds
        limit = config.session_max_requests
        if (ttl is not None and self._clock() - session.created >= ttl) or (
            limit is not None and session.requests >= limit
        ):
            del self._sessions[sid]
            return False
        session.requests += 1
        return True

    def drop(self, sid: str | None) -> None:
        if sid is not None:
            self._sessions.pop(sid, None)

    def expire_all(self) -> int:
        """End every session now; returns how many there were."""
        count = len(self._sessions)
        self._sessions.clear()
        return count

    def issue_csrf(self) -> str:
        """A fresh authenticity token for the sign-in form."""
        return _remember(self._csrf, secrets.token_urlsafe(32), None)

    def check_csrf(self, token: str | None) -> bool:
        return token is not None and token in self._csrf

    def issue_assertion(self, relay_state: str) -> str:
        """A one-time token the identity provider hands to the ACS endpoint."""
        return _remember(self._assertions, secrets.token_urlsafe(32), relay_state)

    def redeem_assertion(self, token: str | None) -> bool:
        return token is not None and self._assertions.pop(token, None) is not None


def _remember(store: OrderedDict[str, V], key: str, value: V) -> str:
    store[key] = value
    while len(store) > _MAX_TOKENS:
        store.popitem(last=False)
    return key


def safe_return_to(value: str | None) -> str:
    """`value` when it is a path on this site, else `/` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value
