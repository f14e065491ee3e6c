"""Read a PO or requisition page: supplier, attachments, requisition link, signs of late filling.

One parser serves both discovery modes: ``render`` hands it the live DOM (``page.content()``),
``fast`` the HTML fetched without rendering. So whatever the mode, the same page gives the same
answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.results.result import AttachmentKind

MAX_NAME = 200  # characters kept of a name, author or date taken from the page
MAX_TEXT = 4000  # characters kept of a text attachment


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """One attachment on a page: a file (a URL to fetch, or the n-th clickable element), a URL
    attachment (a link to an outside address: recorded, never fetched) or a text attachment.

    ``place`` says where on the page it is: ``header``, ``line 2``, ``comment by … at …``.
    """

    url: str | None
    name_hint: str
    click_index: int | None = None
    place: str = "header"
    kind: AttachmentKind = "file"
    text: str = ""  # a text attachment's text

    @property
    def key(self) -> str:
        if self.kind == "text":
            return f"text:{self.place}:{self.text}"
        return self.url or f"click:{self.click_index}"

    @property
    def value(self) -> str:
        """What the manifest records of it: the URL, or the text."""
        return self.text if self.kind == "text" else (self.url or "")


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What one page shows."""

    supplier: str | None
    attachments: tuple[AttachmentRef, ...] = ()
    requisition_url: str | None = None
    filled_by_script: bool = False
    # URL and text attachments: part of the record, never fetched.
    others: tuple[AttachmentRef, ...] = ()
    # The number the page says it is (PO or requisition), from its headings or title.
    shown_number: str | None = None
    # The requisition's number as the link to it says, when it says one.
    requisition_number: str | None = None

    @property
    def has_click_only(self) -> bool:
        return any(ref.url is None for ref in self.attachments)

    @property
    def attachment_keys(self) -> frozenset[str]:
        return frozenset(ref.key for ref in (*self.attachments, *self.others))


def select(tree: LexborHTMLParser | LexborNode, selector: str) -> list[LexborNode]:
    """The elements matching a selector list, each once, in document order (as a browser's
    ``querySelectorAll``; lexbor lists an element once per selector it matches)."""
    if not selector:
        return []
    seen: set[int] = set()
    found = []
    for node in tree.css(selector):
        if node.mem_id not in seen:
            seen.add(node.mem_id)
            found.append(node)
    return found


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


def _is_click_only(node: LexborNode, link_selector: str, others: _Matches) -> bool:
    # A container labelled "attachments" around real links is not itself an attachment.
    if link_selector and node.css_first(link_selector) is not None:
        return False
    if others.holds(node):
        return False
    return not _inside_link(node)


