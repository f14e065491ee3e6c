"""TrueType fonts parsed once per process and lent to each PDF it writes.

fpdf2 parses a font file on every ``add_font`` (a CJK font takes a tenth of a second or more)
and subsets the parsed font in place when the PDF is written, so a parsed font cannot simply be
shared. Here the parsed font object is copied per PDF with its per-document state fresh and a
lazily loaded copy of the font file to subset; only the cheap parts are redone.

What a copy shares with the others is what fpdf2 only reads once the font is added: the
character map, glyph ids and widths. Everything fpdf2 changes while writing one PDF is the
copy's own: the subset and its missing glyphs, the fontTools font it subsets and saves, and the
font descriptor (written into the PDF with that PDF's object number). A color font (drawn as a
Type 3 font whose glyphs fpdf2 collects per document) is parsed anew for each PDF.

What a PDF subsets is, when its text allows, the font cut to common characters (``font_core``,
kept on disk by ``cut_store``): fpdf2's subsetting costs in proportion to the font's glyphs.
"""

from __future__ import annotations

import copy
import functools
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

from coupa_async.emails.cut_store import stored_cut
from coupa_async.emails.font_core import character_set, kept_codepoints

# Vertical metrics: the PDFs are written horizontally.
_UNUSED_TABLES = ("vhea", "vmtx", "VORG")


@dataclass(frozen=True)
class LoadedFont:
    """A parsed font: which characters it has, and what each PDF's copy is made from."""

    path: Path
    family: str
    style: str
    codepoints: frozenset[int]
    template: TTFFont
    data: bytes
    glyph_order: tuple[str, ...] | None  # None: fpdf2 patched the font; parse it anew per PDF


class FontFile:
    """A font file for one family and style: its characters, and the parsed font for a PDF.

    A PDF whose characters the font's cut to common characters holds (``font_core``) is
    written from the cut; the whole font is parsed only for a PDF that needs more of it.
    """

    def __init__(self, path: Path, family: str, style: str, data: bytes) -> None:
        self.path, self.family, self.style, self._data = path, family, style, data
        self.codepoints = character_set(data)
        self.cut = _cut(self) if self.codepoints else None

    def for_characters(self, chars: Iterable[int]) -> LoadedFont | None:
        """The font to lend a PDF showing ``chars``; None if the file cannot be used."""
        if self.cut is not None and self.codepoints.intersection(chars) <= self.cut.codepoints:
            return self.cut
        return self.whole or self.cut

    @functools.cached_property
    def whole(self) -> LoadedFont | None:
        try:
            scratch = FPDF()
            scratch.add_font(self.family, self.style, str(self.path))
        except Exception:  # fontTools raises many kinds on a damaged or unsupported file
            return None
        return _lendable(self, next(iter(scratch.fonts.values())), self._data)


@functools.cache
def load_font(path: Path, family: str, style: str) -> FontFile | None:
    """The font file at ``path`` for ``family``/``style``, or None if it is not a usable font."""
    try:
        font = FontFile(path, family, style, path.read_bytes())
    except Exception:  # fontTools raises many kinds on a damaged or unsupported file
        return None
    if font.cut is None and font.whole is None:
        return None
    if font.cut is None:
        font.codepoints = font.whole.codepoints  # fpdf2's own reading (symbol fonts)
    return font


def _cut(font: FontFile) -> LoadedFont | None:
    kept = kept_codepoints(font.codepoints)
    if kept is None:
        return None
    try:
        data = stored_cut(font._data, kept)
        scratch = FPDF()
        emphasis = "".join(sorted(font.style.upper()))  # as fpdf2's add_font writes it
        fontkey = f"{font.family.lower()}{emphasis}"
        template = TTFFont(scratch, io.BytesIO(data), fontkey, emphasis)
    except Exception:  # a font fontTools cannot cut is used whole
        return None
    cut = _lendable(font, template, data)
    return cut if cut is not None and cut.glyph_order is not None else None


def _lendable(font: FontFile, template: object, data: bytes) -> LoadedFont | None:
    if not isinstance(template, TTFFont):
        return None
    try:
        order = tuple(template.ttfont.getGlyphOrder())
        has_notdef = ".notdef" in _parse(data).getGlyphOrder()
    except Exception:  # fontTools raises many kinds on a damaged or unsupported file
        return None
    # fpdf2 draws a .notdef glyph into fonts lacking one; a fresh copy would lack it.
    lendable = has_notdef and template.color_font is None
    glyph_order = order if lendable else None
    if glyph_order is not None:
        template.ttfont = None  # each PDF gets its own; the parsed tables are large
    codepoints = frozenset(template.cmap)
    return LoadedFont(font.path, font.family, font.style, codepoints, template, data, glyph_order)


def add_loaded_font(pdf: FPDF, font: LoadedFont) -> None:
    """Add ``font`` to ``pdf`` under the family and style it was loaded with."""
    if font.glyph_order is None:
        pdf.add_font(font.family, font.style, str(font.path))
        return
    lent = copy.copy(font.template)
    lent.i = len(pdf.fonts) + 1
    lent.subset = SubsetMap(lent)
    lent.missing_glyphs = []
    lent.biggest_size_pt = 0
    lent._hbfont = None
    lent.desc = copy.copy(font.template.desc)
    lent.ttfont = _parse(font.data)
    lent.ttfont.setGlyphOrder(list(font.glyph_order))
    for tag in _UNUSED_TABLES:  # else the subsetter decodes them, for nothing
        if tag in lent.ttfont:
            del lent.ttfont[tag]
    pdf.fonts[lent.fontkey] = lent


def _parse(data: bytes) -> ttLib.TTFont:
    # Lazy: only the tables the subsetter touches get decoded.
    return ttLib.TTFont(
        io.BytesIO(data), recalcBBoxes=False, recalcTimestamp=False, lazy=True, fontNumber=0
    )
