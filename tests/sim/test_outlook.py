"""The e-mail writers: `.msg` files extract-msg and olefile read back, `.eml` the stdlib does."""

from __future__ import annotations

import email
import email.policy
import hashlib
import struct
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import extract_msg
import olefile
import pytest

from coupa_async.sim.outlook import (
    CFB_MAGIC,
    MINI_CUTOFF,
    NOSTREAM,
    MailAttachment,
    MailSpec,
    _cfb_key,
    cfb_bytes,
    eml_bytes,
    msg_bytes,
)

BRT = timezone(timedelta(hours=-3))
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF"
HOSTILE = ("../../x.pdf", "a/b\\c.txt", "CON", "..\\..\\evil.bat")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lines(text: str | None) -> str:
    """Text with "\n" line ends and no trailing newline (quoted-printable decodes to "\n")."""
    return (text or "").replace("\r\n", "\n").rstrip("\n")


def inner_spec() -> MailSpec:
    return MailSpec(
        subject="采购订单 15000001 报价",
        sender_name="王小明",
        sender_address="wang.xiaoming@huaxin.example",
        to=("Jane Miller <jane@buyer.example>",),
        date=datetime(2024, 3, 1, 16, 5, tzinfo=timezone(timedelta(hours=8))),
        body_text="附件是采购订单的报价单。\r\n此致敬礼",
        attachments=(MailAttachment("报价单.pdf", PDF, "application/pdf"),),
    )


def outer_spec(**changes: object) -> MailSpec:
    fields: dict[str, object] = {
        "subject": "Cotação ação – Größe & Grüße für 采购订单",
        "sender_name": "João Conceição",
        "sender_address": "joao@cafe.example",
        "to": ("Jürgen Weiß <juergen@buyer.example>", "陈静 <chen.jing@buyer.example>"),
        "cc": ("Sam Lee <sam@buyer.example>",),
        "date": datetime(2024, 5, 6, 10, 30, 15, tzinfo=BRT),
        "body_text": "Olá Jürgen,\r\nsegue a cotação. Straße, Größe, 采购订单.\r\n",
        "body_html": "<html><body><p>Olá <b>Jürgen</b> – ß ü 采购订单</p></body></html>",
        "attachments": (
            MailAttachment("Proposta comercial ção.pdf", PDF, "application/pdf"),
            MailAttachment("notes.txt", "Größe: M\r\n".encode(), "text/plain"),
            *(MailAttachment(name, name.encode() * 3) for name in HOSTILE),
            MailAttachment("Fwd quote.msg", mail=inner_spec()),
        ),
    }
    fields.update(changes)
    return MailSpec(**fields)  # type: ignore[arg-type]


def open_msg(tmp_path: Path, spec: MailSpec, name: str = "mail.msg") -> extract_msg.Message:
    path = tmp_path / name
    path.write_bytes(msg_bytes(spec))
    msg = extract_msg.openMsg(str(path))
    assert isinstance(msg, extract_msg.Message)
    return msg


def test_msg_reads_back_in_extract_msg(tmp_path: Path) -> None:
    spec = outer_spec()
    msg = open_msg(tmp_path, spec)
    try:
        assert msg.subject == spec.subject
        assert msg.sender == "João Conceição <joao@cafe.example>"
        assert msg.to == "Jürgen Weiß <juergen@buyer.example>; 陈静 <chen.jing@buyer.example>"
        assert msg.cc == "Sam Lee <sam@buyer.example>"
        assert msg.date == spec.date
        assert msg.body == spec.body_text
        assert msg.htmlBody == (spec.body_html or "").encode()
        assert [r.email for r in msg.recipients] == [
            "juergen@buyer.example",
            "chen.jing@buyer.example",
            "sam@buyer.example",
        ]
        atts = msg.attachments
        assert [a.longFilename for a in atts[:-1]] == [a.name for a in spec.attachments[:-1]]
        for att, want in zip(atts[:-1], spec.attachments[:-1], strict=True):
            assert sha(att.data) == sha(want.data), want.name
            assert att.mimetype == want.mime
        embedded = atts[-1]
        assert isinstance(embedded, extract_msg.attachments.EmbeddedMsgAttachment)
        assert embedded.name == "Fwd quote.msg"
        inner = embedded.data
        assert inner.subject == "采购订单 15000001 报价"
        assert inner.sender == "王小明 <wang.xiaoming@huaxin.example>"
        assert inner.date == inner_spec().date
        assert inner.body == inner_spec().body_text
        assert [(a.longFilename, sha(a.data)) for a in inner.attachments] == [
            ("报价单.pdf", sha(PDF))
        ]
    finally:
        msg.close()


