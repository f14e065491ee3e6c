"""HTML mail bodies as readable plain text: blocks, line breaks, list items and table rows
become lines; scripts and styles are dropped; entities are decoded by the parser.

Outlook writes each line as a ``<p class=MsoNormal>`` without margins, and puts paragraphs in
table cells: those lines stay single-spaced, and a row whose cells hold one line each becomes
one line, ``Qty | Price``. A layout table's big cells stay blocks of their own.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from coupa_async.emails.text_decode import decode_text

_DROPPED = frozenset(
    {"head", "script", "style", "noscript", "template", "title", "meta", "link", "object"}
    | {"iframe", "svg", "math", "-comment", "-doctype"}
)
_BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt"}
    | {"fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5"}
    | {"h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section", "table", "ul"}
    | {"tbody", "thead", "tfoot", "caption", "li", "tr", "td", "th"}
)
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table"})
_CELLS = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# Rows of tables nested deeper than this are read as plain blocks (bounds the recursion).
_MAX_TABLE_DEPTH = 20
CELL_SEPARATOR = " | "
BULLET = "• "


def decode_html(data: bytes, fallback: str | None = None) -> str:
    """HTML bytes as text: the ``<meta>`` charset, else ``fallback``, else UTF-8 or cp1252."""
    match = _META_CHARSET.search(data[:4096])
    if match:
        return decode_text(data, match.group(1).decode("ascii"))
    return decode_text(data, fallback)


def html_to_text(html: str) -> str:
    """The readable text of ``html``, one line per block, list item or table row."""
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return ""
    out = _TextBuilder()
    _walk(root, out, 0)
    return out.text()


def _children(node: LexborNode) -> list[LexborNode]:
    children = []
    child = node.child
    while child is not None:
        children.append(child)
        child = child.next
    return children


def _walk(root: LexborNode, out: _TextBuilder, tables: int) -> None:
    # Iterative: deep nesting in a hostile mail must not hit the recursion limit.
    stack: list[tuple[LexborNode, int | None]] = [(root, None)]
    while stack:
        node, opened_at = stack.pop()
        tag = node.tag or ""
        if opened_at is not None:
            _close(node, tag, out, opened_at)
            continue
        if tag == "-text":
            out.add(node.text_content or "")
            continue
        if tag in _DROPPED:
            continue
        if tag == "tr" and tables < _MAX_TABLE_DEPTH:
            _row(node, out, tables + 1)
            continue
        _open(node, tag, out)
        stack.append((node, out.appended))
        stack.extend((child, None) for child in reversed(_children(node)))


def _row(row: LexborNode, out: _TextBuilder, tables: int) -> None:
    cells = []
    for cell in _children(row):
        if (cell.tag or "") in _CELLS:
            inner = _TextBuilder()
            _walk(cell, inner, tables)
            text = inner.text()
            if text:
                cells.append(text)
    out.block()
    if all("\n" not in text for text in cells):
        out.add(CELL_SEPARATOR.join(cells))
    else:
        for text in cells:
            out.add_lines(text)
    out.block()


def _open(node: LexborNode, tag: str, out: _TextBuilder) -> None:
    if tag == "br":
        out.line_break()
    elif tag == "pre":
        out.paragraph()
        out.pre += 1
    elif tag == "li":
        out.block()
        out.add(BULLET)
    elif tag in _PARAGRAPHS and not _is_outlook_line(node):
        out.paragraph()
    elif tag in _BLOCKS:
        out.block()
    elif tag == "img":
        alt = (node.attributes.get("alt") or "").strip()
        if alt:
            out.add(f"[{alt}]")


def _close(node: LexborNode, tag: str, out: _TextBuilder, opened_at: int) -> None:
    if tag == "pre":
        out.pre -= 1
        out.paragraph()
    elif _is_outlook_line(node):
        out.block()
        if out.appended == opened_at:
            out.empty_line()  # Outlook's blank line: a paragraph holding only &nbsp;
    elif tag in _PARAGRAPHS:
        out.paragraph()
    elif tag in _BLOCKS:
        out.block()


def _is_outlook_line(node: LexborNode) -> bool:
    if node.tag != "p":
        return False
    return "msonormal" in (node.attributes.get("class") or "").lower()


class _TextBuilder:
    """Collects text, collapsing white space outside ``<pre>`` and runs of blank lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []
        self.blank_wanted = False
        self.pre = 0
        self.appended = 0  # pieces of text added so far

    def add(self, text: str) -> None:
        if not text:
            return
        if self.pre:
            first, *rest = text.replace("\r\n", "\n").split("\n")
            self._append(first)
            for line in rest:
                self.line_break()
                self._append(line)
            return
        text = _SPACES.sub(" ", text)
        if not self.current or self.current[-1].endswith(" "):
            text = text.lstrip(" ")
        self._append(text)

    def add_lines(self, text: str) -> None:
        """Lines already laid out (a table cell's), each kept as it is."""
        self.block()
        for line in text.split("\n"):
            if line:
                self._append(line)
                self.block()
            else:
                self.empty_line()

    def line_break(self) -> None:
        self.lines.append("".join(self.current).rstrip())
        self.current = []

    def block(self) -> None:
        """End the current line, if it has text."""
        if any(part.strip() for part in self.current):
            self.line_break()
        else:
            self.current = []

    def paragraph(self) -> None:
        """End the current line and ask for a blank line before the next text."""
        self.block()
        self.blank_wanted = True

    def empty_line(self) -> None:
        self.block()
        self.lines.append("")

    def _append(self, text: str) -> None:
        if not text:
            return
        if not self.current and self.blank_wanted:
            if self.lines and self.lines[-1]:
                self.lines.append("")
            self.blank_wanted = False
        self.current.append(text)
        self.appended += 1

    def text(self) -> str:
        self.block()
        lines: list[str] = []
        for line in self.lines:
            if line or (lines and lines[-1]):
                lines.append(line)
        return "\n".join(lines).strip("\n")
