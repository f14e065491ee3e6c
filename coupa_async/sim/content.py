"""Deterministic file bytes: generated chunk by chunk from seed and file id, never held whole.

A file is `prefix + filler + suffix`. The prefix and suffix carry the format's signature
(`%PDF-1.4` ... `%%EOF`, the zip header of `.docx`/`.xlsx`); the filler is a pseudo-random
64 KiB block whose first bytes are replaced by the block number, so every chunk differs and an
offset mistake changes the SHA-256.

E-mail files (`.msg`, `.eml`) are real messages instead: a `MailSpec` drawn from the seed and
file id (shaped by the recipe's `MailTraits`) written by `outlook.py`; they are small, so they
are built whole and served in slices. A malformed `.msg` is the OLE signature then filler.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from .outlook import MailAttachment, MailSpec, eml_bytes, msg_bytes

FileType = Literal["pdf", "msg", "eml", "docx", "xlsx", "txt"]
FILE_TYPES: tuple[FileType, ...] = ("pdf", "msg", "eml", "docx", "xlsx", "txt")
MAIL_TYPES: tuple[FileType, ...] = ("msg", "eml")

CHUNK_SIZE = 64 * 1024

CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "msg": "application/vnd.ms-outlook",
    "eml": "message/rfc822",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "txt": "text/plain; charset=utf-8",
}

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
PDF_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
PDF_EOF = b"%%EOF"

_TEXT_ALPHABET = b"abcdefghijklmnopqrstuvwxyz       ,.\n"
# Maps every byte value onto printable text so a random block becomes plausible prose.
_TEXT_TABLE = bytes(_TEXT_ALPHABET[i % len(_TEXT_ALPHABET)] for i in range(256))


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file of a given size is put together."""

    prefix: bytes
    filler_length: int
    suffix: bytes


def _pdf_layout(size: int) -> Layout:
    """A small but well-formed PDF: one blank page plus one unreferenced stream as filler."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    head = bytearray(PDF_HEADER)
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(head))
        head += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    stream_offset = len(head)
    filler = max(0, size - 400)
    for _ in range(4):  # the lengths appear inside the text, so settle them by iteration
        prefix = bytes(head) + b"4 0 obj\n<< /Length %d >>\nstream\n" % filler
        xref_offset = len(prefix) + filler + len(b"\nendstream\nendobj\n")
        xref = b"xref\n0 5\n0000000000 65535 f \n" + b"".join(
            b"%010d 00000 n \n" % off for off in [*offsets, stream_offset]
        )
        suffix = (
            b"\nendstream\nendobj\n"
            + xref
            + b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n" % xref_offset
            + PDF_EOF
        )
        wanted = size - len(prefix) - len(suffix)
        if wanted == filler:
            return Layout(prefix, filler, suffix)
        if wanted < 0:
            break
        filler = wanted
    # Too small for the full structure: header, filler, end marker.
    short = PDF_HEADER[:9]
    if size >= len(short) + len(PDF_EOF):
        return Layout(short, size - len(short) - len(PDF_EOF), PDF_EOF)
    return Layout((short + PDF_EOF)[:size], 0, b"")


def layout(file_type: str, size: int) -> Layout:
    """The fixed parts of a file of this type and size."""
    if file_type == "pdf":
        return _pdf_layout(size)
    if file_type == "msg":
        prefix = OLE_MAGIC
    elif file_type in ("docx", "xlsx"):
        prefix = ZIP_MAGIC
    else:
        prefix = b""
    prefix = prefix[:size]
    return Layout(prefix, size - len(prefix), b"")


def _block(seed: int, file_id: int, file_type: str) -> bytes:
    block = random.Random(f"coupa-sim-file:{seed}:{file_id}").randbytes(CHUNK_SIZE)
    if file_type == "txt":
        block = block.translate(_TEXT_TABLE)
    return block


def _filler_chunk(block: bytes, index: int, text: bool) -> bytes:
    mark = b"%07d\n" % (index % 10_000_000) if text else index.to_bytes(8, "little")
    return mark + block[len(mark) :]


def iter_content(
    seed: int,
    file_id: int,
    file_type: str,
    size: int,
    chunk_size: int = CHUNK_SIZE,
    mail: MailTraits | None = None,
) -> Iterator[bytes]:
    """Yield the file's bytes in pieces of at most about `chunk_size` bytes.

    An e-mail file's size is fixed by its content (`content_size`); another size raises
    ValueError."""
    if is_mail(file_type, mail):
        data = mail_bytes(seed, file_id, file_type, mail or MailTraits())
        if len(data) != size:
            raise ValueError(f"e-mail file {file_id} is {len(data)} bytes, not {size}")
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]
        return
    parts = layout(file_type, size)
    block = _block(seed, file_id, file_type)
    text = file_type == "txt"

    def pieces() -> Iterator[bytes]:
        if parts.prefix:
            yield parts.prefix
        left = parts.filler_length
        index = 0
        while left > 0:
            chunk = _filler_chunk(block, index, text)
            if left < len(chunk):
                chunk = chunk[:left]
            left -= len(chunk)
            index += 1
            yield chunk
        if parts.suffix:
            yield parts.suffix

    if chunk_size >= CHUNK_SIZE and size <= chunk_size:
        yield b"".join(pieces())
        return
    buffer = b""
    for piece in pieces():
        if buffer and len(buffer) + len(piece) > chunk_size:
            yield buffer
            buffer = b""
        if len(piece) >= chunk_size:
            yield piece
        else:
            buffer += piece
    if buffer:
        yield buffer


def content_sha256(
    seed: int, file_id: int, file_type: str, size: int, mail: MailTraits | None = None
) -> str:
    """Hex SHA-256 of the file, computed by streaming the same pieces that are served."""
    digest = hashlib.sha256()
    for piece in iter_content(seed, file_id, file_type, size, mail=mail):
        digest.update(piece)
    return digest.hexdigest()


def content_bytes(
    seed: int, file_id: int, file_type: str, size: int, mail: MailTraits | None = None
) -> bytes:
    """The whole file in memory; for small files and tests only."""
    return b"".join(iter_content(seed, file_id, file_type, size, mail=mail))


def content_size(seed: int, file_id: int, file_type: str, mail: MailTraits | None) -> int | None:
    """The size an e-mail file's content fixes; None for files of any size."""
    if not is_mail(file_type, mail):
        return None
    return len(mail_bytes(seed, file_id, file_type, mail or MailTraits()))


