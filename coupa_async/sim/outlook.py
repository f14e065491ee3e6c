"""Real e-mail files for the simulator: Outlook `.msg` and RFC 5322 `.eml` writers.

`msg_bytes` writes a Compound File Binary (MS-CFB version 3, 512-byte sectors) holding the
MAPI property layout of MS-OXMSG; `eml_bytes` uses the stdlib `email` package. Both are
deterministic: the same `MailSpec` always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr

__all__ = ["MailAttachment", "MailSpec", "cfb_bytes", "eml_bytes", "msg_bytes"]


@dataclass(frozen=True)
class MailAttachment:
    """A file attached to an e-mail, or a whole e-mail attached to it (`mail`)."""

    name: str  # the long file name as the sender gave it; may be hostile
    data: bytes = field(default=b"", repr=False)
    mime: str = "application/octet-stream"
    mail: MailSpec | None = None  # a nested e-mail (then `data` is ignored)


@dataclass(frozen=True)
class MailSpec:
    """What an e-mail says; the writers turn it into `.msg` or `.eml` bytes."""

    subject: str
    sender_name: str
    sender_address: str
    to: tuple[str, ...]  # "Name <addr>" strings
    date: datetime  # aware
    body_text: str | None  # None: no plain body
    cc: tuple[str, ...] = ()
    body_html: str | None = None  # None: no HTML body
    attachments: tuple[MailAttachment, ...] = ()

    def __post_init__(self) -> None:
        if self.date.tzinfo is None or self.date.utcoffset() is None:
            raise ValueError("MailSpec.date must be timezone-aware")


# ---------------------------------------------------------------------------------------------
# Compound File Binary (MS-CFB), version 3

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
_FAT_PER_SECTOR = SECTOR // 4
_HEADER_DIFAT = 109
FREESECT = 0xFFFFFFFF
ENDOFCHAIN = 0xFFFFFFFE
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
_EMPTY, _STORAGE, _STREAM, _ROOT = 0, 1, 2, 5
_RED, _BLACK = 0, 1
_DIRENTRY = struct.Struct("<64sHBBIII16sIQQIII")
_HEADER = struct.Struct("<8s16sHHHHH6sIIIIIIIII")

# A storage maps child names to a stream's bytes or to a nested storage.
CfbTree = dict[str, "bytes | CfbTree"]


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    color: int = _BLACK
    start: int = ENDOFCHAIN
    size: int = 0


def _cfb_key(name: str) -> tuple[int, list[int]]:
    """MS-CFB sibling order: shorter names first, then code points of the upper-cased name."""
    units = len(name.encode("utf-16-le")) // 2
    return units, [ord(c.upper()) if len(c.upper()) == 1 else ord(c) for c in name]


def _check_name(name: str) -> None:
    if not name or len(name.encode("utf-16-le")) > 62 or any(c in "/\\:!" for c in name):
        raise ValueError(f"invalid compound file entry name {name!r}")


def _flatten(tree: CfbTree) -> list[_Entry]:
    """Directory entries in SID order (root first); each storage's children form a
    balanced binary search tree in CFB order, coloured as a valid red-black tree."""
    entries = [_Entry("Root Entry", _ROOT)]

    def add_children(parent: int, node: CfbTree) -> None:
        names = sorted(node, key=_cfb_key)
        if len({n.upper() for n in names}) != len(names):
            raise ValueError(f"duplicate entry names in one storage: {names}")
        sids: list[int] = []
        for name in names:
            _check_name(name)
            value = node[name]
            sids.append(len(entries))
            if isinstance(value, dict):
                entries.append(_Entry(name, _STORAGE))
            else:
                entries.append(_Entry(name, _STREAM, data=bytes(value)))
        depths: dict[int, int] = {}

        def balance(lo: int, hi: int, depth: int) -> int:
            if lo >= hi:
                return NOSTREAM
            mid = (lo + hi) // 2
            sid = sids[mid]
            depths[sid] = depth
            entries[sid].left = balance(lo, mid, depth + 1)
            entries[sid].right = balance(mid + 1, hi, depth + 1)
            return sid

        entries[parent].child = balance(0, len(sids), 0)
        # Midpoint splits leave every empty branch at depth d or d+1: making the deepest
        # level red keeps the black height equal on every path.
        deepest = max(depths.values(), default=0)
        for sid, depth in depths.items():
            entries[sid].color = _RED if depth == deepest and depth > 0 else _BLACK
        for sid, name in zip(sids, names, strict=True):
            value = node[name]
            if isinstance(value, dict):
                add_children(sid, value)

    add_children(0, tree)
    return entries


def _sectors(length: int, unit: int) -> int:
    return -(-length // unit)


def _chain(table: list[int], start: int, count: int) -> None:
    for i in range(start, start + count - 1):
        table[i] = i + 1
    table[start + count - 1] = ENDOFCHAIN


def cfb_bytes(tree: CfbTree) -> bytes:
    """A version 3 compound file holding `tree` (streams under 4096 bytes in the mini
    stream). Raises ValueError for more than 109 FAT sectors (about 6.8 MB)."""
    entries = _flatten(tree)
    streams = [e for e in entries if e.kind == _STREAM and e.data]
    mini = [e for e in streams if len(e.data) < MINI_CUTOFF]
    big = [e for e in streams if len(e.data) >= MINI_CUTOFF]

    ministream = bytearray()
    minifat: list[int] = []
    for e in mini:
        count = _sectors(len(e.data), MINI_SECTOR)
        e.start, e.size = len(minifat), len(e.data)
        minifat.extend([0] * count)
        _chain(minifat, e.start, count)
        ministream += e.data.ljust(count * MINI_SECTOR, b"\0")

    n_dir = _sectors(len(entries), SECTOR // 128)
    n_minifat = _sectors(len(minifat) * 4, SECTOR)
    n_mini = _sectors(len(ministream), SECTOR)
    n_big = sum(_sectors(len(e.data), SECTOR) for e in big)
    n_data = n_dir + n_minifat + n_mini + n_big
    n_fat = 1
    while n_fat * _FAT_PER_SECTOR < n_fat + n_data:
        n_fat += 1
    if n_fat > _HEADER_DIFAT:
        raise ValueError(
            f"compound file too large: {n_fat} FAT sectors, the header holds {_HEADER_DIFAT}"
        )

    fat = [FREESECT] * (n_fat * _FAT_PER_SECTOR)
    fat[:n_fat] = [FATSECT] * n_fat
    body: list[bytes] = []
    next_sector = n_fat

    def place(data: bytes, count: int) -> int:
        nonlocal next_sector
        if count == 0:
            return ENDOFCHAIN
        start = next_sector
        _chain(fat, start, count)
        body.append(data.ljust(count * SECTOR, b"\0"))
        next_sector += count
        return start

    dir_start_placeholder = len(body)
    body.append(b"")  # the directory, written once every start sector is known
    dir_start = next_sector
    _chain(fat, dir_start, n_dir)
    next_sector += n_dir
    minifat_bytes = b"".join(struct.pack("<I", v) for v in minifat)
    minifat_start = place(minifat_bytes.ljust(n_minifat * SECTOR, b"\xff"), n_minifat)
    root = entries[0]
    root.start = place(bytes(ministream), n_mini)
    root.size = len(ministream)
    for e in big:
        e.size = len(e.data)
        e.start = place(e.data, _sectors(len(e.data), SECTOR))

    directory = bytearray()
    for e in entries:
        raw = e.name.encode("utf-16-le") + b"\0\0"
        start = 0 if e.kind == _STORAGE else e.start
        directory += _DIRENTRY.pack(
            raw, len(raw), e.kind, e.color, e.left, e.right, e.child, bytes(16), 0, 0, 0,
            start, e.size, 0,
        )  # fmt: skip
    unused = _DIRENTRY.pack(b"", 0, _EMPTY, _RED, NOSTREAM, NOSTREAM, NOSTREAM, bytes(16),
                            0, 0, 0, 0, 0, 0)  # fmt: skip
    while len(directory) < n_dir * SECTOR:
        directory += unused
    body[dir_start_placeholder] = bytes(directory)

    difat = list(range(n_fat)) + [FREESECT] * (_HEADER_DIFAT - n_fat)
    header = _HEADER.pack(
        CFB_MAGIC, bytes(16), 0x003E, 3, 0xFFFE, 9, 6, bytes(6), 0, n_fat, dir_start, 0,
        MINI_CUTOFF, minifat_start, n_minifat, ENDOFCHAIN, 0,
    ) + struct.pack(f"<{_HEADER_DIFAT}I", *difat)  # fmt: skip
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    return header + fat_bytes + b"".join(body)


# ---------------------------------------------------------------------------------------------
# Outlook message (MS-OXMSG)

PT_LONG = 0x0003
PT_BOOLEAN = 0x000B
PT_OBJECT = 0x000D
PT_UNICODE = 0x001F
PT_SYSTIME = 0x0040
PT_BINARY = 0x0102
_PROP_FLAGS = 0x6  # PROPATTR_READABLE | PROPATTR_WRITABLE
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
ATTACH_BY_VALUE = 1
ATTACH_EMBEDDED_MSG = 5
MAPI_TO, MAPI_CC = 1, 2


class _Props:
    """One `__properties_version1.0` stream and the `__substg1.0_` streams beside it."""

    def __init__(self) -> None:
        self.entries: dict[int, bytes] = {}
        self.streams: dict[str, bytes] = {}

    def _fixed(self, pid: int, ptype: int, value: bytes) -> None:
        self.entries[(pid << 16) | ptype] = struct.pack("<HHI", ptype, pid, _PROP_FLAGS) + value

    def long(self, pid: int, value: int) -> None:
        self._fixed(pid, PT_LONG, struct.pack("<I4x", value & 0xFFFFFFFF))

    def boolean(self, pid: int, value: bool) -> None:
        self._fixed(pid, PT_BOOLEAN, struct.pack("<H6x", int(value)))

    def time(self, pid: int, value: datetime) -> None:
        delta = value - _FILETIME_EPOCH
        filetime = (delta.days * 86_400 + delta.seconds) * 10**7 + delta.microseconds * 10
        self._fixed(pid, PT_SYSTIME, struct.pack("<Q", filetime))

    def _variable(self, pid: int, ptype: int, data: bytes, size: int) -> None:
        self._fixed(pid, ptype, struct.pack("<II", size, 0))
        self.streams[f"__substg1.0_{pid:04X}{ptype:04X}"] = data

    def string(self, pid: int, value: str) -> None:
        data = value.encode("utf-16-le")
        self._variable(pid, PT_UNICODE, data, len(data) + 2)  # the size counts the NUL

    def binary(self, pid: int, value: bytes) -> None:
        self._variable(pid, PT_BINARY, value, len(value))

    def object(self, pid: int) -> None:
        self._fixed(pid, PT_OBJECT, struct.pack("<II", 0xFFFFFFFF, 0))

    def stream(self, header: bytes) -> bytes:
        return header + b"".join(self.entries[tag] for tag in sorted(self.entries))


def _address(text: str) -> tuple[str, str]:
    """("Name", "addr") of a "Name <addr>" string; the address stands in for a missing name."""
    name, addr = parseaddr(text)
    addr = addr or text.strip()
    return name or addr, addr


def _short_name(name: str, index: int) -> str:
    """An 8.3 name for PR_ATTACH_FILENAME, as Outlook derives one."""
    base = re.split(r"[\\/]", name)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    clean = "".join(c for c in stem.upper() if c.isascii() and c.isalnum()) or "ATTACH"
    ext = "".join(c for c in ext.upper() if c.isascii() and c.isalnum())[:3]
    if len(clean) > 8 or clean != stem:
        clean = f"{clean[:6]}~{index + 1 if index < 9 else 9}"
    return f"{clean}.{ext}" if ext else clean


def _extension(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    return "." + base.rsplit(".", 1)[1] if "." in base.strip(".") else ""


def transport_headers(spec: MailSpec) -> str:
    """The RFC 822 header block an Outlook message keeps as PR_TRANSPORT_MESSAGE_HEADERS."""
    head = EmailMessage(policy=_MAIL_POLICY)
    _set_headers(head, spec)
    text = head.as_string(policy=_WIRE_POLICY)
    return text.split("\r\n\r\n", 1)[0] + "\r\n\r\n"


def _recipient(index: int, text: str, kind: int) -> CfbTree:
    name, addr = _address(text)
    p = _Props()
    p.long(0x0C15, kind)  # PR_RECIPIENT_TYPE
    p.long(0x3000, index)  # PR_ROWID
    p.long(0x0FFE, 6)  # PR_OBJECT_TYPE: MAPI_MAILUSER
    p.long(0x3900, 0)  # PR_DISPLAY_TYPE: DT_MAILUSER
    p.string(0x3001, name)  # PR_DISPLAY_NAME
    p.string(0x3002, "SMTP")  # PR_ADDRTYPE
    p.string(0x3003, addr)  # PR_EMAIL_ADDRESS
    p.string(0x39FE, addr)  # PR_SMTP_ADDRESS
    p.string(0x5FF6, name)  # PR_RECIPIENT_DISPLAY_NAME
    return {"__properties_version1.0": p.stream(bytes(8)), **p.streams}


def _attachment(index: int, att: MailAttachment) -> CfbTree:
    p = _Props()
    p.long(0x0E21, index)  # PR_ATTACH_NUM
    p.long(0x370B, 0xFFFFFFFF)  # PR_RENDERING_POSITION: not shown inside the body
    tree: CfbTree = {}
    if att.mail is not None:
        # Outlook names an embedded message by its display name, without the extension.
        display = att.name[:-4] if att.name.lower().endswith(".msg") else att.name
        p.string(0x3001, display)  # PR_DISPLAY_NAME
        p.long(0x3705, ATTACH_EMBEDDED_MSG)
        p.object(0x3701)
        tree["__substg1.0_3701000D"] = _message(att.mail, embedded=True)
    else:
        p.long(0x3705, ATTACH_BY_VALUE)
        p.string(0x3001, att.name)  # PR_DISPLAY_NAME
        p.long(0x0E20, len(att.data))  # PR_ATTACH_SIZE
        p.string(0x3707, att.name)  # PR_ATTACH_LONG_FILENAME
        p.string(0x3704, _short_name(att.name, index))  # PR_ATTACH_FILENAME
        p.string(0x3703, _extension(att.name))  # PR_ATTACH_EXTENSION
        p.string(0x370E, att.mime)  # PR_ATTACH_MIME_TAG
        p.binary(0x3701, att.data)  # PR_ATTACH_DATA_BIN
    tree["__properties_version1.0"] = p.stream(bytes(8))
    tree.update(p.streams)
    return tree


def _message(spec: MailSpec, *, embedded: bool) -> CfbTree:
    """The streams and storages of one message (a whole file, or an embedded one)."""
    p = _Props()
    p.string(0x001A, "IPM.Note")  # PR_MESSAGE_CLASS
    p.string(0x0037, spec.subject)  # PR_SUBJECT
    p.string(0x0E1D, spec.subject)  # PR_NORMALIZED_SUBJECT
    p.string(0x0C1A, spec.sender_name)  # PR_SENDER_NAME
    p.string(0x0C1E, "SMTP")  # PR_SENDER_ADDRTYPE
    p.string(0x0C1F, spec.sender_address)  # PR_SENDER_EMAIL_ADDRESS
    p.string(0x5D01, spec.sender_address)  # PR_SENDER_SMTP_ADDRESS
    p.string(0x0042, spec.sender_name)  # PR_SENT_REPRESENTING_NAME
    p.string(0x0064, "SMTP")  # PR_SENT_REPRESENTING_ADDRTYPE
    p.string(0x0065, spec.sender_address)  # PR_SENT_REPRESENTING_EMAIL_ADDRESS
    p.string(0x0E04, "; ".join(_address(t)[0] for t in spec.to))  # PR_DISPLAY_TO
    p.string(0x0E03, "; ".join(_address(t)[0] for t in spec.cc))  # PR_DISPLAY_CC
    p.string(0x007D, transport_headers(spec))  # PR_TRANSPORT_MESSAGE_HEADERS
    if spec.body_text is not None:
        p.string(0x1000, spec.body_text)  # PR_BODY
    if spec.body_html is not None:
        p.binary(0x1013, spec.body_html.encode("utf-8"))  # PR_BODY_HTML
        p.long(0x3FDE, 65001)  # PR_INTERNET_CPID: the HTML bytes are UTF-8
    p.time(0x0039, spec.date)  # PR_CLIENT_SUBMIT_TIME
    p.time(0x0E06, spec.date)  # PR_MESSAGE_DELIVERY_TIME
    p.long(0x0E07, 0x1)  # PR_MESSAGE_FLAGS: MSGFLAG_READ (and not unsent)
    p.boolean(0x0E1B, bool(spec.attachments))  # PR_HASATTACH
    p.long(0x340D, 0x00040000)  # PR_STORE_SUPPORT_MASK: STORE_UNICODE_OK
    tree: CfbTree = {}
    recipients = [(t, MAPI_TO) for t in spec.to] + [(t, MAPI_CC) for t in spec.cc]
    for i, (text, kind) in enumerate(recipients):
        tree[f"__recip_version1.0_#{i:08X}"] = _recipient(i, text, kind)
    for i, att in enumerate(spec.attachments):
        tree[f"__attach_version1.0_#{i:08X}"] = _attachment(i, att)
    counts = struct.pack(
        "<8xIIII", len(recipients), len(spec.attachments), len(recipients), len(spec.attachments)
    )
    # The top-level header has 8 more reserved bytes than an embedded message's.
    tree["__properties_version1.0"] = p.stream(counts if embedded else counts + bytes(8))
    tree.update(p.streams)
    if not embedded:  # named properties: none used, but the storage is mandatory
        tree["__nameid_version1.0"] = {
            "__substg1.0_00020102": b"",
            "__substg1.0_00030102": b"",
            "__substg1.0_00040102": b"",
        }
    return tree


def msg_bytes(spec: MailSpec) -> bytes:
    """An Outlook `.msg` file (compound file with MAPI properties) of the e-mail."""
    return cfb_bytes(_message(spec, embedded=False))


# ---------------------------------------------------------------------------------------------
# RFC 5322 (.eml)

# Bodies are built 7-bit clean (quoted-printable or base64), so any reader takes the file.
_MAIL_POLICY = policy.default.clone(cte_type="7bit")
_WIRE_POLICY = _MAIL_POLICY.clone(linesep="\r\n")


def _digest(spec: MailSpec) -> str:
    """A stable fingerprint of the spec, for Message-ID and MIME boundaries."""
    h = hashlib.sha256()

    def feed(s: MailSpec) -> None:
        for value in (s.subject, s.sender_name, s.sender_address, *s.to, "|", *s.cc):
            h.update(value.encode("utf-8", "surrogatepass") + b"\0")
        h.update(s.date.isoformat().encode() + b"\0")
        h.update(repr((s.body_text, s.body_html)).encode("utf-8", "surrogatepass"))
        for att in s.attachments:
            h.update(att.name.encode("utf-8", "surrogatepass") + b"\0" + att.mime.encode())
            if att.mail is not None:
                feed(att.mail)
            else:
                h.update(hashlib.sha256(att.data).digest())

    feed(spec)
    return h.hexdigest()


def _set_headers(msg: EmailMessage, spec: MailSpec) -> None:
    msg["From"] = Address(display_name=spec.sender_name, addr_spec=spec.sender_address)
    msg["To"] = ", ".join(spec.to)
    if spec.cc:
        msg["Cc"] = ", ".join(spec.cc)
    msg["Subject"] = spec.subject
    msg["Date"] = spec.date
    msg["Message-ID"] = f"<{_digest(spec)[:32]}@coupa-sim.invalid>"


def _set_boundaries(part: EmailMessage, tag: str, counter: Iterator[int]) -> None:
    """Fixed boundaries instead of the generator's random ones; nested messages keep theirs."""
    if part.get_content_maintype() != "multipart":
        return
    part.set_boundary(f"=_sim_{tag}_{next(counter)}")
    for sub in part.iter_parts():
        _set_boundaries(sub, tag, counter)  # type: ignore[arg-type]


def email_message(spec: MailSpec) -> EmailMessage:
    """The e-mail as an `EmailMessage` (policy default, 7-bit bodies); nested mails as
    message/rfc822."""
    msg = EmailMessage(policy=_MAIL_POLICY)
    _set_headers(msg, spec)
    if spec.body_text is not None:
        msg.set_content(spec.body_text)
        if spec.body_html is not None:
            msg.add_alternative(spec.body_html, subtype="html")
    elif spec.body_html is not None:
        msg.set_content(spec.body_html, subtype="html")
    for att in spec.attachments:
        if att.mail is not None:
            msg.add_attachment(email_message(att.mail), filename=att.name)
        else:
            maintype, _, subtype = att.mime.split(";")[0].strip().partition("/")
            msg.add_attachment(
                att.data,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=att.name,
            )
    _set_boundaries(msg, _digest(spec)[:16], itertools.count())
    return msg


def eml_bytes(spec: MailSpec) -> bytes:
    """An RFC 5322 `.eml` file (CRLF line ends, attachments in base64)."""
    out = io.BytesIO()
    BytesGenerator(out, policy=_WIRE_POLICY).flatten(email_message(spec))
    return out.getvalue()
