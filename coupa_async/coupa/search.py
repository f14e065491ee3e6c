"""Find a PO's page by its number as a person would: the PO list's search box.

The page at ``/order_headers/{number}`` is the PO whose internal id is that number, which need
not be the PO numbered so. When it is not (Coupa's not-found page, or another PO), the PO list's
search box is filled with the number and submitted, and the result whose number matches exactly
is the PO's page. Searches match parts of numbers, so a result is taken only on an exact match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout
from selectolax.lexbor import LexborHTMLParser

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import PageKind, raise_for_verdict
from coupa_async.coupa.reader import Doing, PageReader, untold
from coupa_async.coupa.settle import activity_of, wait_until_settled
from coupa_async.errors import TransientError

# A script-driven search (no form to submit) must start a request within this.
SCRIPT_SEARCH_START_S = 2.0
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The PO page found for a number, or None with what the search showed instead."""

    url: str | None
    detail: str


def list_url(base_url: str) -> str:
    """The PO list, where the search box is."""
    return f"{base_url.rstrip('/')}/order_headers"


async def search_po(
    page: Page, reader: PageReader, base_url: str, digits: str, *, doing: Doing = untold
) -> SearchResult:
    """Search the PO list for ``digits``; the exact match's page address, if any.

    Raises what a page read raises (session expired, 429, host down) and TransientError when
    the list or its results do not load.
    """
    markers = reader.markers
    address = list_url(base_url)
    listing = await reader.render(page, address, doing=doing, what="PO list")
    raise_for_verdict(listing.verdict, listing.url)
    if listing.verdict.kind is not PageKind.ORDINARY:
        return SearchResult(None, f"the PO list could not be opened ({listing.verdict.reason})")
    box = await _search_box(page, markers)
    if box is None:
        return SearchResult(None, f"the PO list at {address} has no search box")
    doing("searching the PO list")
    activity = activity_of(page, markers)
    try:
        await box.fill(digits, timeout=reader.navigation_timeout_s * 1000)
        in_form = await box.evaluate("(el) => !!(el.form && el.form.getAttribute('action'))")
        if in_form:
            activity.new_document(address)
            async with page.expect_navigation(
                wait_until="domcontentloaded", timeout=reader.navigation_timeout_s * 1000
            ):
                await box.press("Enter")
        else:
            await _press_and_wait_for_a_request(page, box)
    except PlaywrightTimeout as exc:
        raise TransientError(f"the PO list's search did not answer: {address}") from exc
    except PlaywrightError as exc:
        raise TransientError(
            f"cannot search the PO list: {str(exc).splitlines()[0]}: {address}"
        ) from exc
    await wait_until_settled(page, activity, markers, reader.rules)
    html, url = await reader.current_html(page)
    tree = LexborHTMLParser(html)
    raise_for_verdict(reader.classify(200, url, tree), url)
    return exact_match(tree, url, digits, markers)


async def _search_box(page: Page, markers: CoupaMarkers) -> Locator | None:
    for selector in markers.po_search_input_selectors:
        box = page.locator(selector).first
        try:
            if await box.count() and await box.is_visible():
                return box
        except PlaywrightError:
            continue
    return None


async def _press_and_wait_for_a_request(page: Page, box: Locator) -> None:
    """Submit a search that has no form: its script asks for the results (or filters the
    list in the page, asking nothing)."""
    try:
        async with page.expect_request(
            lambda request: request.resource_type in ("xhr", "fetch", "document"),
            timeout=SCRIPT_SEARCH_START_S * 1000,
        ):
            await box.press("Enter")
    except PlaywrightTimeout:
        pass


def exact_match(
    tree: LexborHTMLParser, page_url: str, digits: str, markers: CoupaMarkers
) -> SearchResult:
    """The result link whose text is exactly the number (``15262984``, ``PO #15262984``)."""
    wanted = digits.lstrip("0") or "0"
    found: list[str] = []
    others: list[str] = []
    for anchor in tree.css(markers.po_search_result_selector):
        href = (anchor.attributes.get("href") or "").strip()
        if not href:
            continue
        numbers = _NUMBER.findall(anchor.text(separator=" "))
        if any((n.lstrip("0") or "0") == wanted for n in numbers):
            url = urljoin(page_url, href).split("#", 1)[0]
            if url not in found:
                found.append(url)
        elif numbers:
            others.append(numbers[0])
    if len(found) == 1:
        return SearchResult(found[0], f"found by searching the PO list for {digits}")
    if found:
        return SearchResult(
            None, f"a search for {digits} found {len(found)} POs numbered so: {', '.join(found)}"
        )
    if others:
        shown = ", ".join(others[:3]) + (" …" if len(others) > 3 else "")
        return SearchResult(None, f"a search for {digits} found only other POs ({shown})")
    return SearchResult(None, f"a search for {digits} found nothing")
