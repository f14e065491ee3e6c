"""The online audit: re-read chosen POs on the site, in one browser context, and compare.

Signs in as ``run`` does (the saved sign-in, else the configured credentials) but saves nothing:
a fresh sign-in lives in the audit's context only. Every page is rendered and read only once it
has settled, however long that takes up to ``settle_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import anyio
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from coupa_async.audit import DEFAULT_SETTLE_S
from coupa_async.audit.findings import Check, Disagreement, Unchecked
from coupa_async.audit.sight import Sight, disagreements, names_for_rule
from coupa_async.coupa.numbers import InvalidPoNumber, parse_po_number
from coupa_async.coupa.po_steps import needs_requisition, raise_for_session_and_limits
from coupa_async.coupa.reader import PageRead, PageReader
from coupa_async.errors import (
    AuthenticationError,
    BrowserFaultError,
    BrowserLaunchError,
    CoupaAsyncError,
    RateLimitedError,
    SessionExpiredError,
    TransientError,
)
from coupa_async.log import get_logger
from coupa_async.results.journal import PENDING, PoRecord
from coupa_async.results.result import Outcome
from coupa_async.session.chromium import launch_browser, new_context, start_playwright
from coupa_async.session.gate import HostGate
from coupa_async.settings import Settings
from coupa_async.signin.keeper import sign_in_with_settings
from coupa_async.signin.probe import session_is_valid
from coupa_async.signin.saved_state import load_storage_state

log = get_logger(__name__)

ATTEMPTS = 3  # a page that times out or will not settle is tried this often
RATE_LIMIT_WAITS = 5
RETRY_PAUSE_S = 1.0


@dataclass
class OnlineResult:
    disagreements: list[Disagreement] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    checked: int = 0
    stopped: bool = False


def choose(records: dict[str, PoRecord], sample: int, rng: random.Random) -> list[PoRecord]:
    """Every PO settled as NO_ATTACHMENTS, and ``sample`` others picked at random.

    POs that failed before they had a folder claim nothing about the site and are left out.
    """
    claims = sorted(
        (r for r in records.values() if r.state != PENDING and r.folder is not None),
        key=lambda r: r.label,
    )
    empty = [r for r in claims if r.state == Outcome.NO_ATTACHMENTS.value]
    others = [r for r in claims if r.state != Outcome.NO_ATTACHMENTS.value]
    picked = rng.sample(others, min(sample, len(others)))
    return empty + sorted(picked, key=lambda r: r.label)


async def check_online(
    settings: Settings,
    chosen: Sequence[PoRecord],
    *,
    settle_s: float = DEFAULT_SETTLE_S,
    stop: asyncio.Event | None = None,
) -> OnlineResult:
    """Read each chosen PO's pages and compare them with its record.

    A PO whose pages cannot be read after a few tries is listed as unchecked; when the browser or
    the sign-in fails, every PO not yet read is.
    """
    result = OnlineResult()
    remaining = list(chosen)
    if not remaining:
        return result
    try:
        async with _signed_in_context(settings) as context:
            eyes = _Eyes(settings, context, settle_s)
            while remaining and not (stop is not None and stop.is_set()):
                record = remaining[0]
                seen = await eyes.look_hard(record)
                remaining.pop(0)
                if isinstance(seen, str):
                    result.unchecked.append(Unchecked(record.label, seen, record.folder))
                    continue
                result.checked += 1
                result.disagreements += [
                    Disagreement(record.label, Check.SITE, said, found, record.folder)
                    for said, found in disagreements(record, seen)
                ]
                log.debug("audit_po_read", po=record.label, done=result.checked, of=len(chosen))
    except CoupaAsyncError as exc:  # no browser, or no sign-in: the rest cannot be checked
        log.warning("audit_online_stopped", reason=str(exc).splitlines()[0])
        result.unchecked += [Unchecked(r.label, str(exc), r.folder) for r in remaining]
        return result
    if remaining:
        result.stopped = True
        reason = "the audit was stopped before it was read"
        result.unchecked += [Unchecked(r.label, reason, r.folder) for r in remaining]
    return result


@contextlib.asynccontextmanager
async def _signed_in_context(settings: Settings) -> AsyncIterator[BrowserContext]:
    """One browser and one context, signed in; both closed on the way out."""
    async with start_playwright() as playwright:
        browser = await launch_browser(playwright, settings)
        try:
            state = await anyio.to_thread.run_sync(load_storage_state, settings.storage_state)
            context = await new_context(browser, settings, state)
            try:
                assert settings.base_url is not None
                if state is None or not await session_is_valid(
                    context, settings.base_url, settings.markers
                ):
                    await _sign_in(context, settings)
                yield context
            finally:
                with contextlib.suppress(Exception), anyio.fail_after(settings.timeouts.close_s):
                    await context.close()
        finally:
            with contextlib.suppress(Exception), anyio.fail_after(settings.timeouts.close_s):
                await browser.close()


async def _sign_in(context: BrowserContext, settings: Settings) -> None:
    if not (settings.username and settings.password):
        raise AuthenticationError(
            "The saved Coupa sign-in no longer works and no COUPA_USERNAME and COUPA_PASSWORD "
            "are set. Run `python -m coupa_async login`, then audit again (or audit --offline)."
        )
    await sign_in_with_settings(context, settings)


class _Eyes:
    """Reads a PO's pages in the audit's one context, one page at a time."""

    def __init__(self, settings: Settings, context: BrowserContext, settle_s: float) -> None:
        self.settings = settings
        self.context = context
        self.page: Page | None = None
        self.reader = PageReader(
            settings.markers,
            "render",
            navigation_timeout_s=settings.timeouts.navigation_s,
            settle_s=settle_s,
            file_hosts=tuple(settings.network.file_hosts),
            gate=HostGate(max_pause_s=settings.limits.retry_after_max_s),
        )

    async def look_hard(self, record: PoRecord) -> Sight | str:
        """What the site shows for ``record``, or why it could not be read."""
        try:
            number = parse_po_number(record.label)
        except InvalidPoNumber as exc:
            return str(exc)
        # Where the run found the PO's page (by search, where its id is not its number).
        url = record.po_url or number.order_url(self.settings.base_url or "")
        failures: list[str] = []
        renewed = False
        waits = 0
        while len(failures) < ATTEMPTS:
            try:
                return await self.look(url, record)
            except SessionExpiredError as exc:
                if renewed:
                    return f"the site keeps showing a login page ({exc})"
                renewed = True
                await _sign_in(self.context, self.settings)
            except RateLimitedError as exc:
                waits += 1
                if waits > RATE_LIMIT_WAITS:
                    return f"the site kept asking to slow down ({exc})"
                # The reader has closed its gate for the Retry-After: the next read waits it out.
            except (TransientError, BrowserFaultError, TimeoutError) as exc:
                failures.append(str(exc))
                if not isinstance(exc, TransientError):  # a dead or stuck page: a fresh one
                    self.page = None
                if len(failures) < ATTEMPTS:
                    await anyio.sleep(RETRY_PAUSE_S * len(failures))
        return f"not readable after {ATTEMPTS} tries: {failures[-1]}"

    async def look(self, url: str, record: PoRecord) -> Sight:
        """The PO page, and the requisition where the job's fallback rule sends it."""
        po = await self._read(url)
        if po.verdict.kind.is_error_page:
            return Sight(po_error=po.verdict.reason or "error page")
        assert po.facts is not None
        refs, link = po.facts.attachments, po.facts.requisition_url
        seen = Sight(
            po_refs=refs,
            requisition_url=link,
            shown_number=po.facts.shown_number,
            po_url=po.url,
        )
        if link is None or not needs_requisition(names_for_rule(refs, record)):
            return seen
        pr = await self._read(link)
        if pr.verdict.kind.is_error_page:
            return replace(seen, followed=True, pr_error=pr.verdict.reason or "error page")
        assert pr.facts is not None
        return replace(seen, followed=True, pr_refs=pr.facts.attachments)

    async def _read(self, url: str) -> PageRead:
        if self.page is None or self.page.is_closed():
            try:
                self.page = await self.context.new_page()
            except PlaywrightError as exc:
                raise BrowserLaunchError(
                    f"The browser stopped during the audit ({str(exc).splitlines()[0]}). "
                    "Run the audit again."
                ) from exc
        # Settle every page, also one that shows attachments at once: more may still come.
        read = await self.reader.render(self.page, url, settle=True)
        raise_for_session_and_limits(read)
        return read