# ---------------------------------------------------------------------------------------------
# E-mail files

Language = Literal["en", "pt", "de", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "pt", "de", "zh")
BodyKind = Literal["plain", "html", "both"]
HOSTILE_MAIL_NAMES = ("../../escape.txt", "..\\..\\evil.bat")


@dataclass(frozen=True, slots=True)
class MailTraits:
    """What a recipe asks of an e-mail file; whatever is None is drawn from seed and file id."""

    language: Language | None = None
    attachments: int | None = None  # file attachments (0-3), besides a hostile one
    nested: bool | None = None  # an e-mail attached inside (with one attachment of its own)
    body: BodyKind | None = None
    hostile_name: str | None = None  # one more attachment, named so
    malformed: bool = False  # the OLE signature then garbage: no e-mail at all


def is_mail(file_type: str, mail: MailTraits | None) -> bool:
    """Whether the file is a real e-mail (a malformed one is plain filler)."""
    return file_type in MAIL_TYPES and not (mail is not None and mail.malformed)


_ZONES: dict[Language, timezone] = {
    "en": timezone(timedelta(hours=-5)),
    "pt": timezone(timedelta(hours=-3)),
    "de": timezone(timedelta(hours=1)),
    "zh": timezone(timedelta(hours=8)),
}
_SUBJECTS: dict[Language, tuple[str, ...]] = {
    "en": (
        "Quote for PO {po}",
        "Re: Approval of PO {po}",
        "FW: Delivery schedule for PO {po}",
        "Invoice {ref} for PO {po}",
    ),
    "pt": (
        "Cotação para o pedido {po}",
        "Re: Aprovação do pedido de compra {po}",
        "Confirmação de entrega – pedido {po}",
        "Nota fiscal {ref} – pedido {po}",
    ),
    "de": (
        "Angebot für Bestellung {po} – Größe prüfen",
        "AW: Freigabe der Bestellung {po} – Rückfrage zur Maßeinheit",
        "Lieferbestätigung für Auftrag {po} (Größe, Menge)",
        "Rechnung {ref} zur Bestellung {po} – Grüße",
    ),
    "zh": (
        "采购订单 {po} 报价",
        "回复：采购订单 {po} 审批",
        "转发：采购订单 {po} 交货日期",
        "发票 {ref}（采购订单 {po}）",
    ),
}
_SENDERS: dict[Language, tuple[tuple[str, str], ...]] = {
    "en": (
        ("Jane Miller", "jane.miller@acme-supply.example"),
        ("Priya Raman", "priya.raman@northwind.example"),
    ),
    "pt": (
        ("João Conceição", "joao.conceicao@cafepaulista.example"),
        ("Ana Gonçalves", "ana.goncalves@saojoao-log.example"),
    ),
    "de": (
        ("Jürgen Weiß", "juergen.weiss@mueller-soehne.example"),
        ("Änne Groß", "aenne.gross@zuerich-precision.example"),
    ),
    "zh": (
        ("王小明", "wang.xiaoming@huaxin-supply.example"),
        ("李娜", "li.na@huaxin-supply.example"),
    ),
}
_BUYERS: tuple[str, ...] = (
    "Procurement Team <procurement@buyer.example>",
    "Maria Silva <maria.silva@buyer.example>",
    "Klaus Müller <klaus.mueller@buyer.example>",
    "Chen Wei <chen.wei@buyer.example>",
    "Accounts Payable <ap@buyer.example>",
    "Sam Lee <sam.lee@buyer.example>",
    "陈静 <chen.jing@buyer.example>",
)
_BODIES: dict[Language, tuple[str, tuple[str, ...], str, str]] = {
    # (greeting, lines, line repeated in long bodies, closing)
    "en": (
        "Hello {name},",
        (
            "Please find attached our quote for purchase order {po}.",
            "Delivery is planned for week {week}; prices are valid for 30 days.",
            "Let me know if the approval needs anything else from us.",
        ),
        "Item {n}: 12 units, unit price USD {price}, lead time {week} days.",
        "Best regards,",
    ),
    "pt": (
        "Olá {name},",
        (
            "Segue em anexo a cotação referente ao pedido {po}.",
            "A entrega está prevista para a semana {week}; os preços são válidos por 30 dias.",
            "Aguardamos a aprovação da requisição para dar andamento.",
        ),
        "Item {n}: 12 unidades, preço unitário R$ {price}, prazo de {week} dias.",
        "Atenciosamente,",
    ),
    "de": (
        "Hallo {name},",
        (
            "anbei unser Angebot zur Bestellung {po}.",
            "Die Lieferung ist für KW {week} geplant; die Preise gelten 30 Tage.",
            "Bitte prüfen Sie die Maße und die Größe der Lieferung.",
        ),
        "Position {n}: 12 Stück, Stückpreis EUR {price}, Lieferzeit {week} Tage, Größe M.",
        "Mit freundlichen Grüßen,",
    ),
    "zh": (
        "{name}，您好：",
        (
            "附件是采购订单 {po} 的报价单。",
            "预计第 {week} 周交货，价格有效期为 30 天。",
            "如需审批所需的其他资料，请告知。",
        ),
        "第 {n} 项：12 件，单价 {price} 元，交货期 {week} 天。",
        "此致敬礼，",
    ),
}
_ATTACHMENT_NAMES: dict[str, dict[Language, str]] = {
    "pdf": {
        "en": "Quote {po}.pdf",
        "pt": "Proposta comercial {po}.pdf",
        "de": "Angebot {po}.pdf",
        "zh": "报价单 {po}.pdf",
    },
    "txt": {
        "en": "delivery notes.txt",
        "pt": "observações.txt",
        "de": "Lieferhinweise.txt",
        "zh": "说明.txt",
    },
    "xlsx": {
        "en": "Price list {po}.xlsx",
        "pt": "Planilha de preços {po}.xlsx",
        "de": "Preisliste {po}.xlsx",
        "zh": "价格表 {po}.xlsx",
    },
}
_ATTACHMENT_MIME = {
    "pdf": "application/pdf",
    "txt": "text/plain",
    "xlsx": CONTENT_TYPES["xlsx"],
    "bat": "application/octet-stream",
}


