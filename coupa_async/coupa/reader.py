"""Open a Coupa page and read it, by rendering it or by fetching its HTML (the discovery modes).

``render`` navigates the worker's page and reads the live DOM only once it has settled (see
``settle``), whatever it showed at first look: lists arrive by script, in parts, in every area
(header, lines, comments), so neither an empty list nor a partial one is read as the whole.
``fast`` fetches the HTML over plain HTTP with the context's cookies and parses it without
rendering, many times cheaper; it is trusted only where it shows attachments: an empty fast
reading is always rendered. ``auto`` compares fast readings with settled renders on the run's
first pages; once they agree, and the renders showed no data requests of the tenant feeding the
page after load, it goes fast. Fast keeps proving itself: every ``verify_every``-th fast reading
is rendered too, and any render that finds attachments a fast reading of the same page missed,
or that was fed after load, turns fast off for the rest of the run. A page is taken from the
worker only when one is rendered.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout
from selectolax.lexbor import LexborHTMLParser

from coupa_async.coupa.bounded import BodyLimits
from coupa_async.coupa.discover import PageFacts, read_page
from coupa_async.coupa.document_meter import DocumentMeter
from coupa_async.coupa.http import DEFAULT_PAGE_LIMITS, CoupaHttp
from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import (
    DEFAULT_RETRY_AFTER_S,
    PageKind,
    PageVerdict,
    classify,
    parse_html,
    retry_after_seconds,
)
from coupa_async.coupa.settle import (
    PageActivity,
    SettleRules,
    activity_of,
    wait_until_settled,
)
from coupa_async.engine.actions import is_browser_fault
from coupa_async.errors import (
    BrowserFaultError,
    HostUnreachableError,
    RateLimitedError,
    TransientError,
)
from coupa_async.log import get_logger
from coupa_async.session.gate import HostGate
from coupa_async.session.outage import is_network_failure

log = get_logger(__name__)

Mode = Literal["auto", "render", "fast"]

# Told what a reading is doing now ("rendering the PO page"), for the worker's progress line.
Doing = Callable[[str], None]


def untold(activity: str) -> None:
    """A Doing for callers that show no progress."""


# Told a rendered page's first look (not yet settled), to start on what it shows already.
FirstLook = Callable[["PageRead"], Awaitable[None]]


class PageSource(Protocol):
    """Where the reader gets a page to render in, only when it renders (see job.PageLender)."""

    async def page(self) -> Page: ...


@dataclass(frozen=True, slots=True)
class PageRead:
    """A page as read: its final URL, what kind of page it is, and what it shows."""

    url: str
    verdict: PageVerdict
    facts: PageFacts | None
    how: Literal["render", "fast"]
    # Rendered and waited for until quiet: only such a reading may show that nothing is there.
    settled: bool = False
    # The tenant's data requests that fed the page's attachment areas after load (settle).
    fed_by: tuple[str, ...] = ()

    @property
    def proves_absence(self) -> bool:
        """Whether an empty attachment list on this reading is evidence of no attachments."""
        return self.how == "render" and self.settled


class PageReader:
    """Reads pages for every worker of one run; holds what ``auto`` learned (one loop, no lock)."""

    def __init__(
        self,
        markers: CoupaMarkers,
        mode: Mode = "auto",
        *,
        navigation_timeout_s: float = 30.0,
        settle_s: float = 5.0,
        checks_needed: int = 3,
        verify_every: int = 50,
        gate: HostGate | None = None,
        file_hosts: tuple[str, ...] = (),
        page_limits: BodyLimits = DEFAULT_PAGE_LIMITS,
    ) -> None:
        self.markers = markers
        self.page_limits = page_limits
        self.file_hosts = file_hosts
        self.gate = gate
        self.mode = mode
        self.navigation_timeout_s = navigation_timeout_s
        self.rules = SettleRules(bound_s=settle_s)
        self.checks_needed = checks_needed
        self.verify_every = max(1, verify_every)
        self.checks_passed = 0
        self.fast_trusted = mode == "fast"
        self.fast_refused = mode == "render"
        self.counts = {"render": 0, "fast": 0, "settled": 0, "verified": 0}
        self._fast_since_check = 0
        self._unverified_told = False

    @property
    def state(self) -> str:
        if self.fast_refused:
            return "render"
        return "fast" if self.fast_trusted else "checking"

    async def read(
        self,
        pages: PageSource,
        http: CoupaHttp,
        url: str,
        *,
        doing: Doing = untold,
        what: str = "page",
        first_look: FirstLook | None = None,
    ) -> PageRead:
        """Open ``url`` and read it, in the cheapest way that gives the same answer.

        A page is taken from ``pages`` only when the reading renders. Each step is told to
        ``doing``, naming the page ``what`` ("reading the PO page", "rendering the PO page").
        A rendering's first look is told to ``first_look`` while the page settles.
        """
        if self.fast_refused:
            return await self._open_and_render(pages, url, doing, what, first_look)
        doing(f"reading the {what}")
        quick = await self.fetch(http, url)
        if quick.verdict.kind is not PageKind.ORDINARY:
            return quick
        facts = quick.facts
        assert facts is not None
        if facts.filled_by_script or facts.has_click_only or not facts.attachments:
            rendered = await self._open_and_render(pages, url, doing, what, first_look)
            self._check_nothing_missed(quick, rendered)
            return rendered
        if self.fast_trusted and not self._check_due():
            return quick
        rendered = await self._open_and_render(pages, url, doing, what, first_look)
        self._compare(quick, rendered)
        return rendered

    async def _open_and_render(
        self, pages: PageSource, url: str, doing: Doing, what: str, first_look: FirstLook | None
    ) -> PageRead:
        page = await self._page(pages, url, doing, what)
        return await self.render(page, url, doing=doing, what=what, first_look=first_look)

    async def _page(self, pages: PageSource, url: str, doing: Doing, what: str) -> Page:
        doing(f"rendering the {what}")  # opening the page is part of rendering it
        with self._playwright_errors(url, "open a page for"):
            return await pages.page()

    def note_unverified(self, url: str) -> None:
        """A page that shows no number we recognise: said once per run, how to teach it."""
        if not self._unverified_told:
            self._unverified_told = True
            log.warning(
                "identity_unverified",
                url=url,
                reason="the page shows no PO number we recognise in its headings or title; "
                "add its wording to markers.po_identity_patterns so each page is checked",
            )

    def _check_due(self) -> bool:
        """Every ``verify_every``-th trusted fast reading is checked against a settled render."""
        self._fast_since_check += 1
        if self._fast_since_check < self.verify_every:
            return False
        self._fast_since_check = 0
        self.counts["verified"] += 1
        return True

    def _refuse_fast(self, reason: str, url: str) -> None:
        if not self.fast_refused:
            self.fast_refused = True
            self.fast_trusted = False
            log.warning(
                "discovery_mode",
                mode="render",
                reason=f"{reason}; every page is rendered for the rest of the run",
                url=url,
            )

    def _check_nothing_missed(self, quick: PageRead, rendered: PageRead) -> None:
        """A render that finds attachments a fast reading missed, with no sign of loading in the
        HTML: the tenant fills pages by script and fast readings cannot be trusted."""
        fast_facts, live_facts = quick.facts, rendered.facts
        if fast_facts is None or live_facts is None:
            return
        if rendered.fed_by and not self.fast_refused:
            self._refuse_fast(
                "the page's attachment areas were filled by its data requests after load "
                f"({rendered.fed_by[0]})",
                quick.url,
            )
            return
        if fast_facts.filled_by_script:
            return
        missed = live_facts.attachment_keys - fast_facts.attachment_keys
        if missed:
            self._refuse_fast(
                f"the page's HTML lacked {len(missed)} attachment(s) that its rendering showed",
                quick.url,
            )

    def _compare(self, quick: PageRead, rendered: PageRead) -> None:
        if rendered.verdict.kind is not PageKind.ORDINARY or rendered.facts is None:
            return
        fast_facts, live_facts = quick.facts, rendered.facts
        assert fast_facts is not None
        same = (
            fast_facts.supplier == live_facts.supplier
            and fast_facts.attachment_keys == live_facts.attachment_keys
            and fast_facts.requisition_url == live_facts.requisition_url
        )
        if not same:
            self._refuse_fast("a fast reading differed from the settled rendering", quick.url)
            return
        if rendered.fed_by:
            self._refuse_fast(
                "the page's attachment areas were filled by its data requests after load "
                f"({rendered.fed_by[0]})",
                quick.url,
            )
            return
        self.checks_passed += 1
        if self.checks_passed >= self.checks_needed and not self.fast_trusted:
            self.fast_trusted = True
            log.info("discovery_mode", mode="fast", reason=f"{self.checks_passed} pages agreed")

    async def fetch(self, http: CoupaHttp, url: str) -> PageRead:
        """Fetch the page's HTML without rendering (plain HTTP, the context's cookies), read it."""
        with self._playwright_errors(url, "fetch"):  # the cookie lookup goes to the browser
            answer = await http.get_page(url, self.navigation_timeout_s, gate=self.gate)
        self._hold_host_on_429(answer.status, answer.retry_after)
        self.counts["fast"] += 1
        return self._read(
            answer.status, answer.url, parse_html(answer.html), answer.retry_after, "fast"
        )

    async def render(
        self,
        page: Page,
        url: str,
        *,
        settle: bool = True,
        doing: Doing = untold,
        what: str = "page",
        first_look: FirstLook | None = None,
    ) -> PageRead:
        """Navigate the worker's page to ``url`` and read the live DOM once it has settled.

        ``settle=False`` reads the first look: only to find an element again (a click-only
        file on a page already read whole), never to conclude what a page holds. Rendering
        and waiting for the page to settle are told to ``doing`` (see ``read``).
        """
        doing(f"rendering the {what}")
        if self.gate is not None:
            await self.gate.wait()
        started = time.monotonic()
        activity = activity_of(page, self.markers)
        with self._playwright_errors(url, "open"):
            activity.new_document(url)
            async with DocumentMeter(page, self.page_limits) as meter:
                response = await meter.guard(
                    page.goto(
                        url, wait_until="domcontentloaded", timeout=self.navigation_timeout_s * 1000
                    ),
                    url,
                )
            status = response.status if response is not None else 200
            retry_after = response.headers.get("retry-after") if response else None
            self._hold_host_on_429(status, retry_after)
            read = self._read(status, page.url, parse_html(await page.content()), retry_after)
            facts = read.facts
            failures: tuple[str, ...] = ()
            if facts is not None and settle:
                if first_look is not None and facts.attachments:
                    await first_look(read)
                doing(f"waiting for the {what} to settle")
                settled = await wait_until_settled(page, activity, self.markers, self.rules)
                failures = settled.failures
                read = self._read(
                    status,
                    page.url,
                    parse_html(await page.content()),
                    retry_after,
                    settled=True,
                    fed_by=settled.fed_by,
                )
                self.counts["settled"] += 1
            read = self._unless_data_met_login(read, activity)
            if failures and read.verdict.kind is PageKind.ORDINARY:
                if any("answered HTTP 429" in failure for failure in failures):
                    # The tenant asked to wait: the page is read again after the pause, and
                    # the PO is not charged for the host's limit.
                    raise RateLimitedError(
                        f"the page's own data answered HTTP 429 ({failures[0]}): {url}",
                        self._pause_left() or DEFAULT_RETRY_AFTER_S,
                        url=url,
                    )
                raise TransientError(
                    "the page's own loading failed, so its attachment list cannot be "
                    f"trusted ({'; '.join(failures)}): {url}"
                )
        self.counts["render"] += 1
        log.debug(
            "page_rendered",
            url=url,
            settled=read.settled,
            ms=round((time.monotonic() - started) * 1000),
        )
        return read

    def _pause_left(self) -> float:
        return self.gate.remaining_pause_s if self.gate is not None else 0.0

    async def current_html(self, page: Page) -> tuple[str, str]:
        """The page's live DOM as it is now, and its address (after it settled on its own)."""
        with self._playwright_errors(page.url, "read"):
            return await page.content(), page.url

    def classify(self, status: int, url: str, tree: LexborHTMLParser) -> PageVerdict:
        """What kind of page a live DOM is (see ``pages.classify``)."""
        return classify(status, url, tree, self.markers, None)

    def _unless_data_met_login(self, read: PageRead, activity: PageActivity) -> PageRead:
        """A page whose own data requests ended on a login page shows what an expired session
        left of it: it reads as a login page, never as a page without attachments."""
        login = activity.login_redirect(self.markers)
        if login is None or read.verdict.kind is not PageKind.ORDINARY:
            return read
        verdict = PageVerdict(PageKind.LOGIN, f"the page's data ended on a login page: {login}")
        return PageRead(read.url, verdict, None, read.how, read.settled, read.fed_by)

    @contextlib.contextmanager
    def _playwright_errors(self, url: str, action: str) -> Iterator[None]:
        """Playwright's errors as the engine's: browser faults, or transient for timeouts and
        network errors."""
        try:
            yield
        except PlaywrightTimeout as exc:
            raise HostUnreachableError(
                f"no answer within {self.navigation_timeout_s:.0f} s: {url}"
            ) from exc
        except PlaywrightError as exc:
            first_line = str(exc).splitlines()[0]  # never the call log: it holds the cookies
            if is_browser_fault(exc):
                raise BrowserFaultError(first_line) from exc
            if is_network_failure(first_line):
                raise HostUnreachableError(f"cannot {action} {url}: {first_line}") from exc
            raise TransientError(f"cannot {action} {url}: {first_line}") from exc

    def _hold_host_on_429(self, status: int, retry_after: str | None) -> None:
        # Close the gate the moment a 429 is seen, before the page is even read, so the other
        # workers stop sending at once rather than when the error reaches the engine.
        if status == 429 and self.gate is not None:
            self.gate.pause_for(retry_after_seconds(retry_after))

    def _read(
        self,
        status: int,
        final_url: str,
        tree: LexborHTMLParser,
        retry_after: str | None,
        how: Literal["render", "fast"] = "render",
        *,
        settled: bool = False,
        fed_by: tuple[str, ...] = (),
    ) -> PageRead:
        verdict = classify(status, final_url, tree, self.markers, retry_after)
        facts = (
            read_page(tree, final_url, self.markers, self.file_hosts)
            if verdict.kind is PageKind.ORDINARY
            else None
        )
        return PageRead(final_url, verdict, facts, how, settled, fed_by)
