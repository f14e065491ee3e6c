"""HTML and RTF bodies as text, and the line wrapping of the PDFs."""

from __future__ import annotations

from coupa_async.emails.html_text import html_to_text
from coupa_async.emails.pdf_text import clean
from coupa_async.emails.rtf_text import rtf_to_text
from coupa_async.emails.wrap import wrap


def test_html_blocks_breaks_lists_and_rows_become_lines() -> None:
    html = (
        "<div>Olá,&nbsp;Jo&atilde;o</div><p>Segue a <b>cota&ccedil;&atilde;o</b>\n   do"
        "   pedido.<br>Linha 2</p><ol><li>Item A</li><li>Item <i>B</i></li></ol>"
        "<table><tr><th>Qty</th><th>Price</th></tr><tr><td>2</td><td>&euro; 10</td></tr></table>"
        "<pre>a  b\n  c</pre><p>Gr&uuml;&szlig;e</p>"
    )
    assert html_to_text(html) == (
        "Olá, João\n\nSegue a cotação do pedido.\nLinha 2\n\n• Item A\n• Item B\n\n"
        "Qty | Price\n2 | € 10\n\na  b\n  c\n\nGrüße"
    )


def test_html_scripts_styles_comments_and_head_are_dropped() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body><!-- secret -->"
        "<script>alert(1)</script>visible<noscript>no</noscript><img alt='logo'></body></html>"
    )
    assert html_to_text(html) == "visible[logo]"


def test_html_without_body_and_empty_html() -> None:
    assert html_to_text("just text &amp; more") == "just text & more"
    assert html_to_text("") == ""


def test_html_nested_very_deep_does_not_recurse() -> None:
    html = "<div>" * 20_000 + "deep" + "</div>" * 20_000
    assert html_to_text(html) == "deep"


def test_rtf_text_code_page_unicode_and_skipped_groups() -> None:
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\*\generator Riched20;}"
        rb"{\info{\title hidden}}\pard Ol\'e1\tab x\par \u37319?\u36141? \uc0\u55357\u56832 ok"
        rb"\line \ldblquote q\rdblquote\par}"
    )
    # The space after a control word belongs to it: "\\u56832 ok" is the emoji then "ok".
    assert rtf_to_text(rtf) == "Olá\tx\n采购 😀ok\n“q”"


def test_rtf_multibyte_code_page() -> None:
    rtf = rb"{\rtf1\ansi\ansicpg936 \'b2\'c9\'b9\'ba\par}"
    assert rtf_to_text(rtf) == "采购"


def test_clean_drops_invisible_characters_and_unifies_line_ends() -> None:
    assert clean("a\r\nb\rc\u2028d\te\u200bf\x07g\ufeff\ud800") == "a\nb\nc\nd    efg?"


def widths(text: str, wide: float = 2.0) -> dict[str, float]:
    return {ch: wide if ord(ch) > 0x2E80 else 1.0 for ch in set(text)}


def test_wrap_breaks_at_spaces_within_the_width() -> None:
    text = "aaa bbb ccc ddd"
    assert wrap(text, widths(text), 7) == ["aaa bbb", "ccc ddd"]


def test_wrap_keeps_empty_lines_and_leading_indent() -> None:
    text = "a\n\n  b"
    assert wrap(text, widths(text), 10) == ["a", "", "  b"]


def test_wrap_cuts_a_word_longer_than_the_line() -> None:
    text = "x" * 25
    assert wrap(text, widths(text), 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_wrap_breaks_between_wide_characters() -> None:
    text = "采购订单报价单已附上"  # no spaces, as Chinese is written
    lines = wrap(text, widths(text), 7)
    assert lines == ["采购订", "单报价", "单已附", "上"]


def test_wrap_never_exceeds_the_width_and_loses_nothing() -> None:
    text = " ".join(f"w{n}" * (n % 7 + 1) for n in range(500)) + " 采购订单 fim"
    table = widths(text)
    lines = wrap(text, table, 40)
    assert all(sum(table[c] for c in line) <= 40 for line in lines)
    assert " ".join(lines).split() == text.split()


def test_outlook_html_stays_single_spaced_with_its_blank_lines_and_table_rows() -> None:
    html = (
        "<div class=WordSection1><p class=MsoNormal>Bom dia,<o:p></o:p></p>"
        "<p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Segue a cotação.</p>"
        "<p class=MsoNormal>Att.</p><table class=MsoNormalTable><tr>"
        "<td><p class=MsoNormal>Qty<o:p></o:p></p></td><td><p class=MsoNormal>Price</p></td>"
        "</tr><tr><td><p class=MsoNormal>2</p></td><td><p class=MsoNormal>10</p></td></tr>"
        "</table></div>"
    )
    assert html_to_text(html) == "Bom dia,\n\nSegue a cotação.\nAtt.\n\nQty | Price\n2 | 10"


def test_a_layout_table_cell_keeps_its_paragraphs() -> None:
    html = "<table><tr><td><p>Para 1</p><p>Para 2</p></td><td>side</td></tr></table><p>end</p>"
    assert html_to_text(html) == "Para 1\n\nPara 2\nside\n\nend"
