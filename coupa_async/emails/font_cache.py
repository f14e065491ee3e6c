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
"""

from __future__ import annotations

import copy
import functools
import io
from dataclasses import dataclass
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

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


@functools.cache
def load_font(path: Path, family: str, style: str) -> LoadedFont | None:
    """``path`` parsed by fpdf2 for ``family``/``style``, or None if it is not a usable font."""
    try:
        data = path.read_bytes()
        scratch = FPDF()
        scratch.add_font(family, style, str(path))
        template = next(iter(scratch.fonts.values()))
        if not isinstance(template, TTFFont):
            return None
        order = tuple(template.ttfont.getGlyphOrder())
        fresh = _parse(data)
    except Exception:  # fontTools raises many kinds on a damaged or unsupported file
        return None
    # fpdf2 draws a .notdef glyph into fonts lacking one; a fresh copy would lack it.
    lendable = ".notdef" in fresh.getGlyphOrder() and template.color_font is None
    glyph_order = order if lendable else None
    if glyph_order is not None:
        template.ttfont = None  # each PDF gets its own; the parsed tables are large
    return LoadedFont(path, family, style, frozenset(template.cmap), template, data, glyph_order)


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
    return ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, lazy=True, fontNumber=0)
