"""Finding fonts, the caller's own font files, damaged fonts, and conversion in a fresh
process as the converting worker runs it."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from coupa_async.emails import ConversionLimits, FontSet, convert_email, find_fonts
from coupa_async.sim.outlook import MailSpec, eml_bytes, msg_bytes

SYSTEM = find_fonts()
CHINESE = "采购订单"


def needs_unicode_font() -> Path:
    if SYSTEM.regular is None:
        pytest.skip("no Unicode TrueType font on this machine (install fonts-dejavu-core)")
    return SYSTEM.regular


def mail(body: str) -> MailSpec:
    return MailSpec(
        subject="Cotação",
        sender_name="José",
        sender_address="jose@example.com",
        to=("anna@example.com",),
        date=datetime(2026, 3, 2, tzinfo=UTC),
        body_text=body,
    )


def test_machine_fonts_are_found() -> None:
    regular = needs_unicode_font()
    assert regular.is_file() and regular.suffix.lower() in (".ttf", ".otf", ".ttc")
    assert SYSTEM.bold is None or SYSTEM.bold.is_file()
    assert all(path.is_file() for path in SYSTEM.fallbacks)


def test_extra_font_files_come_first(tmp_path: Path) -> None:
    regular = needs_unicode_font()
    mine = tmp_path / "Corporate.ttf"
    mine_bold = tmp_path / "Corporate-Bold.ttf"
    cjk = tmp_path / "CorporateCJK.ttf"
    for path in (mine, mine_bold, cjk):
        shutil.copyfile(regular, path)
    fonts = find_fonts([mine, mine_bold, cjk, tmp_path / "absent.ttf", tmp_path / "notes.txt"])
    assert fonts.regular == mine and fonts.bold == mine_bold
    assert fonts.fallbacks[0] == cjk
    assert tmp_path / "absent.ttf" not in fonts.fallbacks


def test_a_damaged_font_file_does_not_stop_the_pdf(tmp_path: Path) -> None:
    broken = tmp_path / "Broken.ttf"
    broken.write_bytes(b"\x00\x01\x00\x00" + b"garbage" * 100)
    path = tmp_path / "m.eml"
    path.write_bytes(eml_bytes(mail("Olá, preço")))
    outcome = convert_email(path, "pdf", FontSet(regular=broken, bold=None, fallbacks=(broken,)))
    assert outcome.error is None and not outcome.missing_font  # Windows-1252 has these letters
    assert "Olá, preço" in PdfReader(tmp_path / "m.eml.pdf").pages[0].extract_text()


def test_characters_no_font_has_become_question_marks(tmp_path: Path) -> None:
    regular = needs_unicode_font()
    path = tmp_path / "m.eml"
    path.write_bytes(eml_bytes(mail(f"Olá {CHINESE}")))
    outcome = convert_email(path, "pdf", FontSet(regular=regular, bold=None, fallbacks=()))
    assert outcome.error is None and outcome.missing_font
    text = PdfReader(tmp_path / "m.eml.pdf").pages[0].extract_text()
    assert "Olá ????" in text


def test_chinese_pdf_embeds_only_the_glyphs_it_uses(tmp_path: Path) -> None:
    if not SYSTEM.fallbacks:
        pytest.skip("no CJK font on this machine (install fonts-droid-fallback or fonts-noto-cjk)")
    path = tmp_path / "m.msg"
    path.write_bytes(msg_bytes(mail(CHINESE * 50)))
    assert convert_email(path, "pdf", SYSTEM).error is None
    # The CJK fonts are megabytes; a subset of a few glyphs is kilobytes.
    assert (tmp_path / "m.msg.pdf").stat().st_size < 100_000


def test_the_call_pickles_for_a_process_pool() -> None:
    for value in (convert_email, SYSTEM, ConversionLimits(max_depth=2)):
        assert pickle.loads(pickle.dumps(value)) == value


def test_conversion_in_a_fresh_process_and_a_light_import(tmp_path: Path) -> None:
    path = tmp_path / "m.msg"
    path.write_bytes(msg_bytes(mail(f"Olá {CHINESE}")))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from coupa_async.emails import convert_email, find_fonts\n"
        "heavy = ('fpdf', 'fontTools', 'extract_msg', 'aiohttp', 'playwright')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(convert_email(Path(sys.argv[1]), 'both', find_fonts()).error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["[]", "None"]
    assert result.stderr == ""  # no library chatter about the mail or its fonts
    assert "Olá" in PdfReader(tmp_path / "m.msg.pdf").pages[0].extract_text()
