"""convert_email on real .msg and .eml files: the PDF read back, the attachments, the bounds,
bad mails, and what a rerun does."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from coupa_async.emails import (
    ConversionLimits,
    ConversionOutcome,
    FontSet,
    convert_email,
    find_fonts,
    is_email,
)
from coupa_async.emails.units import human_size
from coupa_async.sim.outlook import MailAttachment, MailSpec, eml_bytes, msg_bytes

FONTS = find_fonts()
KINDS = ("msg", "eml")
WRITERS = {"msg": msg_bytes, "eml": eml_bytes}
PORTUGUESE = "Segue a cotação do pedido: preço, ação e condições."
GERMAN = "Mit freundlichen Grüßen, Straße über Köln."
CHINESE = "采购订单 报价单已附上"
DATE = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


def spec(
    subject: str = "Cotação for PO 4711",
    body_text: str | None = f"{PORTUGUESE}\n{GERMAN}",
    body_html: str | None = None,
    attachments: tuple[MailAttachment, ...] = (),
) -> MailSpec:
    return MailSpec(
        subject=subject,
        sender_name="José Conceição",
        sender_address="jose@fornecedor.example",
        to=("Anna Müller <anna@buyer.example>",),
        cc=("Jürgen Groß <juergen@buyer.example>",),
        date=DATE,
        body_text=body_text,
        body_html=body_html,
        attachments=attachments,
    )


def save(folder: Path, kind: str, mail: MailSpec, stem: str = "Quote") -> Path:
    path = folder / f"{stem}.{kind}"
    path.write_bytes(WRITERS[kind](mail))
    return path


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry below ``folder``: relative path → (inode, mtime_ns)."""
    entries = {}
    for current, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(current, name)
            info = path.stat()
            entries[path.relative_to(folder).as_posix()] = (info.st_ino, info.st_mtime_ns)
    return entries


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_is_email_by_suffix() -> None:
    assert is_email("Quote.MSG") and is_email("a.eml") and not is_email("msg.pdf")


@pytest.mark.parametrize("kind", KINDS)
def test_pdf_shows_headers_body_and_accents(tmp_path: Path, kind: str) -> None:
    path = save(tmp_path, kind, spec())
    outcome = convert_email(path, "pdf", FONTS)
    assert outcome == ConversionOutcome(
        source=f"Quote.{kind}", pdf=f"Quote.{kind}.pdf", extracted=[], skipped=False, error=None
    )
    text = pdf_text(tmp_path / f"Quote.{kind}.pdf")
    for words in ("Cotação for PO 4711", "José Conceição", "jose@fornecedor.example"):
        assert words in text
    for words in ("Anna Müller", "Jürgen Groß", "Mon, 02 Mar 2026 14:05:00 +0000"):
        assert words in text
    assert PORTUGUESE in text and GERMAN in text
    for label in ("From:", "To:", "Cc:", "Date:", "Subject:"):
        assert label in text


def cjk_font_or_skip() -> FontSet:
    if not FONTS.fallbacks:
        pytest.skip("no CJK font on this machine (install fonts-droid-fallback or fonts-noto-cjk)")
    return FONTS


@pytest.mark.parametrize("kind", KINDS)
def test_chinese_subject_and_body_render(tmp_path: Path, kind: str) -> None:
    fonts = cjk_font_or_skip()
    mail = spec(subject=f"{CHINESE} – Cotação", body_text=f"{CHINESE}\n{PORTUGUESE}")
    outcome = convert_email(save(tmp_path, kind, mail), "pdf", fonts)
    assert outcome.error is None and not outcome.missing_font
    text = pdf_text(tmp_path / f"Quote.{kind}.pdf")
    assert f"{CHINESE} – Cotação" in text
    assert CHINESE in text.split("Subject:")[1] and PORTUGUESE in text


