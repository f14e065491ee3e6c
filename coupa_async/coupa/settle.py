"""Know when a rendered page has finished filling itself in, before reading absence from it.

Tenants fill attachment lists by script after the page has loaded, often with no sign of it in
the HTML. An empty list is evidence of "no attachments" only once the page has settled: its
document has loaded, none of its requests (documents, scripts, XHR, fetch) is in flight and none
has been for a quiet window, and the part of the page where attachments appear has not changed
for a while. A page whose own requests or scripts failed proves nothing when it shows nothing.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Response

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import is_login_url
from coupa_async.errors import TransientError
from coupa_async.log import get_logger

log = get_logger("settle")

# Requests that can fill a page; images, fonts, styles, beacons and sockets cannot.
FILLING_REQUESTS = frozenset({"document", "script", "xhr", "fetch"})
# Of those, the ones whose failure means a list may never have arrived.
DATA_REQUESTS = frozenset({"script", "xhr", "fetch"})
MAX_FAILURES_KEPT = 5
EVALUATE_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class SettleRules:
    """How long a page must be quiet to count as settled, and how long to wait at most."""

    network_quiet_s: float = 0.5
    dom_quiet_s: float = 0.3
    bound_s: float = 5.0
    poll_s: float = 0.05


@dataclass(slots=True)
class Settled:
    """What a page looked like when it settled: attachment elements seen, and what failed."""

    attachments: int
    failures: tuple[str, ...]
    waited_s: float


@dataclass
class PageActivity:
    """The requests in flight and the failures of a page's current document, from its events.

    One per page, attached once and kept for the page's life. ``new_document()`` is called before
    each navigation; requests of earlier documents no longer count.
    """

    last_activity: float = field(default_factory=time.monotonic)
    failures: list[str] = field(default_factory=list)
    # Where the document's redirected data requests ended (a login page: the session ended).
    redirected_to: list[str] = field(default_factory=list)
    _requests: set[Request] = field(default_factory=set)

    def attach(self, page: Page) -> None:
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_finished)
        page.on("requestfailed", self._on_failed)
        page.on("response", self._on_response)
        page.on("pageerror", self._on_page_error)

    def new_document(self) -> None:
        """Forget the previous document: its requests end with it and prove nothing here."""
        self.failures.clear()
        self.redirected_to.clear()
        self.last_activity = time.monotonic()
        self._requests.clear()

    @property
    def in_flight(self) -> list[str]:
        """URLs of the current document's requests still loading."""
        return [request.url for request in self._requests]

    def login_redirect(self, markers: CoupaMarkers) -> str | None:
        """A login page where one of the document's data requests ended, if any."""
        return next((url for url in self.redirected_to if is_login_url(url, markers)), None)

    def quiet_for(self) -> float:
        """Seconds since the last request of the page started or ended."""
        return time.monotonic() - self.last_activity

    def _on_request(self, request: Request) -> None:
        if request.resource_type in FILLING_REQUESTS:
            self._requests.add(request)
            self.last_activity = time.monotonic()

    def _on_finished(self, request: Request) -> None:
        if request in self._requests:
            self._requests.discard(request)
            self.last_activity = time.monotonic()

    def _on_failed(self, request: Request) -> None:
        if request not in self._requests:
            return  # not watched, or of an earlier document
        self._requests.discard(request)
        self.last_activity = time.monotonic()
        if request.resource_type in DATA_REQUESTS:
            self._note(f"{request.resource_type} {request.url} failed: {request.failure}")

    def _on_response(self, response: Response) -> None:
        request = response.request
        if request.resource_type not in DATA_REQUESTS or request not in self._requests:
            return
        if response.status >= 400:
            self._note(f"{request.resource_type} {request.url} answered HTTP {response.status}")
        elif response.status < 300 and request.redirected_from is not None:
            self.redirected_to.append(request.url)

    def _on_page_error(self, error: object) -> None:
        message = str(getattr(error, "message", error)).splitlines()[0:1]
        self._note(f"script error: {message[0] if message else 'unknown'}")

    def _note(self, failure: str) -> None:
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(failure)


