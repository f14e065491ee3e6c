"""Know when a rendered page has finished filling itself in, before reading it.

Tenants fill attachment lists (header, lines, comments) by script after the page has loaded,
often with no sign of it in the HTML, and in parts. A list is whole, and an empty list evidence
of "no attachments", only once the page has settled: its document has loaded, none of the
requests that can feed it is in flight and none has started or ended for a quiet window, and
the parts of the page where attachments appear have not changed for a while.

What can feed a list is the tenant's own documents, scripts, XHR and fetch requests. What
cannot is left out, so that heavy real pages settle: requests to other hosts (analytics a
company network refuses), images, fonts, styles, beacons, sockets and event streams, a poll
(the same address asked again in the same document), a request whose address names a background
channel (``markers.background_request_markers``), and a request held open for seconds whose
address does not name the page (a long-poll). A page whose own feeding requests or scripts
failed proves nothing: it is retried.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Response

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import is_login_url
from coupa_async.errors import TransientError
from coupa_async.log import get_logger

log = get_logger(__name__)

# Requests that can fill a page; images, fonts, styles, beacons and sockets cannot.
FILLING_REQUESTS = frozenset({"document", "script", "xhr", "fetch"})
# Of those, the ones whose failure means a list may never have arrived.
DATA_REQUESTS = frozenset({"script", "xhr", "fetch"})
# Of those, the ones that bring data (not code): what "the page is fed after load" means.
FEEDING_REQUESTS = frozenset({"xhr", "fetch"})
MAX_FAILURES_KEPT = 5
MAX_FED_KEPT = 5
# How much later than in the page a request's end may reach us (events cross the driver).
EVENT_DELAY_S = 0.25
EVALUATE_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class SettleRules:
    """How long a page must be quiet to count as settled, and how long to wait at most."""

    network_quiet_s: float = 0.5
    dom_quiet_s: float = 0.3
    bound_s: float = 5.0
    poll_s: float = 0.05
    # A request held open this long whose address does not name the page is a long-poll.
    long_request_s: float = 1.5


@dataclass(slots=True)
class Settled:
    """What a page looked like when it settled: attachment elements seen, and what failed."""

    attachments: int
    failures: tuple[str, ...]
    waited_s: float
    # The page's own data requests that ended before its attachment areas last changed: the
    # page is fed by script after load (HTML alone cannot be trusted on such a tenant).
    fed_by: tuple[str, ...] = ()


@dataclass
class PageActivity:
    """The requests in flight and the failures of a page's current document, from its events.

    One per page, attached once and kept for the page's life. ``new_document(url)`` is called
    before each navigation; requests of earlier documents no longer count.
    """

    last_activity: float = field(default_factory=time.monotonic)
    failures: list[str] = field(default_factory=list)
    # Where the document's redirected data requests ended (a login page: the session ended).
    redirected_to: list[str] = field(default_factory=list)
    background_markers: tuple[str, ...] = ()
    _requests: dict[Request, float] = field(default_factory=dict)
    _asked: set[str] = field(default_factory=set)
    _origin: str = ""
    _page_names: tuple[str, ...] = ()
    _fed: list[tuple[float, str]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_finished)
        page.on("requestfailed", self._on_failed)
        page.on("response", self._on_response)
        page.on("pageerror", self._on_page_error)

    def new_document(self, url: str = "") -> None:
        """Forget the previous document: its requests end with it and prove nothing here."""
        self.failures.clear()
        self.redirected_to.clear()
        self.last_activity = time.monotonic()
        self._requests.clear()
        self._asked.clear()
        self._fed.clear()
        parts = urlsplit(url)
        self._origin = f"{parts.scheme}://{parts.netloc}".lower() if parts.netloc else ""
        # What in an address names this page: its path, and its last segment (an id).
        path = parts.path.rstrip("/")
        last = path.rsplit("/", 1)[-1]
        self._page_names = tuple(n for n in (path, last if len(last) >= 3 else "") if n)

    def in_flight(self, rules: SettleRules) -> list[str]:
        """URLs of the current document's requests still loading that may feed it."""
        now = time.monotonic()
        return [
            request.url
            for request, started in self._requests.items()
            if now - started < rules.long_request_s or self._names_page(request.url)
        ]

    def fed_before(self, moment: float) -> tuple[str, ...]:
        """The data requests that ended before ``moment`` (a monotonic time)."""
        return tuple(url for ended, url in self._fed if ended <= moment)[:MAX_FED_KEPT]

    def login_redirect(self, markers: CoupaMarkers) -> str | None:
        """A login page where one of the document's data requests ended, if any."""
        return next((url for url in self.redirected_to if is_login_url(url, markers)), None)

    def quiet_for(self) -> float:
        """Seconds since the last request that may feed the page started or ended."""
        return time.monotonic() - self.last_activity

    def _names_page(self, url: str) -> bool:
        return any(name in url for name in self._page_names)

    def _may_feed(self, request: Request) -> bool:
        """Whether a new request can fill the page (see the module's docstring)."""
        if request.resource_type not in FILLING_REQUESTS:
            return False
        url = request.url
        if self._origin and not url.lower().startswith(self._origin + "/"):
            return request.resource_type == "document" and request.is_navigation_request()
        if self._names_page(url):
            return True  # the page's own data, also when asked in parts
        lowered = url.lower()
        if any(marker in lowered for marker in self.background_markers):
            return False
        if url in self._asked and request.resource_type in FEEDING_REQUESTS:
            return False  # the same address asked again in the same document: a poll
        self._asked.add(url)
        return True

    def _on_request(self, request: Request) -> None:
        if self._may_feed(request):
            self._requests[request] = time.monotonic()
            self.last_activity = time.monotonic()

    def _on_finished(self, request: Request) -> None:
        if self._requests.pop(request, None) is not None:
            self.last_activity = time.monotonic()
            if request.resource_type in FEEDING_REQUESTS:
                self._fed.append((self.last_activity, request.url))

    def _on_failed(self, request: Request) -> None:
        if self._requests.pop(request, None) is None:
            return  # not watched, or of an earlier document
        self.last_activity = time.monotonic()
        failure = request.failure or ""
        # Cancelled (by the page itself, or a navigation), not failed: only the page's own
        # data cancelled says that its list may be missing.
        if "ERR_ABORTED" in failure and not self._names_page(request.url):
            return
        if request.resource_type in DATA_REQUESTS:
            self._note(f"{request.resource_type} {request.url} failed: {failure}")

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