def base_fonts(path: Path) -> set[str]:
    names = set()
    for page in PdfReader(path).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def test_cjk_font_is_embedded_only_when_the_text_needs_it(tmp_path: Path) -> None:
    fonts = cjk_font_or_skip()
    latin = save(tmp_path, "eml", spec(), stem="Latin")
    chinese = save(tmp_path, "eml", spec(body_text=CHINESE), stem="Chinese")
    convert_email(latin, "pdf", fonts)
    convert_email(chinese, "pdf", fonts)
    latin_fonts = base_fonts(tmp_path / "Latin.eml.pdf")
    chinese_fonts = base_fonts(tmp_path / "Chinese.eml.pdf")
    assert latin_fonts < chinese_fonts and len(chinese_fonts - latin_fonts) == 1


def test_without_unicode_fonts_the_pdf_is_written_with_question_marks(tmp_path: Path) -> None:
    path = save(tmp_path, "eml", spec(body_text=f"{PORTUGUESE}\n{CHINESE}"))
    outcome = convert_email(path, "pdf", FontSet(regular=None, bold=None, fallbacks=()))
    assert outcome.error is None and outcome.missing_font
    text = pdf_text(tmp_path / "Quote.eml.pdf")
    assert PORTUGUESE in text  # Windows-1252 has these letters
    assert "?????" in text and CHINESE not in text


def test_latin_text_needs_no_fallback_and_no_warning(tmp_path: Path) -> None:
    outcome = convert_email(save(tmp_path, "msg", spec()), "pdf", FONTS)
    assert outcome.error is None and not outcome.missing_font


@pytest.mark.parametrize("kind", KINDS)
def test_html_only_body_becomes_readable_text(tmp_path: Path, kind: str) -> None:
    html = (
        "<html><head><style>p { color: red }</style><title>ignored title</title></head><body>"
        "<p>Ol&aacute;, segue a <b>cota&ccedil;&atilde;o</b>.</p><script>alert('x')</script>"
        "<ul><li>Item A</li><li>Item B</li></ul>"
        "<table><tr><td>Qty</td><td>Price</td></tr><tr><td>2</td><td>&euro; 10</td></tr></table>"
        "<div>Gr&uuml;&szlig;e<br>Anna</div></body></html>"
    )
    outcome = convert_email(
        save(tmp_path, kind, spec(body_text=None, body_html=html)), "pdf", FONTS
    )
    assert outcome.error is None
    text = pdf_text(tmp_path / f"Quote.{kind}.pdf")
    lines = [line.strip() for line in text.splitlines()]
    assert "Olá, segue a cotação." in lines
    assert "• Item A" in lines and "• Item B" in lines
    assert "Qty | Price" in lines and "2 | € 10" in lines
    assert "Grüße" in lines and "Anna" in lines
    body = text.split("Subject: Cotação for PO 4711", 1)[1]
    for hidden in ("<", "alert", "color: red", "ignored title", "&euro;"):
        assert hidden not in body


def test_long_lines_wrap_and_long_bodies_span_pages(tmp_path: Path) -> None:
    long_line = " ".join(f"palavra{n}" for n in range(400))
    body = long_line + "\n" + "\n".join(f"Linha {n} da cotação" for n in range(300))
    convert_email(save(tmp_path, "eml", spec(body_text=body)), "pdf", FONTS)
    reader = PdfReader(tmp_path / "Quote.eml.pdf")
    pages = len(reader.pages)
    assert pages > 3
    text = pdf_text(tmp_path / "Quote.eml.pdf")
    words = text.split()
    assert all(f"palavra{n}" in words for n in range(400))
    assert "Linha 299 da cotação" in text
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text


@pytest.mark.parametrize("kind", KINDS)
def test_attachments_are_extracted_byte_for_byte(tmp_path: Path, kind: str) -> None:
    files = {
        "preço.pdf": os.urandom(150_000),
        "Angebot.xlsx": os.urandom(3_000),
        "notes.txt": "Olá\n".encode(),
    }
    attachments = tuple(MailAttachment(name, data) for name, data in files.items())
    outcome = convert_email(save(tmp_path, kind, spec(attachments=attachments)), "both", FONTS)
    assert outcome.error is None
    folder = f"Quote.{kind}_attachments"
    assert sorted(outcome.extracted) == sorted(f"{folder}/{name}" for name in files)
    for name, data in files.items():
        assert sha((tmp_path / folder / name).read_bytes()) == sha(data)
    text = pdf_text(tmp_path / f"Quote.{kind}.pdf")
    assert "Attachments (3)" in text
    assert "preço.pdf — 146.5 KB" in text and "notes.txt — 5 bytes" in text