def test_msg_bodies_may_be_missing(tmp_path: Path) -> None:
    html_only = open_msg(tmp_path, outer_spec(body_text=None, attachments=()), "a.msg")
    try:
        assert html_only.body is None
        assert html_only.htmlBody == (outer_spec().body_html or "").encode()
        assert html_only.attachments == []
    finally:
        html_only.close()
    plain_only = open_msg(tmp_path, outer_spec(body_html=None, cc=()), "b.msg")
    try:
        assert plain_only.body == outer_spec().body_text
        assert not plain_only.detectedBodies & extract_msg.enums.BodyTypes.HTML
        assert plain_only.cc is None
    finally:
        plain_only.close()


def _check_tree(ole: olefile.OleFileIO, sid: int) -> int:
    """Black height of the sibling tree under `sid`; asserts red-black rules and CFB order."""
    if sid == NOSTREAM:
        return 1
    entry = ole.direntries[sid]
    for side in (entry.sid_left, entry.sid_right):
        if side != NOSTREAM:
            child = ole.direntries[side]
            assert not (entry.color == 0 and child.color == 0), "red node with a red child"
            before, after = (child, entry) if side == entry.sid_left else (entry, child)
            assert _cfb_key(before.name) < _cfb_key(after.name)
    left, right = _check_tree(ole, entry.sid_left), _check_tree(ole, entry.sid_right)
    assert left == right, f"unequal black heights under {entry.name!r}"
    return left + (entry.color == 1)


def test_msg_is_a_strict_compound_file(tmp_path: Path) -> None:
    data = msg_bytes(outer_spec(body_text="Größe 采购订单 " * 400))  # a 4.4 KB UTF-16 body
    path = tmp_path / "strict.msg"
    path.write_bytes(data)
    assert olefile.isOleFile(str(path)) and data.startswith(CFB_MAGIC)
    assert len(data) % 512 == 0
    major, byte_order, shift, mini_shift = struct.unpack_from("<HHHH", data, 26)
    assert (major, byte_order, shift, mini_shift) == (3, 0xFFFE, 9, 6)
    with olefile.OleFileIO(str(path), raise_defects=olefile.DEFECT_POTENTIAL) as ole:
        storages = [e for e in ole.direntries if e is not None and e.entry_type in (1, 5)]
        assert len(storages) >= 7  # root, nameid, 3 recipients, 6 attachments, nested ones
        for storage in storages:
            root = ole.direntries[storage.sid_child] if storage.sid_child != NOSTREAM else None
            assert root is None or root.color == 1
            _check_tree(ole, storage.sid_child)
        for path in ole.listdir(streams=True, storages=False):
            assert len(ole.openstream(path).read()) == ole.get_size(path)
        body = ole.direntries[ole._find(["__substg1.0_1000001F"])]
        assert body.size > MINI_CUTOFF and not body.is_minifat  # in regular sectors
        subject = ole.direntries[ole._find(["__substg1.0_0037001F"])]
        assert 0 < subject.size < MINI_CUTOFF and subject.is_minifat
        props = ole.openstream("__properties_version1.0").read()
        assert struct.unpack_from("<8xIIII", props) == (3, 7, 3, 7)
        assert (len(props) - 32) % 16 == 0
        nested = ole.openstream(
            "__attach_version1.0_#00000006/__substg1.0_3701000D/__properties_version1.0"
        ).read()
        assert struct.unpack_from("<8xIIII", nested) == (1, 1, 1, 1)
        assert (len(nested) - 24) % 16 == 0


