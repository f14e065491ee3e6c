"""Which fonts a PDF needs for its text, and the text made drawable with them.

Characters no font has become "?" (a PDF never shows an empty gap or crashes on them);
invisible format and control characters are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from coupa_async.emails.font_cache import LoadedFont, load_font
from coupa_async.emails.fonts import FontSet

MAIN_FAMILY = "mailsans"
REPLACEMENT = "?"
_NEWLINE = ord("\n")
_SPACE = ord(" ")
_LINE_ENDS = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with one kind of line end, tabs as spaces, and no invisible characters."""
    text = _LINE_ENDS.sub("\n", text).replace("\t", "    ")
    return _SURROGATES.sub(REPLACEMENT, _INVISIBLE.sub("", text))


@dataclass
class TextFilter:
    """The fonts a document's text needs, and a callable making a text drawable with them."""

    unicode: LoadedFont | None  # None: fpdf2's core Helvetica (Windows-1252 only)
    bold: LoadedFont | None
    fallbacks: tuple[LoadedFont, ...] = ()
    missing: bool = False
    _table: dict[int, str] = field(default_factory=dict)
    _fonts_regular: dict[str, LoadedFont | None] = field(default_factory=dict, repr=False)
    _fonts_bold: dict[str, LoadedFont | None] = field(default_factory=dict, repr=False)

    @classmethod
    def for_texts(
        cls, texts: Iterable[str], fonts: FontSet, bold_texts: Iterable[str] = ()
    ) -> TextFilter:
        """The filter for a document showing ``texts`` (``bold_texts`` also in bold)."""
        chars: set[int] = set()
        for text in texts:
            chars.update(map(ord, clean(text)))
        chars.discard(_NEWLINE)
        regular = load_font(fonts.regular, MAIN_FAMILY, "") if fonts.regular else None
        if regular is None:
            undrawable = {c for c in chars if not _in_cp1252(c)}
            return cls(None, None, (), bool(undrawable), dict.fromkeys(undrawable, REPLACEMENT))
        bold = load_font(fonts.bold, MAIN_FAMILY, "B") if fonts.bold else None
        needed = chars - regular.codepoints
        fallbacks: list[LoadedFont] = []
        for path in fonts.fallbacks:
            if not needed:
                break
            # Parsed only when the text has characters the main font lacks.
            fallback = load_font(path, fallback_family(path), "")
            if fallback is not None and needed & fallback.codepoints:
                fallbacks.append(fallback)
                needed -= fallback.codepoints
        if bold is not None:
            bold_chars: set[int] = set()
            for text in bold_texts:
                bold_chars.update(map(ord, clean(text)))
            if (bold_chars & regular.codepoints) - bold.codepoints:
                bold = None  # the bold face lacks letters the regular one has
        table = dict.fromkeys(needed, REPLACEMENT)
        return cls(regular, bold, tuple(fallbacks), bool(needed), table)

    def font_for(self, codepoint: int, bold: bool = False) -> LoadedFont | None:
        """The font drawing ``codepoint`` (None: the core font).

        Bold text uses the bold face for what it has; everything else, and what the main font
        lacks, comes from the regular face of the first fallback that has it. A character no
        font has (only "?" reaches a PDF in its place) is given the main font.
        """
        main = self.bold if bold and self.bold is not None else self.unicode
        if main is None or codepoint in main.codepoints:
            return main
        if self.unicode is not None and codepoint in self.unicode.codepoints:
            return self.unicode
        return next((f for f in self.fallbacks if codepoint in f.codepoints), main)

    def runs(self, text: str, bold: bool = False) -> list[tuple[LoadedFont | None, str]]:
        """``text`` (already filtered) cut where the font drawing it changes.

        fpdf2's own fallback-font switching is not used: each run is drawn with its font set
        explicitly, so the PDF's text state never depends on fpdf2's bookkeeping of it.
        """
        fonts = self._fonts_bold if bold else self._fonts_regular
        runs: list[tuple[LoadedFont | None, str]] = []
        current: LoadedFont | None = None
        start = 0
        for i, ch in enumerate(text):
            font = fonts.get(ch)
            if font is None and ch not in fonts:
                font = fonts[ch] = self.font_for(ord(ch), bold)
            if font is current or i == 0:
                current = font
                continue
            if ch == " " and current is not None and _SPACE in current.codepoints:
                continue  # a space between two runs of another font stays in its run
            runs.append((current, text[start:i]))
            current, start = font, i
        if text:
            runs.append((current, text[start:]))
        return runs

    def __call__(self, text: str) -> str:
        text = clean(text)
        return text.translate(self._table) if self._table else text


def fallback_family(path: object) -> str:
    """A family name for a fallback font file, the same in every PDF of the process."""
    return "fallback" + hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]


def _in_cp1252(codepoint: int) -> bool:
    try:
        chr(codepoint).encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True