def _blob(rng: random.Random, kind: str, size: int, title: str) -> bytes:
    """An attachment's bytes: a small well-formed PDF, text, or a zip-signed spreadsheet blob."""
    if kind == "pdf":
        parts = _pdf_layout(size)
        return parts.prefix + rng.randbytes(parts.filler_length) + parts.suffix
    if kind == "txt":
        head = (title + "\r\n").encode("utf-8")
        return head + rng.randbytes(max(0, size - len(head))).translate(_TEXT_TABLE)
    return ZIP_MAGIC + rng.randbytes(max(0, size - len(ZIP_MAGIC)))


def _html(lines: list[str]) -> str:
    paragraphs = "".join(f"<p>{html.escape(line)}</p>\r\n" for line in lines if line)
    return (
        '<html><head><meta charset="utf-8"></head>\r\n'
        '<body style="font-family: Calibri, sans-serif">\r\n' + paragraphs + "</body></html>"
    )


def _draw_mail(
    rng: random.Random, file_type: str, traits: MailTraits, *, nested_ok: bool
) -> MailSpec:
    lang = traits.language if traits.language is not None else rng.choice(LANGUAGES)
    po = rng.randint(15_000_000, 15_999_999)
    fields = {"po": po, "ref": f"NF-{rng.randint(1000, 99999)}", "week": rng.randint(2, 50)}
    subject = rng.choice(_SUBJECTS[lang]).format(**fields)
    sender_name, sender_address = rng.choice(_SENDERS[lang])
    recipients = rng.sample(_BUYERS, rng.randint(1, 3) + rng.randint(0, 2))
    n_to = rng.randint(1, min(3, len(recipients)))
    to, cc = tuple(recipients[:n_to]), tuple(recipients[n_to:])
    start = datetime(2024, 1, 8, 8, 0, tzinfo=_ZONES[lang])
    date = start + timedelta(minutes=rng.randrange(0, 330 * 24 * 60))

    greeting, lines, item, closing = _BODIES[lang]
    name = to[0].split("<")[0].split()[0]
    text = [greeting.format(name=name), "", *(line.format(**fields) for line in lines)]
    if rng.random() < 1 / 6:  # a long body: over 4096 bytes, so stored outside the mini stream
        for n in range(1, 60):
            text.append(item.format(n=n, price=f"{rng.randint(100, 99999) / 100:.2f}", **fields))
    text += ["", closing, sender_name]
    body = traits.body or rng.choice(("plain", "plain", "html", "both", "both"))
    body_text = "\r\n".join(text) if body != "html" else None
    body_html = _html(text) if body != "plain" else None

    attachments: list[MailAttachment] = []
    if traits.hostile_name is not None:
        bat = traits.hostile_name.lower().endswith(".bat")
        data = (
            b"@echo off\r\nrem a simulated attachment whose name climbs out of its folder\r\n"
            if bat
            else b"This attachment's name tries to leave its folder.\r\n"
        )
        attachments.append(
            MailAttachment(traits.hostile_name, data, _ATTACHMENT_MIME["bat" if bat else "txt"])
        )
    count = traits.attachments if traits.attachments is not None else rng.choice((0, 1, 1, 2, 3))
    for kind in rng.sample(("pdf", "txt", "xlsx"), min(count, 3)):
        att_name = _ATTACHMENT_NAMES[kind][lang].format(**fields)
        if kind == "pdf":
            big = nested_ok and rng.random() < 1 / 6
            size = rng.randint(120_000, 180_000) if big else rng.randint(1_500, 40_000)
        elif kind == "txt":
            size = rng.randint(80, 3_000)
        else:
            size = rng.randint(2_000, 30_000)
        data = _blob(rng, kind, size, subject)
        attachments.append(MailAttachment(att_name, data, _ATTACHMENT_MIME[kind]))
    nested = traits.nested if traits.nested is not None else rng.random() < 0.2
    if nested and nested_ok:
        inner_traits = MailTraits(attachments=1, nested=False)
        inner = _draw_mail(rng, file_type, inner_traits, nested_ok=False)
        inner_date = date - timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 600))
        inner = dataclasses.replace(inner, date=inner_date.astimezone(inner.date.tzinfo))
        attachments.append(MailAttachment(f"{inner.subject}.{file_type}", mail=inner))
    return MailSpec(
        subject=subject,
        sender_name=sender_name,
        sender_address=sender_address,
        to=to,
        date=date,
        body_text=body_text,
        cc=cc,
        body_html=body_html,
        attachments=tuple(attachments),
    )