@pytest.mark.parametrize("kind", KINDS)
def test_nested_email_is_extracted_and_converted_once(tmp_path: Path, kind: str) -> None:
    inner_file = os.urandom(2_000)
    inner = spec(
        subject="Re: Aprovação do pedido",
        body_text="Aprovado. Grüße",
        attachments=(MailAttachment("assinatura.png", inner_file, "image/png"),),
    )
    outer = spec(attachments=(MailAttachment("Approval", mail=inner),))
    outcome = convert_email(save(tmp_path, kind, outer), "both", FONTS)
    assert outcome.error is None
    top = tmp_path / f"Quote.{kind}_attachments"
    nested = f"Approval.{kind}"
    assert files_in(top) == {
        nested,
        f"{nested}.pdf",
        f"{nested}_attachments/assinatura.png",
    }
    assert sorted(outcome.extracted) == sorted(
        f"Quote.{kind}_attachments/{name}" for name in files_in(top)
    )
    assert sha((top / f"{nested}_attachments/assinatura.png").read_bytes()) == sha(inner_file)
    nested_text = pdf_text(top / f"{nested}.pdf")
    assert "Re: Aprovação do pedido" in nested_text and "Aprovado. Grüße" in nested_text
    outer_text = pdf_text(tmp_path / f"Quote.{kind}.pdf")
    assert "E-mail “Re: Aprovação do pedido”" in outer_text


HOSTILE_NAMES = (
    "../../escape.txt",
    "..\\..\\evil.bat",
    "/etc/passwd",
    "CON",
    "",
    "x" * 300 + ".pdf",
    ".hidden",
    "a/../../b.txt",
)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_attachment_names_stay_inside_the_folder(tmp_path: Path, kind: str) -> None:
    work = tmp_path / "po"
    work.mkdir()
    contents = [f"content {n}".encode() for n in range(len(HOSTILE_NAMES))]
    attachments = tuple(
        MailAttachment(name, data) for name, data in zip(HOSTILE_NAMES, contents, strict=True)
    )
    outcome = convert_email(save(work, kind, spec(attachments=attachments)), "extract", FONTS)
    assert outcome.error is None
    folder = work / f"Quote.{kind}_attachments"
    assert {p.name for p in tmp_path.iterdir()} == {"po"}
    assert {p.name for p in work.iterdir()} == {f"Quote.{kind}", folder.name}
    written = list(folder.iterdir())
    assert len(written) == len(HOSTILE_NAMES)
    for path in written:
        assert path.resolve().parent == folder.resolve()
        assert not path.name.startswith(".") and path.name.upper() != "CON"
        assert len(path.name.encode()) <= 240
    assert sorted(sha(p.read_bytes()) for p in written) == sorted(map(sha, contents))


def nested_chain(levels: int) -> MailSpec:
    mail = spec(subject=f"level {levels}", attachments=(MailAttachment("leaf.txt", b"leaf"),))
    for level in range(levels - 1, 0, -1):
        mail = spec(subject=f"level {level}", attachments=(MailAttachment(f"m{level}", mail=mail),))
    return mail


