"""Reading .msg and .eml files into a Mail: bodies in every form, charsets, nested mails."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import compressed_rtf
import pytest

from coupa_async.emails.errors import MailError
from coupa_async.emails.read import read_mail
from coupa_async.sim import outlook
from coupa_async.sim.outlook import MailAttachment, MailSpec, eml_bytes, msg_bytes

DATE = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


def spec(**fields: object) -> MailSpec:
    values: dict[str, object] = {
        "subject": "Pedido 4711",
        "sender_name": "José",
        "sender_address": "jose@example.com",
        "to": ("Anna <anna@example.com>",),
        "date": DATE,
        "body_text": "corpo",
    }
    return MailSpec(**(values | fields))  # type: ignore[arg-type]


def msg_with_rtf_body(rtf: bytes) -> bytes:
    """A .msg whose only body is the (compressed) RTF one, as Outlook's "Rich Text" mails."""
    tree = outlook._message(spec(body_text=None), embedded=False)
    tree["__substg1.0_10090102"] = compressed_rtf.compress(rtf, compressed=True)
    return outlook.cfb_bytes(tree)


def test_msg_headers() -> None:
    mail = read_mail(msg_bytes(spec(cc=("Jürgen <j@example.de>",))), "m.msg")
    assert mail.subject == "Pedido 4711"
    assert "José" in mail.sender and "jose@example.com" in mail.sender
    assert "Anna" in mail.to and "Jürgen" in mail.cc
    assert mail.date == "Mon, 02 Mar 2026 14:05:00 +0000"
    assert mail.body == "corpo"


def test_msg_rich_text_body_is_read_as_text() -> None:
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Arial;}}{\colortbl;\red0\green0\blue0;}"
        rb"\pard Ol\'e1, segue a cota\'e7\'e3o.\par Gr\'fc\'dfe \u37319?\u36141?\par}"
    )
    assert read_mail(msg_with_rtf_body(rtf), "r.msg").body == "Olá, segue a cotação.\nGrüße 采购"


def test_msg_html_encapsulated_in_rtf_is_read_as_text() -> None:
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}}"
        rb"{\*\htmltag19 <html>}{\*\htmltag34 <body>}{\*\htmltag64 <p>}Ol\'e1 do HTML"
        rb"{\*\htmltag72 </p>}{\*\htmltag64 <p>}segunda linha{\*\htmltag72 </p>}"
        rb"{\*\htmltag42 </body>}{\*\htmltag27 </html>}}"
    )
    assert read_mail(msg_with_rtf_body(rtf), "h.msg").body == "Olá do HTML\n\nsegunda linha"


def test_msg_embedded_message_is_exported_with_its_subject() -> None:
    inner = spec(subject="Re: aprovação", body_text="ok")
    mail = read_mail(msg_bytes(spec(attachments=(MailAttachment("Fwd", mail=inner),))), "o.msg")
    (attachment,) = mail.attachments
    assert attachment.is_mail and attachment.subject == "Re: aprovação"
    assert attachment.name == "Fwd.msg"
    assert attachment.data is not None
    assert read_mail(attachment.data, attachment.name).body == "ok"


def test_eml_nested_message_is_kept_as_eml() -> None:
    inner = spec(subject="Re: aprovação", body_text="ok")
    mail = read_mail(eml_bytes(spec(attachments=(MailAttachment("Fwd", mail=inner),))), "o.eml")
    (attachment,) = mail.attachments
    assert attachment.is_mail and attachment.subject == "Re: aprovação"
    assert attachment.name.endswith(".eml") and attachment.data is not None
    assert read_mail(attachment.data, attachment.name).body.strip() == "ok"


def raw_eml(body: bytes, content_type: str, extra: str = "") -> bytes:
    head = (
        "From: =?utf-8?q?Jos=C3=A9?= <jose@example.com>\r\nTo: anna@example.com\r\n"
        "Subject: =?iso-8859-1?q?Cota=E7=E3o?=\r\nDate: Mon, 02 Mar 2026 14:05:00 +0000\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("Olá, preço".encode("latin-1"), "text/plain; charset=utf-8"),  # mislabelled
        ("Olá, preço".encode("latin-1"), "text/plain; charset=x-unknown-charset"),
        ("Olá, preço".encode(), "text/plain"),  # 8-bit without a charset
        ("Olá, preço".encode("cp1252"), "text/plain; charset=windows-1252"),
    ],
)
def test_eml_charsets_are_tolerated(body: bytes, content_type: str) -> None:
    mail = read_mail(raw_eml(body, content_type, "Content-Transfer-Encoding: 8bit\r\n"), "c.eml")
    assert mail.body == "Olá, preço"
    assert mail.subject == "Cotação" and mail.sender == "José <jose@example.com>"


@pytest.mark.parametrize(
    ("text", "charset"),
    [("“Olá” – €10", "iso-8859-1"), ("采购订单 镕", "gb2312"), ("Grüße", "us-ascii")],
)
def test_eml_labels_are_read_as_their_wider_encoding(text: str, charset: str) -> None:
    wider = {"iso-8859-1": "cp1252", "gb2312": "gb18030", "us-ascii": "cp1252"}[charset]
    data = raw_eml(
        text.encode(wider),
        f"text/plain; charset={charset}",
        "Content-Transfer-Encoding: 8bit\r\n",
    )
    assert read_mail(data, "w.eml").body == text


def test_eml_html_body_uses_its_meta_charset() -> None:
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Olá</p></body></html>'
    data = raw_eml(html.encode("latin-1"), "text/html", "Content-Transfer-Encoding: 8bit\r\n")
    assert read_mail(data, "h.eml").body == "Olá"


def test_eml_unnamed_binary_part_is_an_attachment_with_a_name() -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.com", "scan"
    message.set_content("see attached")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf")
    mail = read_mail(message.as_bytes(policy=SMTP), "s.eml")
    assert [(a.name, a.data) for a in mail.attachments] == [("attachment.pdf", b"%PDF-1.4")]


def test_mime_text_saved_as_msg_is_read() -> None:
    mail = read_mail(eml_bytes(spec()), "saved-by-webmail.msg")
    assert mail.subject == "Pedido 4711"


def test_an_office_file_named_msg_is_not_a_mail() -> None:
    word = outlook.cfb_bytes({"WordDocument": b"\x00" * 5000, "\x05SummaryInformation": b""})
    with pytest.raises(MailError, match="it is another kind of Office file"):
        read_mail(word, "report.msg")


def test_outlook_file_saved_as_eml_is_read() -> None:
    assert read_mail(msg_bytes(spec()), "odd.eml").subject == "Pedido 4711"


def test_deeply_nested_multiparts_are_refused() -> None:
    boundary_lines = []
    for depth in range(60):
        boundary_lines.append(
            f'Content-Type: multipart/mixed; boundary="b{depth}"\r\n\r\n--b{depth}\r\n'
        )
    data = (
        b"From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        + "".join(boundary_lines).encode()
    )
    with pytest.raises(MailError, match="could not be read as an e-mail"):
        read_mail(data, "deep.eml")
