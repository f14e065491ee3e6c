"""Read a PO or requisition page: supplier, attachments, requisition link, signs of late filling.

One parser serves both discovery modes: ``render`` hands it the live DOM (``page.content()``),
``fast`` the HTML fetched without rendering. So whatever the mode, the same page gives the same
answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from coupa_async.coupa.markers import CoupaMarkers


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """One attachment on a page: a URL to fetch, or (click-only) the n-th clickable element."""

    url: str | None
    name_hint: str
    click_index: int | None = None

    @property
    def key(self) -> str:
        return self.url or f"click:{self.click_index}"


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What one page shows."""

    supplier: str | None
    attachments: tuple[AttachmentRef, ...] = ()
    requisition_url: str | None = None
    filled_by_script: bool = False

    @property
    def has_click_only(self) -> bool:
        return any(ref.url is None for ref in self.attachments)

    @property
    def attachment_keys(self) -> frozenset[str]:
        return frozenset(ref.key for ref in self.attachments)


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def find_supplier(tree: LexborHTMLParser, markers: CoupaMarkers) -> str | None:
    """The first non-empty text among the supplier selectors, in the reference's order."""
    for selector in markers.supplier_selectors:
        for node in tree.css(selector):
            text = _clean(node.text(separator=" "))
            if text:
                return text
    return None


def name_hint(node: LexborNode, url: str | None) -> str:
    """The name a page gives a file: download attribute, title, aria-label, text, URL segment."""
    attrs = node.attributes
    for key in ("download", "title", "aria-label"):
        value = _clean(attrs.get(key))
        if value:
            return value
    text = _clean(node.text(separator=" "))
    if text:
        return text
    if url:
        segment = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
        if segment:
            return segment
    return ""


def click_only_selector(markers: CoupaMarkers) -> str:
    """The CSS selector whose n-th match is the n-th click-only candidate, here and in a page."""
    return ", ".join(markers.attachment_click_selectors)


def _is_click_only(node: LexborNode, link_selector: str) -> bool:
    # A container labelled "attachments" around real links is not itself an attachment.
    if link_selector and node.css_first(link_selector) is not None:
        return False
    return not _inside_link(node)


def _inside_link(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "a" and "href" in parent.attributes:
            return True
        parent = parent.parent
    return False


def find_attachments(
    tree: LexborHTMLParser, page_url: str, markers: CoupaMarkers
) -> tuple[AttachmentRef, ...]:
    """Every attachment on the page, de-duplicated by resolved URL, in document order."""
    refs: list[AttachmentRef] = []
    seen: set[str] = set()
    selector = ", ".join(markers.attachment_link_selectors)
    for node in tree.css(selector) if selector else []:
        href = (node.attributes.get("href") or "").strip()
        if not href or href.startswith(("javascript:", "#", "mailto:")):
            continue
        url = urljoin(page_url, href).split("#", 1)[0]
        if url in seen:
            continue
        seen.add(url)
        refs.append(AttachmentRef(url=url, name_hint=name_hint(node, url)))
    click_selector = click_only_selector(markers)
    for index, node in enumerate(tree.css(click_selector) if click_selector else []):
        if _is_click_only(node, selector):
            refs.append(AttachmentRef(url=None, name_hint=name_hint(node, None), click_index=index))
    return tuple(refs)


def find_requisition_url(
    tree: LexborHTMLParser, page_url: str, markers: CoupaMarkers
) -> str | None:
    """The requisition link on a PO page, resolved against the page's URL."""
    node = tree.css_first(markers.requisition_link_selector)
    if node is None:
        texts = {text.casefold() for text in markers.requisition_link_texts}
        for anchor in tree.css("a[href]"):
            if _clean(anchor.text(separator=" ")).casefold() in texts:
                node = anchor
                break
    if node is None:
        return None
    href = (node.attributes.get("href") or "").strip()
    return urljoin(page_url, href) if href else None


def filled_by_script(tree: LexborHTMLParser, markers: CoupaMarkers) -> bool:
    """Signs that the page fills part of itself in after load (a list still loading)."""
    if any(tree.css_first(selector) is not None for selector in markers.script_fill_selectors):
        return True
    body = tree.body
    text = body.text(separator=" ") if body is not None else ""
    return any(sign.lower() in text.lower() for sign in markers.script_fill_texts)


def read_page(html: str | LexborHTMLParser, page_url: str, markers: CoupaMarkers) -> PageFacts:
    """Everything discovery needs from one page."""
    tree = LexborHTMLParser(html) if isinstance(html, str) else html
    return PageFacts(
        supplier=find_supplier(tree, markers),
        attachments=find_attachments(tree, page_url, markers),
        requisition_url=find_requisition_url(tree, page_url, markers),
        filled_by_script=filled_by_script(tree, markers),
    )