@pytest.mark.parametrize(
    ("limits", "bound"),
    [
        (ConversionLimits(max_attachments=2), "max_attachments"),
        (ConversionLimits(max_total_bytes=10_000), "max_total_bytes"),
    ],
)
def test_bounds_stop_extraction_and_keep_what_was_written(
    tmp_path: Path, limits: ConversionLimits, bound: str
) -> None:
    files = [os.urandom(6_000) for _ in range(4)]
    attachments = tuple(MailAttachment(f"f{n}.bin", data) for n, data in enumerate(files))
    outcome = convert_email(
        save(tmp_path, "msg", spec(attachments=attachments)), "both", FONTS, limits
    )
    assert outcome.error is not None and bound in outcome.error
    assert outcome.pdf == "Quote.msg.pdf"
    folder = tmp_path / "Quote.msg_attachments"
    kept = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert kept == ["f0.bin"] if bound == "max_total_bytes" else ["f0.bin", "f1.bin"]
    assert outcome.extracted == [f"Quote.msg_attachments/{name}" for name in kept]
    # Not taken for done: the rerun meets the bound again and says so.
    again = convert_email(tmp_path / "Quote.msg", "both", FONTS, limits)
    assert not again.skipped and again.error is not None and bound in again.error


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_deeper_than_the_bound_is_an_error(tmp_path: Path, kind: str) -> None:
    path = save(tmp_path, kind, nested_chain(3))
    outcome = convert_email(path, "both", FONTS, ConversionLimits(max_depth=1))
    assert outcome.error is not None and "max_depth" in outcome.error
    top = tmp_path / f"Quote.{kind}_attachments"
    assert (top / f"m1.{kind}.pdf").is_file()  # depth 1 converted
    assert (top / f"m1.{kind}_attachments/m2.{kind}").is_file()  # depth 2 saved, not converted
    assert not (top / f"m1.{kind}_attachments/m2.{kind}.pdf").exists()


def test_default_depth_converts_three_levels(tmp_path: Path) -> None:
    outcome = convert_email(save(tmp_path, "eml", nested_chain(4)), "both", FONTS)
    assert outcome.error is None
    deepest = "Quote.eml_attachments/m1.eml_attachments/m2.eml_attachments/m3.eml.pdf"
    assert deepest in outcome.extracted
    assert sum(name.endswith(".pdf") for name in outcome.extracted) == 3


def test_input_larger_than_the_bound_is_not_read(tmp_path: Path) -> None:
    path = save(tmp_path, "msg", spec(attachments=(MailAttachment("big.bin", bytes(50_000)),)))
    outcome = convert_email(path, "both", FONTS, ConversionLimits(max_input_bytes=20_000))
    assert outcome.error is not None and "max_input_bytes" in outcome.error
    assert outcome.pdf is None and outcome.extracted == []
    assert {p.name for p in tmp_path.iterdir()} == {"Quote.msg"}


BAD_MAILS = {
    "ole-garbage.msg": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(3_000),
    "not-ole.msg": b"PK\x03\x04 this is a zip, not an Outlook message" + os.urandom(500),
    "empty.msg": b"",
}


