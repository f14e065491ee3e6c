"""MIME ``.eml`` files as a ``Mail``, with the stdlib ``email`` package, tolerant of charsets."""

from __future__ import annotations

import mimetypes
from email import errors as mail_errors
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from coupa_async.emails.errors import MailError, reason
from coupa_async.emails.html_text import html_to_text
from coupa_async.emails.model import Attachment, Mail
from coupa_async.emails.text_decode import decode_text
from coupa_async.emails.when import format_date

_MAIL_HEADERS = ("from", "to", "subject", "date", "message-id", "received", "mime-version")
# A multipart that never ends means the file was cut off.
_TRUNCATED = (mail_errors.CloseBoundaryNotFoundDefect, mail_errors.StartBoundaryNotFoundDefect)
_MAX_PART_DEPTH = 50  # multiparts inside multiparts: deeper is an attack, not a mail


def read_eml(data: bytes, name: str) -> Mail:
    """The mail in ``data``; raises MailError with one sentence if it is not a readable mail."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
        _check_is_mail(message, name)
        return _mail(message)
    except MailError:
        raise
    except Exception as exc:  # the parser and header classes raise many kinds on bad input
        raise MailError(f"{name} could not be read as an e-mail: {reason(exc)}") from exc


def _check_is_mail(message: Message, name: str) -> None:
    if not any(header.lower() in _MAIL_HEADERS for header in message):
        raise MailError(f"{name} could not be read as an e-mail: it has no mail headers")
    for part in _walk(message):
        if any(isinstance(defect, _TRUNCATED) for defect in part.defects):
            raise MailError(
                f"{name} could not be read as an e-mail: it ends in the middle of a part "
                "(the file is incomplete)"
            )


def _mail(message: Message) -> Mail:
    body_part = _body_part(message)
    attachments = tuple(_attachment(part) for part in _attachment_parts(message, body_part))
    return Mail(
        sender=_header(message, "from"),
        to=_header(message, "to"),
        cc=_header(message, "cc"),
        date=_date(message),
        subject=_header(message, "subject"),
        body=_body(body_part),
        attachments=attachments,
    )


def _header(message: Message, name: str) -> str:
    try:
        values = message.get_all(name) or []
        return "; ".join(" ".join(str(value).split()) for value in values)
    except Exception:  # a header the policy cannot parse: show it raw
        raw = [value for key, value in message.raw_items() if key.lower() == name]
        return "; ".join(" ".join(str(value).split()) for value in raw)


def _date(message: Message) -> str:
    raw = _header(message, "date")
    if not raw:
        return ""
    try:
        return format_date(parsedate_to_datetime(raw))
    except (TypeError, ValueError, IndexError):
        return raw


def _walk(message: Message, depth: int = 0) -> list[Message]:
    """Every part, not descending into attached messages."""
    if depth > _MAX_PART_DEPTH:
        raise ValueError(f"it has multiparts nested more than {_MAX_PART_DEPTH} deep")
    parts = [message]
    if message.is_multipart() and message.get_content_maintype() == "multipart":
        payload = message.get_payload()
        for sub in payload if isinstance(payload, list) else ():
            if isinstance(sub, Message):  # always, in a multipart
                parts.extend(_walk(sub, depth + 1))
    return parts


def _body_part(message: Message) -> Message | None:
    if isinstance(message, EmailMessage):
        return message.get_body(preferencelist=("plain", "html"))
    return None


def _body(part: Message | None) -> str:
    if part is None:
        return ""
    text = _text(part)
    return html_to_text(text) if part.get_content_subtype() == "html" else text


def _text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return decode_text(data, part.get_content_charset())


def _attachment_parts(message: Message, body: Message | None) -> list[Message]:
    parts = []
    for part in _walk(message):
        if part is body or part.get_content_maintype() == "multipart":
            continue
        if part.get_content_type() == "message/rfc822" or _is_attachment(part):
            parts.append(part)
    return parts


def _is_attachment(part: Message) -> bool:
    if part.get_content_disposition() == "attachment" or part.get_filename():
        return True
    # Unnamed inline text is the body or its alternative rendering, not a file.
    return part.get_content_maintype() not in ("text", "message")


def _attachment(part: Message) -> Attachment:
    filename = part.get_filename()
    if part.get_content_type() == "message/rfc822":
        nested = _nested_message(part)
        if nested is not None:
            subject = _header(nested, "subject")
            name = filename or f"{subject or 'message'}.eml"
            if not name.lower().endswith(".eml"):
                name += ".eml"
            return Attachment(name, _message_bytes(nested), is_mail=True, subject=subject)
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        data = _message_bytes(part)
    return Attachment(filename or _default_name(part), data)


def _nested_message(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes(policy=policy.default)
    except Exception:  # headers the modern policy cannot refold
        return message.as_bytes(policy=policy.compat32)


def _default_name(part: Message) -> str:
    extension = mimetypes.guess_extension(part.get_content_type()) or ".bin"
    return f"attachment{extension}"
