"""Outlook ``.msg`` files as a ``Mail``, with extract-msg.

The body is the plain text if the mail has one, else its HTML (stored, or de-encapsulated from
the RTF body by extract-msg), else the RTF body as text. Embedded messages are exported as
``.msg`` bytes of their own.
"""

from __future__ import annotations

import email.message
import logging
from typing import Any

from coupa_async.emails.errors import MailError, reason
from coupa_async.emails.html_text import decode_html, html_to_text
from coupa_async.emails.model import Attachment, Mail
from coupa_async.emails.rtf_text import rtf_to_text
from coupa_async.emails.when import format_date

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_msg(data: bytes, name: str) -> Mail:
    """The mail in ``data``; raises MailError with one sentence if it cannot be read."""
    if not data.startswith(OLE_MAGIC):
        raise MailError(
            f"{name} could not be read as an Outlook message: it is not an Outlook file"
        )
    import extract_msg  # heavy: only when a .msg is read
    from extract_msg.enums import ErrorBehavior

    # extract-msg logs each oddity it tolerates; the outcome's sentence is the one report.
    logging.getLogger("extract_msg").setLevel(logging.CRITICAL)

    try:
        message = extract_msg.openMsg(data, strict=False, errorBehavior=ErrorBehavior.SUPPRESS_ALL)
    except Exception as exc:  # olefile and extract-msg raise many kinds on a damaged file
        # Their texts speak of Python's internals: the user gets what it means.
        raise MailError(
            f"{name} could not be read as an Outlook message: the file is damaged or incomplete"
        ) from exc
    try:
        if not _optional(message, "classType"):
            raise MailError(
                f"{name} could not be read as an Outlook message: it is another kind of Office file"
            )
        return _mail(message)
    except MailError:
        raise
    except Exception as exc:
        raise MailError(
            f"{name} could not be read as an Outlook message: part of the file is damaged"
        ) from exc
    finally:
        message.close()


def _mail(message: Any) -> Mail:
    return Mail(
        sender=_text(message, "sender"),
        to=_text(message, "to"),
        cc=_text(message, "cc"),
        date=format_date(_optional(message, "date")),
        subject=_text(message, "subject"),
        body=_body(message),
        attachments=tuple(_attachment(att) for att in _optional(message, "attachments") or ()),
    )


def _optional(message: Any, attribute: str) -> Any:
    """An attribute extract-msg may lack for this kind of item, or fail to decode."""
    try:
        return getattr(message, attribute, None)
    except Exception:
        return None


def _text(message: Any, attribute: str) -> str:
    value = _optional(message, attribute)
    return " ".join(str(value).split()) if value else ""


def _body(message: Any) -> str:
    plain = _optional(message, "body")
    if isinstance(plain, str) and plain.strip():
        return plain.replace("\r\n", "\n")
    html = _optional(message, "htmlBody")
    if html:
        return html_to_text(decode_html(html, _encoding(message)))
    rtf = _optional(message, "rtfBody")
    if rtf:
        return rtf_to_text(rtf)
    return ""


def _encoding(message: Any) -> str | None:
    """The code page of the HTML body (PR_INTERNET_CPID), else of the message's strings."""
    from extract_msg.encoding import lookupCodePage

    try:
        return lookupCodePage(int(message.getPropertyVal("3FDE0003")))
    except Exception:  # absent, or a code page Python does not know
        encoding = _optional(message, "stringEncoding")
        return None if encoding in (None, "utf-16-le") else encoding


def _attachment(att: Any) -> Attachment:
    name = _optional(att, "longFilename") or _optional(att, "shortFilename")
    name = name or _optional(att, "displayName")
    try:
        data = att.data
    except Exception as exc:
        note = f"could not be read ({reason(exc)})"
        return Attachment(name or "attachment", None, note=note, broken=True)
    if isinstance(data, bytes):
        return Attachment(name or "attachment", data)
    if isinstance(data, email.message.Message):  # inside a signed message
        subject = " ".join(str(data.get("subject", "")).split())
        return Attachment(_named(name, subject, ".eml"), data.as_bytes(), True, subject)
    if hasattr(data, "exportBytes"):  # an embedded Outlook message
        subject = _text(data, "subject")
        try:
            raw = data.exportBytes(allowBadEmbed=True)
        except Exception as exc:
            note = f"could not be exported ({reason(exc)})"
            return Attachment(_named(name, subject, ".msg"), None, True, subject, note, True)
        return Attachment(_named(name, subject, ".msg"), raw, True, subject)
    if getattr(_optional(att, "type"), "name", "") == "WEB":
        return Attachment(name or "attachment", None, note="a link to a file stored elsewhere")
    return Attachment(name or "attachment", None, note="could not be read", broken=True)


def _named(name: str | None, subject: str, suffix: str) -> str:
    name = name or subject or "message"
    return name if name.lower().endswith(suffix) else name + suffix