@pytest.mark.parametrize("name", sorted(BAD_MAILS))
def test_unreadable_msg_gives_an_error_and_leaves_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_MAILS[name])
    outcome = convert_email(path, "both", FONTS)
    assert outcome.error is not None
    assert outcome.error.startswith(f"{name} could not be read as an Outlook message")
    assert "\n" not in outcome.error
    assert outcome.pdf is None and outcome.extracted == [] and not outcome.skipped
    assert path.read_bytes() == BAD_MAILS[name]
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_truncated_eml_gives_an_error(tmp_path: Path) -> None:
    attachments = (MailAttachment("preço.pdf", os.urandom(20_000), "application/pdf"),)
    data = eml_bytes(spec(attachments=attachments))
    cut = data[: len(data) * 2 // 3]
    path = tmp_path / "Quote.eml"
    path.write_bytes(cut)
    outcome = convert_email(path, "both", FONTS)
    assert outcome.error is not None and outcome.error.startswith("Quote.eml could not be read")
    assert path.read_bytes() == cut
    assert [p.name for p in tmp_path.iterdir()] == ["Quote.eml"]


def test_a_text_file_named_eml_is_not_a_mail(tmp_path: Path) -> None:
    path = tmp_path / "notes.eml"
    path.write_text("just some notes\nwithout any headers\n")
    outcome = convert_email(path, "pdf", FONTS)
    assert outcome.error == "notes.eml could not be read as an e-mail: it has no mail headers"


@pytest.mark.parametrize("kind", KINDS)
def test_second_call_skips_and_touches_nothing(tmp_path: Path, kind: str) -> None:
    attachments = (
        MailAttachment("a.txt", b"a"),
        MailAttachment(
            "inner", mail=spec(subject="inner", attachments=(MailAttachment("b.txt", b"b"),))
        ),
    )
    path = save(tmp_path, kind, spec(attachments=attachments))
    first = convert_email(path, "both", FONTS)
    assert not first.skipped and first.error is None
    before = tree(tmp_path)
    second = convert_email(path, "both", FONTS)
    assert second.skipped and second.error is None
    assert second.pdf == first.pdf and second.extracted == first.extracted
    assert tree(tmp_path) == before


def test_a_source_newer_than_its_outputs_is_redone(tmp_path: Path) -> None:
    path = save(tmp_path, "msg", spec(attachments=(MailAttachment("a.txt", b"a"),)))
    convert_email(path, "both", FONTS)
    pdf = tmp_path / "Quote.msg.pdf"
    old_inode = pdf.stat().st_ino
    # The mail changes: another attachment, and a modification time after the outputs'.
    path.write_bytes(msg_bytes(spec(attachments=(MailAttachment("b.txt", b"b"),))))
    later = pdf.stat().st_mtime_ns + 10_000_000_000
    os.utime(path, ns=(later, later))
    redone = convert_email(path, "both", FONTS)
    assert not redone.skipped and redone.error is None
    assert pdf.stat().st_ino != old_inode
    assert redone.extracted == ["Quote.msg_attachments/b.txt"]
    assert convert_email(path, "both", FONTS).skipped


def test_an_interrupted_conversion_is_cleaned_and_redone(tmp_path: Path) -> None:
    path = save(tmp_path, "eml", spec(attachments=(MailAttachment("a.txt", b"a"),)))
    partial = tmp_path / ".Quote.eml_attachments.partial"
    partial.mkdir()
    (partial / "a.txt").write_bytes(b"half")
    (tmp_path / ".Quote.eml.pdf.0123abcd.tmp").write_bytes(b"%PDF-1.4 half")
    outcome = convert_email(path, "both", FONTS)
    assert outcome.error is None and not outcome.skipped
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Quote.eml",
        "Quote.eml.pdf",
        "Quote.eml_attachments",
    ]
    assert (tmp_path / "Quote.eml_attachments/a.txt").read_bytes() == b"a"


def test_a_pdf_of_the_same_name_that_is_not_ours_is_kept(tmp_path: Path) -> None:
    path = save(tmp_path, "msg", spec())
    theirs = tmp_path / "Quote.msg.pdf"
    theirs.write_bytes(b"%PDF-1.4 the supplier's own file")
    outcome = convert_email(path, "pdf", FONTS)
    assert outcome.pdf == "Quote.msg (e-mail).pdf"
    assert theirs.read_bytes() == b"%PDF-1.4 the supplier's own file"
    assert "Cotação for PO 4711" in pdf_text(tmp_path / "Quote.msg (e-mail).pdf")
    assert convert_email(path, "pdf", FONTS).skipped


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("off", set()),
        ("pdf", {"Quote.msg.pdf"}),
        ("extract", {"Quote.msg_attachments/a.txt"}),
        ("both", {"Quote.msg.pdf", "Quote.msg_attachments/a.txt"}),
    ],
)
def test_each_mode_writes_only_its_part(tmp_path: Path, mode: str, expected: set[str]) -> None:
    path = save(tmp_path, "msg", spec(attachments=(MailAttachment("a.txt", b"a"),)))
    outcome = convert_email(path, mode, FONTS)  # type: ignore[arg-type]
    assert outcome.error is None
    assert files_in(tmp_path) - {"Quote.msg"} == expected
    assert outcome.pdf == ("Quote.msg.pdf" if "Quote.msg.pdf" in expected else None)
    assert convert_email(path, mode, FONTS).skipped  # type: ignore[arg-type]


def test_a_mail_without_attachments_gets_no_folder(tmp_path: Path) -> None:
    path = save(tmp_path, "eml", spec())
    first = convert_email(path, "both", FONTS)
    assert first.extracted == [] and not first.skipped
    assert {p.name for p in tmp_path.iterdir()} == {"Quote.eml", "Quote.eml.pdf"}
    assert convert_email(path, "both", FONTS).skipped
    assert convert_email(path, "extract", FONTS).skipped


def test_unknown_mode_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        convert_email(save(tmp_path, "eml", spec()), "html", FONTS)  # type: ignore[arg-type]