@functools.lru_cache(maxsize=32)
def mail_spec(seed: int, file_id: int, file_type: str, traits: MailTraits) -> MailSpec:
    """The e-mail of file `file_id`: drawn from seed and id, shaped by `traits`."""
    rng = random.Random(f"coupa-sim-mail:{seed}:{file_id}:{file_type}")
    return _draw_mail(rng, file_type, traits, nested_ok=True)


def write_mail(spec: MailSpec, file_type: str) -> bytes:
    """The e-mail as a `.msg` or an `.eml` file."""
    return msg_bytes(spec) if file_type == "msg" else eml_bytes(spec)


# Bounded: a big catalog holds thousands of e-mails, each rebuilt on demand (deterministic).
@functools.lru_cache(maxsize=32)
def mail_bytes(seed: int, file_id: int, file_type: str, traits: MailTraits) -> bytes:
    """The bytes of an e-mail file."""
    return write_mail(mail_spec(seed, file_id, file_type, traits), file_type)


def body_snippet(spec: MailSpec, length: int = 40) -> str:
    """The first `length` characters of the body (plain, else the text of the HTML), with
    runs of whitespace as one space."""
    if spec.body_text is not None:
        text = spec.body_text
    elif spec.body_html is not None:
        text = html.unescape(re.sub(r"<[^>]*>", " ", spec.body_html))
    else:
        text = ""
    return " ".join(text.split())[:length]