def activity_of(page: Page, markers: CoupaMarkers | None = None) -> PageActivity:
    """The page's activity record, attached on first use."""
    activity = _activities.get(page)
    if activity is None:
        background = tuple(m.lower() for m in markers.background_request_markers) if markers else ()
        activity = _activities[page] = PageActivity(background_markers=background)
        activity.attach(page)
    return activity


# Installs (once per document) an observer that notes the time of the last change in the
# attachment areas (or #main/body when the page has none), then reports what the page shows.
_PROBE = """
([area, attachments, signs, texts]) => {
  const w = window;
  let state = w.__coupaAsyncSettle;
  if (!state || state.doc !== document) {
    const find = () => {
      const found = area ? Array.from(document.querySelectorAll(area)) : [];
      return found.length ? found :
        [document.querySelector('#main') || document.body || document.documentElement];
    };
    state = {doc: document, last: performance.now(), changed: false, targets: find()};
    const inside = (node) => state.targets.some(
      (target) => target.contains(node) || node.contains(target));
    const observer = new MutationObserver((records) => {
      state.targets = find();
      for (const record of records) {
        if (inside(record.target)) {
          state.last = performance.now();
          state.changed = true;
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
    changed: state.changed,
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
    (the engine then replaces it).
    """
    started = time.monotonic()
    deadline = started + rules.bound_s
    args = _selectors(markers)
    while True:
        try:
            # A renderer that stops answering must not hold the worker past the bound.
            answer_within = max(deadline - time.monotonic(), 0.0) + EVALUATE_GRACE_S
            with anyio.fail_after(answer_within):
                probe = await page.evaluate(_PROBE, list(args))
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
            and not activity.in_flight(rules)
            and activity.quiet_for() >= rules.network_quiet_s
        ):
            last_change = now - probe["quietMs"] / 1000
            # The request's end is when its event reached us, after the page could already use
            # its data: a little later than the change it caused, never much.
            fed = activity.fed_before(last_change + EVENT_DELAY_S) if probe.get("changed") else ()
            return Settled(int(probe["attachments"]), tuple(activity.failures), now - started, fed)
        if now >= deadline:
            raise TransientError(_busy_reason(page.url, probe, activity, rules))
        await anyio.sleep(rules.poll_s)


def _busy_reason(
    url: str, probe: dict[str, object] | None, activity: PageActivity, rules: SettleRules
) -> str:
    bound = rules.bound_s
    waiting = activity.in_flight(rules)
    if waiting:
        detail = (
            f"{len(waiting)} request(s) still loading, e.g. {waiting[0]}; if that address is "
            "a background channel of the tenant, add a part of it to "
            "markers.background_request_markers"
        )
    elif probe is not None and probe.get("loading"):
        detail = "it still shows a loading sign"
    elif probe is not None and not probe.get("loaded"):
        detail = "the document never finished loading"
    else:
        detail = "it kept changing"
    return f"the page did not settle within {bound:g} s ({detail}): {url}"