def test_outputs_of_a_mail_that_became_unreadable_are_removed(tmp_path: Path) -> None:
    path = save(tmp_path, "msg", spec(attachments=(MailAttachment("a.txt", b"a"),)))
    convert_email(path, "both", FONTS)
    damaged = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000)
    path.write_bytes(damaged)
    later = (tmp_path / "Quote.msg.pdf").stat().st_mtime_ns + 10_000_000_000
    os.utime(path, ns=(later, later))
    outcome = convert_email(path, "both", FONTS)
    assert outcome.error is not None and outcome.pdf is None and outcome.extracted == []
    assert [p.name for p in tmp_path.iterdir()] == ["Quote.msg"]
    assert path.read_bytes() == damaged


# A worker converts mails of many languages one after another, the fonts parsed once. Each PDF
# must show every line as written, in the face meant for it: fpdf2's fallback fonts once left a
# line beginning with Latin letters after a line ending in Chinese drawn in the bold of the last
# header label with the regular font's glyph codes ("Sam，您好：" came out as "b7m，您好：").


@dataclass(frozen=True)
class LanguageCase:
    stem: str
    spec: MailSpec
    body_lines: tuple[str, ...]  # the body's lines as the PDF shows them


def _language_case(
    stem: str,
    subject: str,
    sender: tuple[str, str],
    to: tuple[str, ...],
    body: tuple[str, ...],
    attachments: tuple[str, ...],
    html: bool = False,
) -> LanguageCase:
    text = "\n".join(body)
    markup = "".join(f"<p>{escape(line)}</p>" for line in body)
    mail = MailSpec(
        subject=subject,
        sender_name=sender[0],
        sender_address=sender[1],
        to=to,
        date=DATE,
        body_text=None if html else text,
        body_html=f"<html><body>{markup}</body></html>" if html else None,
        attachments=tuple(MailAttachment(name, name.encode() * 3) for name in attachments),
    )
    return LanguageCase(stem, mail, body)


LANGUAGE_CASES = (
    _language_case(
        "english",
        "Quote for PO 4711",
        ("Anna Smith", "anna@supplier.example"),
        ("Sam Lee <sam@buyer.example>",),
        ("Hello Sam,", "please find our quote for PO 4711 attached.", "Best regards, Anna"),
        ("Quote 4711.pdf",),
    ),
    _language_case(
        "german",
        "Angebot für Straßenbau – Größe XL",
        ("Jürgen Groß", "juergen@lieferant.example"),
        ("Anna Müller <anna@buyer.example>", "Bernd Weiß <bernd@buyer.example>"),
        ("Sehr geehrte Frau Müller,", "anbei das Angebot für die Straße 5.", "Grüße, Jürgen Groß"),
        ("Übersicht Maße.xlsx",),
        html=True,
    ),
    _language_case(
        "portuguese",
        "Cotação nº 4711 – ação imediata",
        ("José Conceição", "jose@fornecedor.example"),
        ("João Simões <joao@buyer.example>",),
        ("Olá João,", "segue a cotação com preço e condições.", "Atenciosamente, Conceição"),
        ("cotação preço.pdf", "condições.txt"),
    ),
    _language_case(
        "chinese",
        "采购订单 15756862 报价",
        ("王小明", "wang@supplier.example"),
        ("Sam Lee <sam@buyer.example>", "陈静 <chen@buyer.example>"),
        (
            "Sam，您好：",
            "附件是采购订单 15756862 的报价单。",
            "PO 4711 的 Excel 文件（价格表）请查收！",
            "Thanks，王小明",
        ),
        ("价格表.xlsx", "Quote（报价）v2.pdf"),
    ),
    _language_case(
        "chinese-html",
        "RE: Anna，报价单（PO 4711）",
        ("陈静", "chen@buyer.example"),
        ("陈静 <chen@buyer.example>", "Anna Smith <anna@supplier.example>"),
        ("Anna，你好：", "请看 Excel 表格（附件），PO 4711。", "谢谢！Best regards"),
        ("报价单 PO4711.pdf",),
        html=True,
    ),
)