def test_a_200_kb_msg_reads_back(tmp_path: Path) -> None:
    big = bytes(range(251)) * 720  # 180,720 bytes
    body = "Item 1: 12 units.\r\n" * 300  # 5,700 characters, 11,400 bytes of UTF-16
    spec = outer_spec(body_text=body, attachments=(MailAttachment("scan.pdf", big),))
    data = msg_bytes(spec)
    assert 180_000 < len(data) < 230_000
    msg = open_msg(tmp_path, spec)
    try:
        assert msg.body == body
        (att,) = msg.attachments
        assert att.longFilename == "scan.pdf" and sha(att.data) == sha(big)
    finally:
        msg.close()


def test_writers_are_deterministic() -> None:
    spec = outer_spec()
    assert msg_bytes(spec) == msg_bytes(outer_spec())
    assert eml_bytes(spec) == eml_bytes(outer_spec())
    other = outer_spec(subject="Another subject")
    assert msg_bytes(other) != msg_bytes(spec)
    assert eml_bytes(other) != eml_bytes(spec)


def test_naive_dates_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        outer_spec(date=datetime(2024, 1, 1))


def test_too_large_compound_file_is_refused() -> None:
    assert cfb_bytes({"small": b"x" * 10})[:8] == CFB_MAGIC
    with pytest.raises(ValueError, match="too large"):
        cfb_bytes({"big": bytes(110 * 128 * 512)})


def test_cfb_names_are_checked() -> None:
    with pytest.raises(ValueError, match="invalid"):
        cfb_bytes({"a/b": b""})
    with pytest.raises(ValueError, match="invalid"):
        cfb_bytes({"x" * 32: b""})
    with pytest.raises(ValueError, match="duplicate"):
        cfb_bytes({"abc": b"", "ABC": b""})


def _attachments(msg: EmailMessage) -> list[EmailMessage]:
    return list(msg.iter_attachments())  # type: ignore[arg-type]


def test_eml_round_trips_through_the_email_package() -> None:
    spec = outer_spec()
    raw = eml_bytes(spec)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    raw.decode("ascii")  # headers encoded, bodies in quoted-printable or base64 here
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == spec.subject
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("João Conceição", "joao@cafe.example")
    assert [a.display_name for a in msg["To"].addresses] == ["Jürgen Weiß", "陈静"]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["sam@buyer.example"]
    assert msg["Date"].datetime == spec.date
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and lines(plain.get_content()) == lines(spec.body_text)
    assert html is not None and lines(html.get_content()) == lines(spec.body_html)
    parts = _attachments(msg)
    assert [p.get_filename() for p in parts] == [a.name for a in spec.attachments]
    for part, want in zip(parts[:-1], spec.attachments[:-1], strict=True):
        assert part["Content-Transfer-Encoding"] == "base64"
        assert sha(part.get_payload(decode=True)) == sha(want.data), want.name
        assert part.get_content_type() == want.mime
    nested_part = parts[-1]
    assert nested_part.get_content_type() == "message/rfc822"
    inner = nested_part.get_content()
    assert inner["Subject"] == "采购订单 15000001 报价"
    assert inner["Date"].datetime == inner_spec().date
    inner_body = inner.get_body(("plain",))
    assert inner_body is not None
    assert lines(inner_body.get_content()) == lines(inner_spec().body_text)
    (inner_att,) = _attachments(inner)
    assert inner_att.get_filename() == "报价单.pdf"
    assert sha(inner_att.get_payload(decode=True)) == sha(PDF)


def test_eml_html_only_and_no_attachments() -> None:
    spec = outer_spec(body_text=None, attachments=(), cc=())
    msg = email.message_from_bytes(eml_bytes(spec), policy=email.policy.default)
    assert msg.get_content_type() == "text/html"
    assert lines(msg.get_content()) == lines(spec.body_html)
    assert msg["Cc"] is None and msg["Message-ID"].endswith("@coupa-sim.invalid>")
    assert msg["Date"].datetime.astimezone(UTC) == spec.date.astimezone(UTC)