@dataclass(frozen=True, slots=True)
class MailPart:
    """One attachment of an e-mail as a converter should extract it."""

    name: str  # raw, as the sender gave it
    sha256: str  # a nested e-mail: of the file the writer makes of it alone, same format
    size: int
    nested: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size, "nested": self.nested}


@dataclass(frozen=True, slots=True)
class MailSummary:
    """What a test checks of an e-mail file: its PDF's text and its extracted files."""

    malformed: bool
    subject: str = ""
    sender: str = ""  # "Name <addr>"
    body_snippet: str = ""
    attachments: tuple[MailPart, ...] = ()
    nested: tuple[MailSummary, ...] = ()  # the nested e-mails, in attachment order

    def to_dict(self) -> dict[str, Any]:
        return {
            "malformed": self.malformed,
            "subject": self.subject,
            "sender": self.sender,
            "body_snippet": self.body_snippet,
            "attachments": [a.to_dict() for a in self.attachments],
            "nested": [n.to_dict() for n in self.nested],
        }


def summarize(spec: MailSpec, file_type: str) -> MailSummary:
    """The summary of one e-mail and, recursively, of those nested in it."""
    parts: list[MailPart] = []
    nested: list[MailSummary] = []
    for att in spec.attachments:
        data = write_mail(att.mail, file_type) if att.mail is not None else att.data
        parts.append(
            MailPart(att.name, hashlib.sha256(data).hexdigest(), len(data), bool(att.mail))
        )
        if att.mail is not None:
            nested.append(summarize(att.mail, file_type))
    return MailSummary(
        malformed=False,
        subject=spec.subject,
        sender=f"{spec.sender_name} <{spec.sender_address}>",
        body_snippet=body_snippet(spec),
        attachments=tuple(parts),
        nested=tuple(nested),
    )


def mail_summary(seed: int, file_id: int, file_type: str, mail: MailTraits | None) -> MailSummary:
    """The summary of an e-mail file (a malformed one has nothing but the flag)."""
    if not is_mail(file_type, mail):
        return MailSummary(malformed=True)
    return summarize(mail_spec(seed, file_id, file_type, mail or MailTraits()), file_type)
