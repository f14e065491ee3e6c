"""Fonts cut to common characters: each kept character drawn as the whole font draws it, a PDF
written from the cut only when the cut has its text, and cuts kept on disk only while they are
intact."""

from __future__ import annotations

import hashlib
import io
import random
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from coupa_async.emails import cut_store, find_fonts
from coupa_async.emails.font_cache import load_font
from coupa_async.emails.font_core import character_set, cut_font, kept_codepoints
from coupa_async.emails.model import Mail
from coupa_async.emails.pdf import render_pdf
from coupa_async.emails.pdf_text import MAIN_FAMILY, TextFilter

SYSTEM = find_fonts()
FONT_FILES = [p for p in (SYSTEM.regular, SYSTEM.bold, *SYSTEM.fallbacks) if p is not None]


def a_font() -> Path:
    if SYSTEM.regular is None:
        pytest.skip("no Unicode TrueType font on this machine (install fonts-dejavu-core)")
    return SYSTEM.regular


def a_font_and_its_cut_characters() -> tuple[bytes, frozenset[int]]:
    data = a_font().read_bytes()
    kept = kept_codepoints(character_set(data))
    assert kept is not None
    return data, kept


def outline(font: TTFont, codepoint: int) -> tuple[int, list]:
    """The advance width and the drawing (components resolved) of a character's glyph."""
    name = font.getBestCmap()[codepoint]
    glyphs = font.getGlyphSet()
    pen = DecomposingRecordingPen(glyphs)
    glyphs[name].draw(pen)
    return font["hmtx"][name][0], pen.value


@pytest.mark.parametrize("path", FONT_FILES, ids=[p.name for p in FONT_FILES])
def test_a_cut_draws_each_character_it_keeps_as_the_whole_font_does(path: Path) -> None:
    data = path.read_bytes()
    kept = kept_codepoints(character_set(data))
    if kept is None:
        pytest.skip(f"{path.name} is not worth cutting")
    whole = TTFont(path)
    cut = TTFont(io.BytesIO(cut_font(data, kept)))
    assert frozenset(cut.getBestCmap()) == kept
    assert len(cut.getGlyphOrder()) < len(whole.getGlyphOrder())
    # Every kept character of a Latin font; a drawn sample of a CJK font's thousands.
    sample = sorted(kept) if len(kept) < 4000 else random.Random(7).sample(sorted(kept), 1500)
    different = [hex(c) for c in sample if outline(cut, c) != outline(whole, c)]
    assert not different, different[:20]


def mail_saying(text: str) -> Mail:
    return Mail(
        subject="Cotação",
        sender="José <jose@example.com>",
        to="anna@example.com",
        cc="",
        date=str(datetime(2026, 3, 2, tzinfo=UTC)),
        body=text,
        attachments=(),
    )


@pytest.mark.parametrize(
    ("body", "part"),
    [
        ("Grüße aus São Paulo – “quoted” € 100", "cut"),
        # Armenian: DejaVu Sans has it, its cut does not.
        ("Grüße aus São Paulo, Բարեւ Երեւան", "whole"),
    ],
)
def test_a_pdf_is_written_from_the_cut_only_when_the_cut_has_its_text(body: str, part: str) -> None:
    regular = a_font()
    font_file = load_font(regular, MAIN_FAMILY, "")
    assert font_file is not None and font_file.cut is not None
    if part == "whole" and not {0x0531, 0x0562} <= font_file.codepoints:
        pytest.skip(f"{regular.name} has no Armenian")
    text_filter = TextFilter.for_texts([body], SYSTEM)
    expected = font_file.cut if part == "cut" else font_file.whole
    assert text_filter.unicode is expected
    pdf = render_pdf(mail_saying(body), SYSTEM, "m.eml")
    assert not pdf.missing_font
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert body in text


def test_a_cut_is_kept_on_disk_and_used_by_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, kept = a_font_and_its_cut_characters()
    folder = tmp_path / "fonts"
    first = cut_store.stored_cut(data, kept, folder)
    (stored,) = folder.iterdir()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stored.read_bytes() == first
    assert stored.name.startswith(hashlib.sha256(data).hexdigest()[:32])

    def no_cutting(*args: object) -> bytes:
        raise AssertionError("cut again although a good cut is kept")

    monkeypatch.setattr(cut_store, "cut_font", no_cutting)
    assert cut_store.stored_cut(data, kept, folder) == first


@pytest.mark.parametrize("damage", ["one byte changed", "cut short", "another font's cut"])
def test_a_damaged_kept_cut_is_not_used_but_cut_anew(tmp_path: Path, damage: str) -> None:
    data, kept = a_font_and_its_cut_characters()
    folder = tmp_path / "fonts"
    good = cut_store.stored_cut(data, kept, folder)
    (stored,) = folder.iterdir()
    if damage == "one byte changed":
        spoiled = bytearray(good)
        spoiled[len(spoiled) // 2] ^= 0xFF
        stored.write_bytes(bytes(spoiled))
    elif damage == "cut short":
        stored.write_bytes(good[: len(good) // 3])
    else:
        # A valid font with the right name and hash, but not this font's cut: fewer characters.
        other = cut_font(data, frozenset(range(0x20, 0x7F)))
        renamed = stored.name.rsplit("-", 1)[0] + f"-{hashlib.sha256(other).hexdigest()[:32]}.ttf"
        stored.unlink()
        stored = folder / renamed
        stored.write_bytes(other)
    assert cut_store.stored_cut(data, kept, folder) == good
    assert [p.read_bytes() == good for p in folder.iterdir()] == [True]


def test_a_cut_that_cannot_be_kept_is_still_used(tmp_path: Path) -> None:
    data, kept = a_font_and_its_cut_characters()
    blocked = tmp_path / "fonts"
    blocked.write_text("a file where the folder would be")
    cut = cut_store.stored_cut(data, kept, blocked)
    assert character_set(cut) == kept
    assert blocked.read_text() == "a file where the folder would be"
