"""Finding fonts, the caller's own font files, damaged fonts, the font of each run of text,
the fonts parsed once per process, and conversion in a fresh process as the converting worker
runs it."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader

from coupa_async.emails import ConversionLimits, FontSet, convert_email, find_fonts
from coupa_async.emails.font_cache import add_loaded_font, load_font
from coupa_async.emails.pdf_text import TextFilter
from coupa_async.emails.worker import fonts_data
from coupa_async.sim.outlook import MailAttachment, MailSpec, eml_bytes, msg_bytes
from tests.test_emails_convert import check_language_pdf, language_sequence

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


def test_mails_of_many_languages_in_one_worker_process(tmp_path: Path) -> None:
    """As the service runs them: one worker process converts the mails one after another."""
    if SYSTEM.regular is None or not SYSTEM.fallbacks:
        pytest.skip("needs a Unicode font and a CJK font (fonts-dejavu-core, fonts-droid-fallback)")
    sequence = [
        (case, kind, pdf)
        for kind in ("msg", "eml")
        for case, pdf in language_sequence(tmp_path / kind, kind)
    ]
    requests = "".join(
        json.dumps(
            {
                "path": str(pdf.with_suffix("")),
                "mode": "pdf",
                "fonts": fonts_data(SYSTEM),
                "limits": asdict(ConversionLimits()),
                "timeout_s": 120,
            }
        )
        + "\n"
        for _, _, pdf in sequence
    )
    result = subprocess.run(
        [sys.executable, "-m", "coupa_async.emails.worker"],
        input=requests,
        capture_output=True,
        text=True,
        check=True,
    )
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [answer["outcome"]["error"] for answer in answers] == [None] * len(sequence)
    assert result.stderr == ""
    for case, kind, pdf in sequence:
        check_language_pdf(case, kind, pdf)


def test_runs_keep_latin_words_before_full_width_punctuation_in_the_main_font() -> None:
    regular = needs_unicode_font()
    if not SYSTEM.fallbacks:
        pytest.skip("no CJK font on this machine (install fonts-droid-fallback or fonts-noto-cjk)")
    text = "Sam，您好：PO 4711 报价"
    fonts = FontSet(regular=regular, bold=SYSTEM.bold, fallbacks=SYSTEM.fallbacks)
    text_filter = TextFilter.for_texts([text], fonts, bold_texts=[text])
    main, bold = text_filter.unicode, text_filter.bold
    (cjk,) = text_filter.fallbacks
    assert text_filter.runs(text) == [
        (main, "Sam"),
        (cjk, "，您好："),
        (main, "PO 4711 "),
        (cjk, "报价"),
    ]
    if bold is not None:
        # Bold where the bold face has the letters; the rest in the fallback's regular face.
        assert text_filter.runs(text, bold=True) == [
            (bold, "Sam"),
            (cjk, "，您好："),
            (bold, "PO 4711 "),
            (cjk, "报价"),
        ]
    assert "".join(run for _, run in text_filter.runs(text * 3)) == text * 3


def test_windows_1252_punctuation_is_drawn_with_the_core_font(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    quoted = "Preço “final” – 10 € • ok"
    spec = mail(quoted)
    path.write_bytes(eml_bytes(replace(spec, subject=quoted, attachments=_one_file())))
    outcome = convert_email(path, "pdf", FontSet(regular=None, bold=None, fallbacks=()))
    assert outcome.error is None and not outcome.missing_font
    text = PdfReader(tmp_path / "m.eml.pdf").pages[0].extract_text()
    assert text.count(quoted) == 3  # title, subject and body
    assert "• a.txt — 1 byte" in text


def _one_file() -> tuple[MailAttachment, ...]:
    return (MailAttachment("a.txt", b"x"),)


def test_each_pdf_gets_its_own_copy_of_what_fpdf2_changes_in_a_font() -> None:
    regular = needs_unicode_font()
    loaded = load_font(regular, "mailsans", "")
    assert loaded is not None and loaded is load_font(regular, "mailsans", "")  # parsed once
    first, second = FPDF(), FPDF()
    add_loaded_font(first, loaded)
    add_loaded_font(second, loaded)
    (one,), (two,) = first.fonts.values(), second.fonts.values()
    for attribute in ("subset", "missing_glyphs", "ttfont", "desc"):
        assert getattr(one, attribute) is not getattr(two, attribute), attribute
    assert one.cmap is two.cmap  # read only: shared
    for pdf, text in ((first, "Grüße"), (second, "Olá")):
        pdf.add_page()
        pdf.set_font("mailsans", "", 10)
        pdf.cell(0, 5, text)
    # Written in the other order than made: neither document's glyphs leak into the other.
    second_text = PdfReader(io.BytesIO(second.output())).pages[0].extract_text()
    first_text = PdfReader(io.BytesIO(first.output())).pages[0].extract_text()
    assert (first_text, second_text) == ("Grüße", "Olá")
