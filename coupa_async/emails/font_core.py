"""A font cut once per process to the characters mails mostly use, so each PDF subsets less.

fpdf2 subsets every embedded font anew for each PDF, and fontTools decodes the whole glyph
and metrics tables to do it: the cost grows with the font's glyph count (DejaVu Sans has about
6,000 glyphs, Droid Sans Fallback 49,000), not with the few characters a mail shows. A font cut
once to a common repertoire (Latin, Greek, Cyrillic, punctuation and symbols; for a CJK font
the characters of the national standards GB 2312, Big5 level 1, JIS X 0208 and KS X 1001) has a
quarter of the glyphs or fewer. A PDF whose characters the cut holds is written from it; any
other is written from the whole font, so what a PDF shows never depends on the cut.
"""

from __future__ import annotations

import functools
import io

from fontTools import subset, ttLib

# Unicode blocks every font is cut to (those it has of them).
_COMMON_BLOCKS = (
    (0x0000, 0x052F),  # Latin, IPA, Greek, Cyrillic
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese, Welsh)
    (0x2000, 0x22FF),  # punctuation, super/subscripts, currency, letterlike, arrows, math
    (0x2460, 0x24FF),  # enclosed alphanumerics
    (0x2500, 0x26FF),  # box drawing, blocks, geometric shapes, symbols
    (0x3000, 0x30FF),  # CJK punctuation, hiragana, katakana
    (0xFB00, 0xFB06),  # Latin ligatures
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half- and full-width forms
    (0xFFFD, 0xFFFD),
)
# The national character sets whose characters go in: (codec, lead bytes, trail bytes).
_NATIONAL_SETS = (
    ("gb2312", range(0xA1, 0xF8), range(0xA1, 0xFF)),
    ("big5", range(0xA4, 0xC7), (*range(0x40, 0x7F), *range(0xA1, 0xFF))),  # level 1
    ("euc_jp", range(0xA1, 0xF5), range(0xA1, 0xFF)),  # JIS X 0208
    ("euc_kr", range(0xA1, 0xFE), range(0xA1, 0xFF)),  # KS X 1001
)
# Raised when the characters kept or the way of cutting change: cuts kept on disk
# (``cut_store``) are then made anew.
CUT_VERSION = 1
# Not worth a cut: fonts whose cut would keep most of their glyphs.
_WORTH_CUTTING = 0.6
# Tables fpdf2 drops from every embedded font anyway (and vertical metrics: the PDFs are
# written horizontally); the cut drops them at once.
_DROPPED = [
    "FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT", "CBLC", "EBDT",
    "EBLC", "EBSC", "SVG ", "CPAL", "COLR", "vhea", "vmtx", "VORG",
]  # fmt: skip


@functools.cache
def common_codepoints() -> frozenset[int]:
    """The characters a cut keeps."""
    chars: set[int] = set()
    for first, last in _COMMON_BLOCKS:
        chars.update(range(first, last + 1))
    for codec, leads, trails in _NATIONAL_SETS:
        for lead in leads:
            for trail in trails:
                try:
                    chars.update(map(ord, bytes((lead, trail)).decode(codec)))
                except UnicodeDecodeError:
                    continue
    return frozenset(chars)


def character_set(data: bytes) -> frozenset[int]:
    """The characters the font file ``data`` maps to glyphs (its best Unicode cmap)."""
    font = ttLib.TTFont(io.BytesIO(data), lazy=True, fontNumber=0)
    # Numbered glyph names: deriving the real ones costs more than reading the map itself.
    font.setGlyphOrder([f"glyph{i}" for i in range(font["maxp"].numGlyphs)])
    return frozenset(font.getBestCmap() or ())


def kept_codepoints(codepoints: frozenset[int]) -> frozenset[int] | None:
    """The characters a cut of a font with ``codepoints`` keeps; None when a cut would not
    make it much smaller."""
    kept = codepoints & common_codepoints()
    return kept if len(kept) <= _WORTH_CUTTING * len(codepoints) else None


def cut_font(data: bytes, kept: frozenset[int]) -> bytes:
    """The font file ``data`` cut to the characters ``kept``."""
    # The outlines are kept as they are: their bounds need no recomputing.
    font = ttLib.TTFont(io.BytesIO(data), recalcBBoxes=False, recalcTimestamp=False, fontNumber=0)
    options = subset.Options(
        notdef_outline=True,
        recommended_glyphs=True,
        # No glyph names: each PDF's copy gets its glyph order from the parsed cut, so the
        # names would only be decoded and dropped again for every PDF.
        glyph_names=False,
        name_IDs=["*"],
        name_languages=["*"],
        name_legacy=True,
        legacy_kern=True,
        drop_tables=[*subset.Options().drop_tables, *_DROPPED],
    )
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=kept)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
