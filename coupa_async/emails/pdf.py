"""A mail rendered as a readable PDF: headers, body, list of attachments, page numbers."""

from __future__ import annotations

from dataclasses import dataclass

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from coupa_async.emails.errors import MailError, reason
from coupa_async.emails.font_cache import add_loaded_font
from coupa_async.emails.fonts import FontSet
from coupa_async.emails.model import Attachment, Mail
from coupa_async.emails.outputs import CREATOR, KEYWORDS_PREFIX
from coupa_async.emails.pdf_text import MAIN_FAMILY, TextFilter
from coupa_async.emails.units import human_size
from coupa_async.emails.wrap import wrap

CORE = "helvetica"
MAX_BODY_CHARS = 1_000_000  # beyond this a body is cut: the PDF is a reading copy
MAX_TITLE_CHARS = 300
_MARGIN_MM = 15.0
_LABEL_MM = 18.0
_LINE_MM = 5.0
_SIZE = 10.0


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    missing_font: bool  # some characters had no font and show as "?"


class _MailPdf(FPDF):
    def __init__(self, family: str, footer_text: str) -> None:
        super().__init__(format="A4")
        self.text_family = family
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-_MARGIN_MM + 3)
        self.set_font(self.text_family, "", 8)
        self.set_text_color(110)
        self.cell(0, 4, self.footer_text, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 4, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)


def render_pdf(mail: Mail, fonts: FontSet, source_name: str) -> RenderedPdf:
    """The PDF of ``mail`` (saved as ``source_name``) using ``fonts``.

    Raises MailError with one sentence if fpdf2 cannot lay the mail out.
    """
    try:
        return _render(mail, fonts, source_name)
    except Exception as exc:  # fpdf2 and fontTools raise many kinds
        raise MailError(f"{source_name} could not be turned into a PDF: {reason(exc)}") from exc


def _render(mail: Mail, fonts: FontSet, source_name: str) -> RenderedPdf:
    body, cut = _cut(mail.body)
    texts = _texts(mail, body, cut, source_name)
    text_filter = TextFilter.for_texts(texts, fonts, bold_texts=(mail.subject, cut))
    pdf = _MailPdf(MAIN_FAMILY if text_filter.unicode else CORE, text_filter(source_name))
    _add_fonts(pdf, text_filter)
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(True, _MARGIN_MM)
    pdf.set_creator(CREATOR)
    # What extraction has to do for this mail: files to save, or broken ones to report.
    to_extract = sum(a.data is not None or a.broken for a in mail.attachments)
    pdf.set_keywords(f"{KEYWORDS_PREFIX}{to_extract}")
    pdf.set_title(text_filter(mail.subject) or source_name)
    pdf.add_page()
    bold = "B" if text_filter.bold or not text_filter.unicode else ""
    family = pdf.text_family

    pdf.set_font(family, bold, 13)
    title = text_filter(mail.subject) or "(no subject)"
    if len(title) > MAX_TITLE_CHARS:
        title = title[:MAX_TITLE_CHARS] + "…"
    pdf.multi_cell(0, 6.5, title, align="L", **_NEXT_LINE)
    pdf.ln(2)
    for label, value in (
        ("From", mail.sender),
        ("To", mail.to),
        ("Cc", mail.cc),
        ("Date", mail.date),
        ("Subject", mail.subject),
    ):
        if value:
            _header_line(pdf, text_filter, bold, label, text_filter(value))
    pdf.ln(2)
    _rule(pdf)
    _paragraphs(pdf, text_filter, text_filter(body) or "(no text)")
    if cut:
        pdf.set_font(family, bold, _SIZE)
        pdf.multi_cell(0, _LINE_MM, text_filter(cut), align="L", **_NEXT_LINE)
    if mail.attachments:
        pdf.ln(3)
        _rule(pdf)
        pdf.set_font(family, bold, _SIZE)
        pdf.multi_cell(0, _LINE_MM, f"Attachments ({len(mail.attachments)})", **_NEXT_LINE)
        lines = "\n".join(attachment_line(attachment) for attachment in mail.attachments)
        _paragraphs(pdf, text_filter, text_filter(lines))
    return RenderedPdf(bytes(pdf.output()), text_filter.missing)


_NEXT_LINE = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}


def attachment_line(attachment: Attachment) -> str:
    """One line of the attachment list: name and size; a nested e-mail by its subject."""
    size = human_size(attachment.size)
    if attachment.data is None:
        return f"• {attachment.name} — not saved: {attachment.note or 'no content'}"
    if attachment.is_mail:
        subject = attachment.subject or "(no subject)"
        return f"• E-mail “{subject}” — {attachment.name}, {size}"
    return f"• {attachment.name} — {size}"


def _cut(body: str) -> tuple[str, str]:
    if len(body) <= MAX_BODY_CHARS:
        return body, ""
    rest = len(body) - MAX_BODY_CHARS
    return body[:MAX_BODY_CHARS], f"[… {rest:,} more characters not shown; see the original]"


def _texts(mail: Mail, body: str, cut: str, source_name: str) -> list[str]:
    lines = [attachment_line(a) for a in mail.attachments]
    headers = [mail.sender, mail.to, mail.cc, mail.date, mail.subject]
    return [*headers, body, cut, source_name, *lines]


def _add_fonts(pdf: FPDF, text_filter: TextFilter) -> None:
    for font in (text_filter.unicode, text_filter.bold, *text_filter.fallbacks):
        if font is not None:
            add_loaded_font(pdf, font)
    if text_filter.fallbacks:
        # Not exact: bold text falls back to the regular face of a fallback font.
        names = [font.family for font in text_filter.fallbacks]
        pdf.set_fallback_fonts(names, exact_match=False)


def _header_line(pdf: FPDF, text_filter: TextFilter, bold: str, label: str, value: str) -> None:
    pdf.set_font(pdf.text_family, bold, _SIZE)
    pdf.cell(_LABEL_MM, _LINE_MM, f"{label}:")
    _paragraphs(pdf, text_filter, value, indent=_LABEL_MM)


def _paragraphs(pdf: _MailPdf, text_filter: TextFilter, text: str, indent: float = 0.0) -> None:
    """``text`` (already filtered) in the regular style, wrapped, from the current line on."""
    pdf.set_font(pdf.text_family, "", _SIZE)
    x = pdf.l_margin + indent
    width = pdf.w - pdf.r_margin - x
    # A little slack: the widths summed here ignore the tiny rounding of the PDF's own.
    for line in wrap(text, _widths(pdf, text_filter, text), width - 0.5):
        pdf.set_x(x)
        pdf.cell(width, _LINE_MM, line, **_NEXT_LINE)


def _widths(pdf: FPDF, text_filter: TextFilter, text: str) -> dict[str, float]:
    """The width of each character of ``text`` in the current font, in the page's unit."""
    widths = {}
    for ch in set(text):
        font = text_filter.font_for(ord(ch))
        if font is None:
            widths[ch] = pdf.get_string_width(ch)
        else:
            widths[ch] = font.template.cw[ord(ch)] * pdf.font_size_pt * 0.001 / pdf.k
    return widths


def _rule(pdf: FPDF) -> None:
    pdf.set_draw_color(160)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.set_draw_color(0)
    pdf.ln(3)
