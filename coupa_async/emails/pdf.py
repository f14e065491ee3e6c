"""A mail rendered as a readable PDF: headers, body, list of attachments, page numbers."""

from __future__ import annotations

from dataclasses import dataclass

from fpdf import FPDF

from coupa_async.emails.errors import MailError, reason
from coupa_async.emails.font_cache import LoadedFont, add_loaded_font
from coupa_async.emails.fonts import FontSet
from coupa_async.emails.model import Attachment, Mail
from coupa_async.emails.outputs import CREATOR, KEYWORDS_PREFIX
from coupa_async.emails.pdf_text import TextFilter
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
    """The mail's PDF; all its text is drawn by ``_Writer``."""

    def __init__(self, text_filter: TextFilter, footer_text: str) -> None:
        super().__init__(format="A4")
        # The core font's text is filtered to Windows-1252, which its encoding in the PDF is.
        self.core_fonts_encoding = "windows-1252"
        self.writer = _Writer(self, text_filter)
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-_MARGIN_MM + 3)
        self.set_text_color(110)
        self.writer.line(self.footer_text, self.l_margin, size=8, height=4)
        self.writer.set_font(bold=False, size=8)
        self.cell(0, 4, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)


class _Writer:
    """Lines of text drawn run by run, each run in the font chosen for its characters.

    fpdf2's fallback fonts (``set_fallback_fonts``) are not used: fpdf2 2.8.9 sets the font of a
    line beginning with fallback text inside the line's ``q … Q`` and then takes it as the page's
    font, so the next line in the main font is drawn in whatever font was set before (the bold
    of a header label, say) with the main font's glyph codes: wrong letters in the wrong face.
    Here every change of font goes through ``set_font`` and is written outside any ``q … Q``.
    """

    def __init__(self, pdf: FPDF, text_filter: TextFilter) -> None:
        self.pdf = pdf
        self.text_filter = text_filter
        self.has_bold = text_filter.bold is not None or text_filter.unicode is None

    def set_font(
        self, font: LoadedFont | None = None, bold: bool = False, size: float = _SIZE
    ) -> None:
        """Select ``font`` (None: the main font, or the core font) in ``size`` points."""
        if font is None:
            font = self.text_filter.bold if bold and self.has_bold else self.text_filter.unicode
        if font is None:
            self.pdf.set_font(CORE, "B" if bold else "", size)
        else:
            self.pdf.set_font(font.family, font.style, size)

    def widths(self, text: str, bold: bool, size: float) -> dict[str, float]:
        """The width of each character of ``text`` as drawn, in the page's unit."""
        pdf = self.pdf
        scale = size * 0.001 / pdf.k
        widths = {}
        for ch in set(text):
            font = self.text_filter.font_for(ord(ch), bold)
            if font is None:
                self.set_font(None, bold, size)
                widths[ch] = pdf.get_string_width(ch)
            else:
                widths[ch] = font.template.cw.get(ord(ch), 0) * scale
        return widths

    def line(
        self,
        text: str,
        x: float,
        bold: bool = False,
        size: float = _SIZE,
        height: float = _LINE_MM,
        widths: dict[str, float] | None = None,
    ) -> None:
        """Draw one line of ``text`` in a box from ``x`` on the current line.

        The text starts and sits where fpdf2's ``cell`` of ``height`` would put it; the current
        position stays.
        """
        pdf = self.pdf
        bold = bold and self.has_bold
        if widths is None:
            widths = self.widths(text, bold, size)
        x += pdf.c_margin
        baseline = pdf.y + 0.5 * height + 0.3 * size / pdf.k
        for font, run in self.text_filter.runs(text, bold):
            self.set_font(font, bold, size)
            pdf.text(x, baseline, run)
            x += sum(widths[ch] for ch in run)

    def paragraphs(
        self,
        text: str,
        indent: float = 0.0,
        bold: bool = False,
        size: float = _SIZE,
        height: float = _LINE_MM,
    ) -> None:
        """``text`` (already filtered) wrapped, from the current line on, a new page as needed."""
        pdf = self.pdf
        bold = bold and self.has_bold
        x = pdf.l_margin + indent
        width = pdf.w - pdf.r_margin - x - pdf.c_margin
        widths = self.widths(text, bold, size)
        # A little slack for the rounding of the positions written in the PDF.
        for line in wrap(text, widths, width - 0.5):
            self.new_line_room(height)
            self.line(line, x, bold, size, height, widths)
            pdf.ln(height)

    def new_line_room(self, height: float) -> None:
        """A new page if a line of ``height`` does not fit on this one."""
        if self.pdf.will_page_break(height):
            self.pdf.add_page(same=True)


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
    pdf = _MailPdf(text_filter, text_filter(source_name))
    for font in (text_filter.unicode, text_filter.bold, *text_filter.fallbacks):
        if font is not None:
            add_loaded_font(pdf, font)
    writer = pdf.writer
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(True, _MARGIN_MM)
    pdf.set_creator(CREATOR)
    # What extraction has to do for this mail: files to save, or broken ones to report.
    to_extract = sum(a.data is not None or a.broken for a in mail.attachments)
    pdf.set_keywords(f"{KEYWORDS_PREFIX}{to_extract}")
    pdf.set_title(text_filter(mail.subject) or source_name)
    pdf.add_page()

    title = text_filter(mail.subject) or "(no subject)"
    if len(title) > MAX_TITLE_CHARS:
        title = title[:MAX_TITLE_CHARS] + "…"
    writer.paragraphs(title, bold=True, size=13, height=6.5)
    pdf.ln(2)
    for label, value in (
        ("From", mail.sender),
        ("To", mail.to),
        ("Cc", mail.cc),
        ("Date", mail.date),
        ("Subject", mail.subject),
    ):
        if value:
            writer.new_line_room(_LINE_MM)
            writer.line(f"{label}:", pdf.l_margin, bold=True)
            writer.paragraphs(text_filter(value), indent=_LABEL_MM)
    pdf.ln(2)
    _rule(pdf)
    writer.paragraphs(text_filter(body) or "(no text)")
    if cut:
        writer.paragraphs(text_filter(cut), bold=True)
    if mail.attachments:
        pdf.ln(3)
        _rule(pdf)
        writer.paragraphs(f"Attachments ({len(mail.attachments)})", bold=True)
        lines = "\n".join(attachment_line(attachment) for attachment in mail.attachments)
        writer.paragraphs(text_filter(lines))
    return RenderedPdf(bytes(pdf.output()), text_filter.missing)


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


def _rule(pdf: FPDF) -> None:
    pdf.set_draw_color(160)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.set_draw_color(0)
    pdf.ln(3)