def _inside_link(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "a" and "href" in parent.attributes:
            return True
        parent = parent.parent
    return False


class _Matches:
    """The elements of a page that match a selector, to ask whether a node is one of them or
    lies inside one (selectolax's ``css_matches`` also answers for descendants)."""

    def __init__(self, tree: LexborHTMLParser, selector: str) -> None:
        self.nodes = {node.mem_id: node for node in select(tree, selector)}

    def nearest(self, node: LexborNode) -> LexborNode | None:
        """The node itself or its closest ancestor among the matches."""
        current: LexborNode | None = node
        while current is not None and self.nodes:
            if current.mem_id in self.nodes:
                return current
            current = current.parent
        return None

    def holds(self, node: LexborNode) -> bool:
        return self.nearest(node) is not None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def is_outside(url: str, page_url: str, file_hosts: Sequence[str] = ()) -> bool:
    """A link to a host other than the page's own (the tenant's) and its file hosts."""
    scheme, host, port = _origin(url)
    if scheme not in ("http", "https"):
        return True
    if (scheme, host, port) == _origin(page_url):
        return False
    return not any(host == h.lower() or host.endswith("." + h.lower()) for h in file_hosts)


class _Places:
    """Where an attachment sits on the page: a comment, a line, else the header."""

    def __init__(self, tree: LexborHTMLParser, markers: CoupaMarkers) -> None:
        self.markers = markers
        self.lines = _Matches(tree, ", ".join(markers.line_selectors))
        self.comments = _Matches(tree, ", ".join(markers.comment_selectors))

    def of(self, node: LexborNode) -> str:
        comment = self.comments.nearest(node)
        line = self.lines.nearest(node)
        # The innermost of the two wins: a comment inside a line is the comment's.
        if comment is not None and (line is None or _contains(line, comment)):
            return self._comment(comment)
        if line is not None:
            return self._line(line)
        return "header"

    def _line(self, node: LexborNode) -> str:
        attrs = node.attributes
        for name in self.markers.line_number_attributes:
            value = _clean(attrs.get(name))
            if value:
                return f"line {value[:MAX_NAME]}"
        cell = node.css_first("td, th")
        first = _clean(cell.text(separator=" ")) if cell is not None else ""
        if first and len(first) <= 12:
            return f"line {first}"
        return "line"

    def _comment(self, node: LexborNode) -> str:
        author = _first_text(node, self.markers.comment_author_selectors)
        when = _first_text(node, self.markers.comment_date_selectors)
        place = "comment"
        if author:
            place += f" by {author}"
        if when:
            place += f" at {when}"
        return place


def _contains(outer: LexborNode, inner: LexborNode) -> bool:
    current: LexborNode | None = inner.parent
    while current is not None:
        if current.mem_id == outer.mem_id:
            return True
        current = current.parent
    return False


def _first_text(node: LexborNode, selectors: Sequence[str]) -> str:
    for selector in selectors:
        for found in node.css(selector):
            text = _clean(found.text(separator=" "))
            if text:
                return text[:MAX_NAME]
    return ""


def find_attachments(
    tree: LexborHTMLParser,
    page_url: str,
    markers: CoupaMarkers,
    file_hosts: Sequence[str] = (),
) -> tuple[tuple[AttachmentRef, ...], tuple[AttachmentRef, ...]]:
    """Every attachment on the page, in document order: (files, URL and text attachments).

    Files are de-duplicated by resolved URL; a link to another host is a URL attachment.
    """
    files: list[AttachmentRef] = []
    others: list[AttachmentRef] = []
    seen: set[str] = set()
    places = _Places(tree, markers)
    text_selector = ", ".join(markers.text_attachment_selectors)
    url_selector = ", ".join(markers.url_attachment_selectors)
    url_marked = _Matches(tree, url_selector)
    not_files = _Matches(tree, ", ".join(s for s in (text_selector, url_selector) if s))
    for node in select(tree, text_selector):
        if url_marked.holds(node):
            continue
        text = _clean(node.text(separator=" "))[:MAX_TEXT]
        name = _clean(node.attributes.get("title")) or text[:MAX_NAME]
        others.append(AttachmentRef(None, name, place=places.of(node), kind="text", text=text))
    for node in select(tree, url_selector):
        anchor = node if "href" in node.attributes else node.css_first("a[href]")
        href = (anchor.attributes.get("href") or "").strip() if anchor is not None else ""
        url = urljoin(page_url, href).split("#", 1)[0] if href else ""
        if url and url in seen:
            continue
        seen.add(url)
        name = _clean(node.text(separator=" ")) or _clean(node.attributes.get("title")) or url
        others.append(AttachmentRef(url or None, name, place=places.of(node), kind="url"))
    selector = ", ".join(markers.attachment_link_selectors)
    for node in select(tree, selector):
        href = (node.attributes.get("href") or "").strip()
        if not href or href.startswith(("javascript:", "#", "mailto:")):
            continue
        if not_files.holds(node):
            continue
        url = urljoin(page_url, href).split("#", 1)[0]
        if url in seen:
            continue
        seen.add(url)
        if is_outside(url, page_url, file_hosts):
            name = _clean(node.text(separator=" ")) or name_hint(node, url)
            others.append(AttachmentRef(url, name, place=places.of(node), kind="url"))
            continue
        files.append(AttachmentRef(url=url, name_hint=name_hint(node, url), place=places.of(node)))
    click_selector = click_only_selector(markers)
    for index, node in enumerate(select(tree, click_selector)):
        if _is_click_only(node, selector, not_files):
            files.append(
                AttachmentRef(
                    url=None,
                    name_hint=name_hint(node, None),
                    click_index=index,
                    place=places.of(node),
                )
            )
    return tuple(files), tuple(others)


def _requisition_link(tree: LexborHTMLParser, markers: CoupaMarkers) -> LexborNode | None:
    node = tree.css_first(markers.requisition_link_selector)
    if node is None:
        texts = {text.casefold() for text in markers.requisition_link_texts}
        for anchor in tree.css("a[href]"):
            if _clean(anchor.text(separator=" ")).casefold() in texts:
                return anchor
    return node


def find_requisition_url(
    tree: LexborHTMLParser, page_url: str, markers: CoupaMarkers
) -> str | None:
    """The requisition link on a PO page, resolved against the page's URL."""
    node = _requisition_link(tree, markers)
    if node is None:
        return None
    href = (node.attributes.get("href") or "").strip()
    return urljoin(page_url, href) if href else None


def linked_requisition_number(tree: LexborHTMLParser, markers: CoupaMarkers) -> str | None:
    """The requisition's number as the PO page's link says it (``Requisition #3141001``)."""
    node = _requisition_link(tree, markers)
    if node is None:
        return None
    text = _clean(node.text(separator=" "))
    for pattern in markers.requisition_identity_patterns:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            return match.group(1).lstrip("0") or "0"
    return None


def filled_by_script(tree: LexborHTMLParser, markers: CoupaMarkers, page_url: str = "") -> bool:
    """Signs that the page fills part of itself in after load: a list still loading, an
    attachment area with nothing in it at all (not even "No attachments"), or a script of the
    page's own that names the page's address (it asks for the page's data)."""
    if any(tree.css_first(selector) is not None for selector in markers.script_fill_selectors):
        return True
    path = urlsplit(page_url).path.rstrip("/")
    if path.count("/") >= 2:  # /order_headers/4471, not / or /order_headers
        escaped = path.replace("/", "\\/")
        for script in tree.css("script"):
            if "src" in script.attributes:
                continue
            code = script.text() or ""
            if path in code or escaped in code:
                return True
    for area in select(tree, ", ".join(markers.attachment_area_selectors)):
        has_elements = next(area.iter(include_text=False), None) is not None
        if not has_elements and not _clean(area.text(separator=" ")):
            return True
    body = tree.body
    text = body.text(separator=" ") if body is not None else ""
    return any(sign.lower() in text.lower() for sign in markers.script_fill_texts)


def shown_number(
    tree: LexborHTMLParser, patterns: Sequence[str], markers: CoupaMarkers
) -> str | None:
    """The number the page says it is: the first pattern match in its headings, then title."""
    compiled = [re.compile(pattern, re.IGNORECASE) for pattern in patterns]
    for selector in markers.identity_selectors:
        for node in tree.css(selector):
            text = _clean(node.text(separator=" "))
            for pattern in compiled:
                match = pattern.search(text)
                if match:
                    return match.group(1).lstrip("0") or "0"
    return None


def read_page(
    html: str | LexborHTMLParser,
    page_url: str,
    markers: CoupaMarkers,
    file_hosts: Sequence[str] = (),
) -> PageFacts:
    """Everything discovery needs from one page."""
    tree = LexborHTMLParser(html) if isinstance(html, str) else html
    files, others = find_attachments(tree, page_url, markers, file_hosts)
    patterns = (
        markers.requisition_identity_patterns
        if "/requisition_headers/" in urlsplit(page_url).path
        else markers.po_identity_patterns
    )
    return PageFacts(
        supplier=find_supplier(tree, markers),
        attachments=files,
        requisition_url=find_requisition_url(tree, page_url, markers),
        filled_by_script=filled_by_script(tree, markers, page_url),
        others=others,
        shown_number=shown_number(tree, patterns, markers),
        requisition_number=linked_requisition_number(tree, markers),
    )
