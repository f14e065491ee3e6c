"""Classify what Coupa answered after a navigation or a fetch.

Coupa often answers a missing or forbidden PO with HTTP 200 and an error page, and an expired
session with a login page, so the status code alone says little. The traps: an ordinary page may
carry a ``div.notice`` banner or the word "denied" inside a script; neither is an error.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.errors import (
    HostUnreachableError,
    RateLimitedError,
    SessionExpiredError,
    TransientError,
)
from coupa_async.session.outage import OUTAGE_STATUSES

DEFAULT_RETRY_AFTER_S = 30.0


class PageKind(StrEnum):
    ORDINARY = "ordinary"
    LOGIN = "login"
    NOT_FOUND = "not_found"
    NOT_AUTHORISED = "not_authorised"
    TRANSIENT = "transient"
    HOST_DOWN = "host_down"  # a proxy's 502/504, or Coupa's 503 (maintenance): maybe all down
    RATE_LIMITED = "rate_limited"

    @property
    def is_error_page(self) -> bool:
        return self in (PageKind.NOT_FOUND, PageKind.NOT_AUTHORISED)


@dataclass(frozen=True, slots=True)
class PageVerdict:
    kind: PageKind
    reason: str = ""
    retry_after_s: float = 0.0


def parse_html(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html)


def is_login_url(url: str, markers: CoupaMarkers) -> bool:
    """True for Coupa's login form and the usual identity-provider pages."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.lower()
    if any(marker in host for marker in markers.identity_provider_hosts):
        return True
    return any(marker in path for marker in markers.login_path_markers)


def has_login_form(tree: LexborHTMLParser) -> bool:
    """A form with a password field: Coupa's own login form or an identity provider's."""
    return any(node.css_first("input[type='password' i]") for node in tree.css("form"))


def visible_text(tree: LexborHTMLParser) -> str:
    """The page's text without scripts, styles and templates (where "denied" may hide)."""
    body = tree.body or tree.root
    if body is None:
        return ""
    clone = LexborHTMLParser(body.html or "")
    for node in clone.css("script, style, template, noscript"):
        node.decompose()
    root = clone.body or clone.root
    return " ".join((root.text(separator=" ") if root else "").split())


def retry_after_seconds(value: str | None, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    Whatever the header holds, the answer is a number of seconds >= 0: garbage and ``nan`` give
    the default, a negative or past value 0, ``inf`` or a huge number itself (the gate caps it).
    """
    if not value:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()[:100]
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return DEFAULT_RETRY_AFTER_S if math.isnan(seconds) else max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return DEFAULT_RETRY_AFTER_S
    return max(0.0, when - (time.time() if now is None else now))


def classify(
    status: int,
    url: str,
    tree: LexborHTMLParser | None,
    markers: CoupaMarkers,
    retry_after: str | None = None,
) -> PageVerdict:
    """Say what kind of page this is: ordinary, login, error, transient or rate-limited."""
    if status == 429:
        return PageVerdict(PageKind.RATE_LIMITED, "HTTP 429", retry_after_seconds(retry_after))
    if status in OUTAGE_STATUSES:
        return PageVerdict(PageKind.HOST_DOWN, f"HTTP {status}")
    if status >= 500 or status in (408, 0):
        return PageVerdict(PageKind.TRANSIENT, f"HTTP {status}")
    if is_login_url(url, markers) or (tree is not None and has_login_form(tree)):
        return PageVerdict(PageKind.LOGIN, "login page")
    error = _error_sign(tree, markers) if tree is not None else None
    if status in (401, 403):
        return PageVerdict(PageKind.NOT_AUTHORISED, error or f"HTTP {status}")
    if status >= 400:
        return PageVerdict(PageKind.NOT_FOUND, error or f"HTTP {status}")
    if error is not None:
        lowered = error.lower()
        if any(word in lowered for word in markers.not_authorised_words):
            return PageVerdict(PageKind.NOT_AUTHORISED, error)
        return PageVerdict(PageKind.NOT_FOUND, error)
    return PageVerdict(PageKind.ORDINARY)


def raise_for_verdict(verdict: PageVerdict, url: str, instead_of: str | None = None) -> None:
    """Raise what the engine must handle: a login page, a 429, a 5xx, a host that seems down.

    ``instead_of`` names what was expected in the message of an expired session (default: the
    URL). Other kinds return: they are the caller's to judge.
    """
    kind = verdict.kind
    if kind is PageKind.LOGIN:
        raise SessionExpiredError(f"a login page came back instead of {instead_of or url}")
    if kind is PageKind.RATE_LIMITED:
        raise RateLimitedError(f"HTTP 429 for {url}", verdict.retry_after_s, url=url)
    if kind is PageKind.HOST_DOWN:
        raise HostUnreachableError(f"{verdict.reason} for {url}")
    if kind is PageKind.TRANSIENT:
        raise TransientError(f"{verdict.reason} for {url}")


def _error_sign(tree: LexborHTMLParser, markers: CoupaMarkers) -> str | None:
    for selector in markers.error_selectors:
        node = tree.css_first(selector)
        if node is not None:
            text = " ".join(node.text(separator=" ").split())
            return text or selector
    for heading in tree.css("h1"):
        text = " ".join(heading.text(separator=" ").split())
        if any(word.lower() in text.lower() for word in markers.error_heading_words):
            return text
    text = visible_text(tree).lower()
    for phrase in markers.error_texts:
        if phrase.lower() in text:
            return phrase
    return None