_activities: weakref.WeakKeyDictionary[Page, PageActivity] = weakref.WeakKeyDictionary()


def activity_of(page: Page) -> PageActivity:
    """The page's activity record, attached on first use."""
    activity = _activities.get(page)
    if activity is None:
        activity = _activities[page] = PageActivity()
        activity.attach(page)
    return activity


# Installs (once per document) an observer that notes the time of the last change in the
# attachment area (or #main/body when the page has none), then reports what the page shows.
_PROBE = """
([area, attachments, signs, texts]) => {
  const w = window;
  let state = w.__coupaAsyncSettle;
  if (!state || state.doc !== document) {
    const find = () => (area && document.querySelector(area)) ||
      document.querySelector('#main') || document.body || document.documentElement;
    state = {doc: document, last: performance.now(), target: find()};
    const observer = new MutationObserver((records) => {
      if (!state.target.isConnected) { state.target = find(); }
      for (const record of records) {
        if (state.target.contains(record.target) || record.target.contains(state.target)) {
          state.last = performance.now();
          return;
        }
      }
    });
    observer.observe(document.documentElement, {
      subtree: true, childList: true, attributes: true, characterData: true,
    });
    w.__coupaAsyncSettle = state;
  }
  const text = signs || texts.length ?
    ((document.body && document.body.innerText) || '').toLowerCase() : '';
  return {
    quietMs: performance.now() - state.last,
    loaded: document.readyState === 'complete',
    attachments: attachments ? document.querySelectorAll(attachments).length : 0,
    loading: !!(signs && document.querySelector(signs)) || texts.some((t) => text.includes(t)),
  };
}
"""


def _selectors(markers: CoupaMarkers) -> tuple[str, str, str, list[str]]:
    area = ", ".join(markers.attachment_area_selectors)
    attachments = ", ".join(
        [*markers.attachment_link_selectors, *markers.attachment_click_selectors]
    )
    signs = ", ".join(markers.script_fill_selectors)
    texts = [text.lower() for text in markers.script_fill_texts]
    return area, attachments, signs, texts


async def wait_until_settled(
    page: Page, activity: PageActivity, markers: CoupaMarkers, rules: SettleRules
) -> Settled:
    """Wait until the page is quiet (network, DOM, no loading sign) and say what it shows.

    Raises TransientError when the page is still busy after ``rules.bound_s``: such a page is
    retried, never read as having no attachments; TimeoutError when the page stops answering
    (the pool then replaces it).
    """
    started = time.monotonic()
    deadline = started + rules.bound_s
    args = _selectors(markers)
    while True:
        try:
            # A renderer that stops answering must not hold the worker past the bound.
            answer_within = max(deadline - time.monotonic(), 0.0) + EVALUATE_GRACE_S
            probe = await asyncio.wait_for(page.evaluate(_PROBE, list(args)), answer_within)
        except TimeoutError as exc:
            raise TimeoutError(f"the page stopped answering while settling: {page.url}") from exc
        except PlaywrightError as exc:
            if "Execution context was destroyed" not in str(exc):
                raise
            probe = None  # the page navigated (a script redirect): watch the new document
        now = time.monotonic()
        if probe is not None and (
            probe["loaded"]
            and not probe["loading"]
            and probe["quietMs"] >= rules.dom_quiet_s * 1000
            and not activity.in_flight
            and activity.quiet_for() >= rules.network_quiet_s
        ):
            return Settled(int(probe["attachments"]), tuple(activity.failures), now - started)
        if now >= deadline:
            raise TransientError(_busy_reason(page.url, probe, activity, rules.bound_s))
        await asyncio.sleep(rules.poll_s)


def _busy_reason(
    url: str, probe: dict[str, object] | None, activity: PageActivity, bound: float
) -> str:
    waiting = activity.in_flight
    if waiting:
        detail = f"{len(waiting)} request(s) still loading, e.g. {waiting[0]}"
    elif probe is not None and probe.get("loading"):
        detail = "it still shows a loading sign"
    elif probe is not None and not probe.get("loaded"):
        detail = "the document never finished loading"
    else:
        detail = "it kept changing"
    return f"the page did not settle within {bound:g} s ({detail}): {url}"