def squash(text: str) -> str:
    return "".join(text.split())


TO_SEPARATORS = {"msg": "; ", "eml": ", "}  # how each kind of mail lists its recipients


def expected_lines(case: LanguageCase, kind: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    """The title, the header lines as (label, value), and the other lines of the PDF."""
    mail = case.spec
    headers = [
        ("From:", f"{mail.sender_name} <{mail.sender_address}>"),
        ("To:", TO_SEPARATORS[kind].join(mail.to)),
        ("Date:", format_datetime(mail.date)),
        ("Subject:", mail.subject),
    ]
    names = [f"• {a.name} — {human_size(len(a.data or b''))}" for a in mail.attachments]
    return mail.subject, headers, [*case.body_lines, *names]


def bold_font_name() -> str | None:
    """The name fpdf2 gives the bold font in a PDF (as in its /BaseFont), if there is one."""
    if FONTS.bold is None:
        return None
    with TTFont(FONTS.bold, lazy=True) as font:
        return re.sub("[ ()]", "", font["name"].getBestFullName())


def drawn_lines(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Each line of text drawn in the PDF (its text without white space) → its runs as
    (text, font name), read by pypdf with the font in effect for each."""
    lines = {}
    for page in PdfReader(path).pages:
        runs: dict[float, list[tuple[float, str, str]]] = {}

        def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
            if text.strip():
                name = str(font["/BaseFont"]).split("+")[-1] if font else ""
                y = round(tm[5] + cm[5], 1)
                runs.setdefault(y, []).append((tm[4] + cm[4], text, name))  # noqa: B023

        page.extract_text(visitor_text=visit)
        for parts in runs.values():
            ordered = [(text, name) for _, text, name in sorted(parts)]
            lines[squash("".join(text for text, _ in ordered))] = ordered
    return lines


def check_language_pdf(case: LanguageCase, kind: str, pdf: Path) -> None:
    """Every line of ``case``'s PDF is its exact text, and only title and labels are bold."""
    title, headers, lines = expected_lines(case, kind)
    extracted = {squash(line) for line in pdf_text(pdf).splitlines()}
    expected = [title, *(f"{label} {value}" for label, value in headers), *lines]
    for line in expected:
        assert squash(line) in extracted, f"{case.stem}: {line!r} not in the PDF's text"
    bold = bold_font_name()
    if bold is None:
        return
    drawn = drawn_lines(pdf)
    title_runs = drawn[squash(title)]
    assert any(name == bold for _, name in title_runs), (case.stem, title_runs)
    # The title is bold where the bold face has the characters, else in a fallback font.
    regular = {name for runs in drawn.values() for _, name in runs} - {bold}
    assert all(name == bold or name in regular for _, name in title_runs)
    for label, value in headers:
        runs = drawn[squash(f"{label} {value}")]
        assert squash("".join(t for t, name in runs if name == bold)) == squash(label), (
            case.stem,
            runs,
        )
    for line in lines:
        runs = drawn[squash(line)]
        assert all(name != bold for _, name in runs), (case.stem, line, runs)
    heading = drawn[squash(f"Attachments ({len(case.spec.attachments)})")]
    assert all(name == bold for _, name in heading)


def language_sequence(folder: Path, kind: str) -> list[tuple[LanguageCase, Path]]:
    """The mails of LANGUAGE_CASES saved in ``folder``: (case, its PDF to be)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        (case, save(folder, kind, case.spec, stem=case.stem).with_suffix(f".{kind}.pdf"))
        for case in LANGUAGE_CASES
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_mails_of_many_languages_in_one_process_keep_their_text_and_faces(
    tmp_path: Path, kind: str
) -> None:
    fonts = cjk_font_or_skip()
    sequence = language_sequence(tmp_path, kind)
    # Twice in a row, the second round with the fonts parsed and lent many times already.
    for round_ in range(2):
        for _case, pdf in sequence:
            pdf.unlink(missing_ok=True)
            outcome = convert_email(pdf.with_suffix(""), "pdf", fonts)
            assert outcome.error is None and not outcome.missing_font, (round_, outcome)
        for case, pdf in sequence:
            check_language_pdf(case, kind, pdf)
